"""Turn a server's refusal into a :class:`BackendError` a person can act on.

Servers say "no" in many shapes: an HTTP status with a JSON body (OpenAI, OpenRouter,
llama-server), a bare text body from a proxy, or an error object in the middle of a
stream. :func:`classify_error` reads all of them and picks one ``kind`` (the vocabulary of
:class:`~nbchat.core.errors.BackendError`) and a message that names the server, the
model and the fix. Every message passes through :func:`~nbchat.core.errors.redact`, so a
server that echoes the API key back cannot leak it.
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from nbchat.core.errors import BackendError, redact
from nbchat.core.events import StreamError
from nbchat.core.settings import BACKEND_INFO, BackendInfo

__all__ = [
    "ErrorContext",
    "classify_error",
    "stream_error_from",
    "parse_retry_after",
    "server_message",
]

_EXCERPT_CHARS = 300

_CREDITS_TEXT = re.compile(r"credit|balance|billing|quota|payment required", re.I)
_CREDITS_429_TEXT = re.compile(r"insufficient|exceeded your current quota|billing", re.I)
_CONTEXT_TEXT = re.compile(r"context|too long|too large|token|length", re.I)
_CONTEXT_STRONG_TEXT = re.compile(
    r"context (length|size|window)|maximum context|too long|exceeds the available context",
    re.I,
)
_AUTH_TEXT = re.compile(
    r"unauthori[sz]ed|invalid (api[ _-]?)?key|incorrect api key|no auth|authenticat", re.I
)
_MODEL_MISSING_TEXT = re.compile(
    r"model.*(not found|not a valid|does not exist|not available|unknown|no endpoints)"
    r"|(no endpoints|unknown model|invalid model)",
    re.I | re.S,
)
_RATE_TEXT = re.compile(r"rate[ _-]?limit|too many requests", re.I)
_LOADING_TEXT = re.compile(r"loading model|model is loading|still loading", re.I)

_CODE_KINDS = {
    "context_length_exceeded": "context",
    "exceed_context_size_error": "context",
    "insufficient_quota": "credits",
    "rate_limit_exceeded": "rate_limit",
    "invalid_api_key": "auth",
    "authentication_error": "auth",
    "model_not_found": "model",
}


@dataclass(frozen=True)
class ErrorContext:
    """What a message needs to know about where an error came from.

    ``backend`` names an entry of ``BACKEND_INFO``, whose hints the fixes use;
    ``server`` is how messages name the server ("OpenRouter", "llama-server at URL").
    """

    backend: str
    server: str
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            moment = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if moment is None:
            return None
        current = time.time() if now is None else now
        return max(0.0, moment.timestamp() - current)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


def _parse_body(body: object) -> object:
    """The body as JSON when it is JSON, else as text."""
    if isinstance(body, (bytes, bytearray)):
        body = bytes(body).decode("utf-8", errors="replace")
    if isinstance(body, str):
        stripped = body.strip()
        if stripped[:1] in ("{", "["):
            try:
                return json.loads(stripped)
            except ValueError:
                return body
    return body


def _error_object(body: object) -> Mapping[str, Any]:
    """The ``error`` object of an OpenAI-style body (or the body itself when flat)."""
    if isinstance(body, Mapping):
        inner = body.get("error")
        if isinstance(inner, Mapping):
            return inner
        if isinstance(inner, str):
            return {"message": inner}
        if "message" in body or "detail" in body:
            return body
    return {}


def server_message(body: object) -> str:
    """The server's own words, shortened to one line (not yet redacted)."""
    body = _parse_body(body)
    error = _error_object(body)
    text = ""
    if error:
        raw_message = error.get("message", error.get("detail", ""))
        text = raw_message if isinstance(raw_message, str) else json.dumps(raw_message)
        metadata = error.get("metadata")
        if isinstance(metadata, Mapping):
            provider = metadata.get("provider_name")
            raw = metadata.get("raw")
            if isinstance(raw, str) and raw.strip() and raw.strip() not in text:
                text = f"{text} ({raw.strip()})" if text else raw.strip()
            if isinstance(provider, str) and provider:
                text = f"{text} [provider: {provider}]"
    elif isinstance(body, str):
        text = re.sub(r"<[^>]{0,200}>", " ", body)
    elif body is not None:
        text = json.dumps(body, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    if len(text) > _EXCERPT_CHARS:
        text = text[: _EXCERPT_CHARS - 1] + "…"
    return text


def _status_of(status: int | None, error: Mapping[str, Any]) -> int | None:
    if status is not None:
        return status
    code = error.get("code")
    if isinstance(code, int) and 100 <= code <= 599:
        return code
    if isinstance(code, str) and code.isdigit() and 100 <= int(code) <= 599:
        return int(code)
    return None


def _code_kind(error: Mapping[str, Any]) -> str | None:
    for key in ("type", "code"):
        value = error.get(key)
        if isinstance(value, str) and value in _CODE_KINDS:
            return _CODE_KINDS[value]
    return None


def _retry_after(
    headers: Mapping[str, str] | None, error: Mapping[str, Any]
) -> float | None:
    if headers:
        for name, value in headers.items():
            if name.lower() == "retry-after":
                parsed = parse_retry_after(value)
                if parsed is not None:
                    return parsed
    metadata = error.get("metadata")
    if isinstance(metadata, Mapping):
        inner = metadata.get("headers")
        if isinstance(inner, Mapping):
            for name, value in inner.items():
                if name.lower() == "retry-after":
                    parsed = parse_retry_after(str(value))
                    if parsed is not None:
                        return parsed
                if name.lower() == "x-ratelimit-reset":
                    try:
                        reset_s = float(value) / 1000.0
                    except (TypeError, ValueError):
                        continue
                    return max(0.0, reset_s - time.time())
    return None


def _pick_kind(status: int | None, error: Mapping[str, Any], text: str) -> str:
    """The error's kind, from the status first and the server's words second."""
    code_kind = _code_kind(error)
    if code_kind == "context" or ("n_ctx" in error and "n_prompt_tokens" in error):
        return "context"
    if status == 401:
        return "auth"
    if status == 429:
        if code_kind == "credits" or _CREDITS_429_TEXT.search(text):
            return "credits"
        return "rate_limit"
    if status == 402 or code_kind == "credits":
        return "credits"
    if _CREDITS_TEXT.search(text) and status not in (403, 404):
        return "credits"
    if status in (400, 413) and _CONTEXT_TEXT.search(text):
        return "context"
    if status is None and _CONTEXT_STRONG_TEXT.search(text):
        return "context"
    if code_kind in ("auth", "model", "rate_limit"):
        return code_kind
    if status in (400, None) and _AUTH_TEXT.search(text):
        return "auth"
    if status == 403:
        return "model"
    if status in (400, 404, None) and _MODEL_MISSING_TEXT.search(text):
        return "model"
    if _LOADING_TEXT.search(text) and status in (503, None):
        return "loading"
    if status in (502, 503):
        return "upstream"
    if status in (408, 504):
        return "timeout"
    if status is None and _RATE_TEXT.search(text):
        return "rate_limit"
    return "generic"


def _context_numbers(error: Mapping[str, Any]) -> tuple[int | None, int | None]:
    prompt_tokens = error.get("n_prompt_tokens")
    window_tokens = error.get("n_ctx")
    return (
        prompt_tokens if isinstance(prompt_tokens, int) else None,
        window_tokens if isinstance(window_tokens, int) else None,
    )


def _describe(
    kind: str,
    status: int | None,
    said: str,
    error: Mapping[str, Any],
    retry_after: float | None,
    context: ErrorContext,
) -> str:
    """The message for one kind: what happened, then what to do."""
    server = context.server
    info = BACKEND_INFO.get(context.backend) or BackendInfo(context.backend, "", "", "", "", "")
    routes = info.routes_providers
    model = f"'{context.model}'" if context.model else "the requested model"
    http = f" (HTTP {status})" if status is not None else ""
    said = said.rstrip(" .")
    quoted = f": {said}" if said else ""
    if kind == "credits":
        if info.credits_url:
            free = f"pick a free model ({info.free_model_hint})" if info.free_model_hint else (
                "pick another model"
            )
            fix = f"Add credits at {info.credits_url}, or {free} with model=… or c.NbChat.model."
        else:
            fix = "Add credits or raise the quota of the account, or pick another model."
        return f"{server} refused the request for lack of credits{http}{quoted}. {fix}"
    if kind == "context":
        prompt_tokens, window_tokens = _context_numbers(error)
        if prompt_tokens is not None and window_tokens is not None:
            window = f"the context window of {model}" if context.model else "the context window"
            size = f"the prompt has {prompt_tokens} tokens but {window} holds {window_tokens}"
        else:
            window = f"the context window of {model}" if context.model else "the context window"
            size = f"the prompt is longer than {window}{quoted}"
        fix = (
            "Attach fewer or smaller files, lower the budgets (c.NbChat.attachment_budget, "
            "c.NbChat.history_files_budget), or start a new session (or use --no-history)."
        )
        if info.context_option:
            fix += f" A server started with a larger context ({info.context_option}) also helps."
        return f"The request to {server} is too long{http}: {size}. {fix}"
    if kind == "rate_limit":
        wait = (
            f"Try again in {retry_after:.0f} s"
            if retry_after is not None
            else "Wait a little and try again"
        )
        other = ", or pick another model." if routes else "."
        return f"{server} is limiting the request rate for {model}{http}{quoted}. {wait}{other}"
    if kind == "auth":
        return f"{server} rejected the API key{http}{quoted}. {_key_fix(context.backend)}"
    if kind == "model":
        where = (
            f"the list is at {info.models_url}"
            if info.models_url
            else "the server lists its models at /models"
        )
        fix = f"Pick another model with model=… or c.NbChat.model ({where})."
        if status == 404 or _MODEL_MISSING_TEXT.search(said):
            return f"{server} does not know the model {model}{http}{quoted}. {fix}"
        return f"{server} refused the request for the model {model}{http}{quoted}. {fix}"
    if kind == "loading":
        return f"{server} is still loading the model{http}: try again in a few seconds."
    if kind == "upstream":
        subject = f"The model provider behind {server}" if routes else server
        return (
            f"{subject} is unavailable{http}{quoted}. Try again in a moment"
            + (", or pick another model." if routes else ".")
        )
    if kind == "timeout":
        return (
            f"{server} timed out{http}{quoted}. Try again; a shorter prompt or a smaller "
            "max_tokens helps."
        )
    if status is None:
        return f"{server} reported an error in the middle of the answer{quoted}."
    if status == 404:
        return (
            f"{server} has no such endpoint (HTTP 404){quoted}. Check the base URL "
            "(c.NbChat.base_url or NBCHAT_BASE_URL)."
        )
    return f"{server} answered HTTP {status}{quoted}."


def _key_fix(backend: str) -> str:
    """Where to set the key of ``backend``, from the one table that describes backends."""
    info = BACKEND_INFO.get(backend)
    if info is not None and info.key_setting:
        return f"Check {info.key_hint} (and the key the server expects)."
    keyed = [i for i in BACKEND_INFO.values() if i.key_setting and i.url_setting == "base_url"]
    if info is None or not keyed:
        return "Check the key the server expects."
    other = keyed[0]
    return (
        f"The {backend} backend sends no key: for a server that wants one, use the "
        f"'{other.name}' backend (--backend {other.name}) with {other.key_hint}."
    )


def classify_error(
    status: int | None,
    body: object,
    headers: Mapping[str, str] | None,
    context: ErrorContext,
) -> BackendError:
    """A :class:`BackendError` for a refusal: ``status`` is None for an in-stream error.

    ``body`` is the response body (bytes, text, or parsed JSON) or, in a stream, the
    chunk holding the error object.
    """
    parsed = _parse_body(body)
    error = _error_object(parsed)
    said = server_message(parsed)
    real_status = _status_of(status, error)
    kind = _pick_kind(real_status, error, said)
    retry_after = _retry_after(headers, error) if kind == "rate_limit" else None
    message = _describe(kind, real_status, said, error, retry_after, context)
    return BackendError(
        redact(message, context.api_key),
        kind,
        status=real_status,
        retry_after=retry_after,
    )


def stream_error_from(error: BackendError) -> StreamError:
    """The stream event carrying the same kind, message and wait as ``error``."""
    return StreamError(kind=error.kind, message=str(error), retry_after=error.retry_after)
