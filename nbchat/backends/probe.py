"""Asking a server how it is, for status lines: reachable or not, which model it runs.

Turns never go through here: they check readiness once, with ``Backend.check_ready``.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["probe_url", "served_model"]


def probe_url(url: str, timeout_s: float = 3.0) -> str:
    """``ok`` when ``url`` answers 2xx, else what happened (no credentials are sent)."""
    import urllib.error
    import urllib.request

    opener = urllib.request.build_opener()
    if url.startswith(("http://127.0.0.1", "http://localhost")):
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout_s) as response:
            status = int(response.status)
            return "ok" if 200 <= status < 300 else f"answers HTTP {status}"
    except urllib.error.HTTPError as error:
        return f"reachable (HTTP {error.code} without credentials)"
    except (OSError, ValueError) as error:
        reason = getattr(error, "reason", error)
        return f"not reachable ({reason})"


def served_model(backend: Any, model: str | None) -> str | None:
    """The model's name: ``model`` when the turn names one, else (a llama-server picking
    its own) what the server says it runs, from its ``/props``; None when unknown."""
    if model:
        return model
    props = getattr(backend, "props", None)
    if callable(props):
        try:
            found = props()
        except Exception:  # noqa: BLE001 - a label without a model name is fine
            found = None
        if found:
            name = str(found.get("model_alias") or found.get("model_path") or "")
            name = os.path.basename(name)
            return name[: -len(".gguf")] if name.endswith(".gguf") else (name or None)
    return None
