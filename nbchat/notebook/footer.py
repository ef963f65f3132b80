"""The one-line footer under an answer, shared by the magic and the widget."""

from __future__ import annotations

import math

from nbchat.core.turn import TurnResult

__all__ = ["footer_parts", "footer_text", "status_text"]


def footer_parts(result: TurnResult, model: str | None = None) -> list[str]:
    """Model, prompt tokens (cached), new tokens, speed, cost, then notices.

    The model is ``model`` when given, else the one the turn's request named.
    """
    parts: list[str] = []
    name = model or result.model or result.usage.get("model")
    if name:
        parts.append(str(name))
    timings = result.timings
    prompt_n = timings.get("prompt_n")
    cache_n = timings.get("cache_n")
    prompt_tokens = result.usage.get("prompt_tokens")
    cached = result.usage.get("cached_tokens")
    if prompt_n is not None:
        total = int(prompt_n) + int(cache_n or 0)
        parts.append(f"prompt {total:,} tok ({int(cache_n or 0):,} cached, {int(prompt_n):,} new)")
    elif prompt_tokens is not None:
        text = f"prompt {int(prompt_tokens):,} tok"
        if cached:
            text += f" ({int(cached):,} cached)"
        parts.append(text)
    completion = timings.get("predicted_n", result.usage.get("completion_tokens"))
    if completion is not None:
        parts.append(f"{int(completion):,} new tok")
    speed = timings.get("predicted_per_second")
    if speed:
        parts.append(f"{float(speed):.1f} tok/s")
    cost = result.usage.get("cost")
    if cost is not None:
        parts.append(_dollars(float(cost)))
    return parts


def status_text(result: TurnResult) -> str:
    """A short mark for answers that did not complete, else ''."""
    if result.status == "partial":
        why = "interrupted" if result.error_kind == "interrupted" else "stream failed"
        return f"partial answer ({why}; kept as received)"
    if result.status == "error":
        return "no answer"
    if result.finish_reason == "length":
        return "cut at max_tokens"
    return ""


def footer_text(result: TurnResult, model: str | None = None) -> str:
    """``model · prompt … · … new tok · … tok/s`` plus any notices, on one line."""
    parts = footer_parts(result, model)
    mark = status_text(result)
    if mark:
        parts.append(mark)
    parts += list(result.notices)
    return " · ".join(parts)


def _dollars(cost: float) -> str:
    """A cost readable at any size: $1.23, $0.0123, $0.000021."""
    if cost >= 1:
        return f"${cost:,.2f}"
    if cost >= 0.01 or cost == 0:
        return f"${cost:.4f}"
    digits = max(4, -math.floor(math.log10(cost)) + 1)  # two significant digits
    return f"${cost:.{digits}f}"
