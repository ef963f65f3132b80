"""``%chat status`` and ``%chat config``: where turns go and which settings are in effect."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nbchat.core.errors import BackendError, NbChatError
from nbchat.notebook.parsing import no_arguments
from nbchat.notebook.text import table, title_text, turns_text

if TYPE_CHECKING:
    from nbchat.client import ChatClient
    from nbchat.core.settings import Settings

__all__ = ["status", "config", "server_state", "embeddings_state"]

# How a failed readiness check reads in the status table, by error kind.
_HEALTH_WORDS = {"loading": "loading the model", "unreachable": "not running",
                 "timeout": "not answering"}


def status(shell: Any, client: "ChatClient", argv: list[str]) -> None:
    no_arguments("status", argv)
    settings = client.settings
    server, window, model, url = server_state(client, settings)
    rows = [
        ("backend", settings.backend),
        ("model", model or "(the server's default)"),
        ("base URL", url),
        ("server", server),
        ("context window", window),
        ("database", str(settings.resolved_db_path)),
        ("embeddings", embeddings_state(settings)),
        ("session", _session_line(client)),
        ("notebook", client.notebook or ""),
    ]
    print(table(rows))


def config(shell: Any, client: "ChatClient", argv: list[str]) -> None:
    from nbchat.notebook.config import KEY_TRAITS, SETTING_TRAITS
    from nbchat.notebook.state import config_for

    no_arguments("config", argv)
    configurable = config_for(shell)
    settings = client.settings
    rows = []
    for name in SETTING_TRAITS:
        value: Any = getattr(settings, name)
        if name in KEY_TRAITS:
            value = "set (hidden)" if value else "not set"  # a key's state, never its value
        elif name == "db_path":
            value = settings.resolved_db_path
        elif name == "base_url":
            value = settings.resolved_base_url
        elif value is None:
            value = "(not set)"
        text = str(value)
        if len(text) > 70:
            text = text[:69] + "…"
        rows.append((name, f"{text}  [{configurable.source_of(name)}]"))
    print("NbChat configuration (change with %config NbChat.NAME = value):")
    print(table(rows, indent="  "))


def server_state(client: "ChatClient", settings: "Settings") -> tuple[str, str, str | None, str]:
    """(health, context window, model label, URL) of the server turns go to."""
    from nbchat.client import DEFAULT_WINDOW_TOKENS
    from nbchat.backends.probe import served_model

    url = client.server_url(settings)
    try:
        backend = client.backend(settings)
    except NbChatError as error:
        return f"not usable: {error}", "unknown", settings.resolved_model, url
    probe = getattr(backend, "health", None)  # a status probe, when the backend has one
    try:
        if callable(probe):
            health = str(probe())
        else:
            backend.check_ready()
            health = "ok"
    except BackendError as error:
        health = f"{_HEALTH_WORDS.get(error.kind, 'error')} ({error})"
    if settings.context_window:
        window = f"{settings.context_window:,} tokens (NbChat.context_window)"
    else:
        try:
            found = backend.context_window(settings.resolved_model)
        except Exception:  # noqa: BLE001 - unknown is an answer too
            found = None
        window = (
            f"{found:,} tokens (from the server)" if found
            else f"unknown ({DEFAULT_WINDOW_TOKENS:,} assumed)"
        )
    model = (
        served_model(backend, settings.resolved_model) if health == "ok"
        else settings.resolved_model
    )
    return health, window, model, url


def embeddings_state(settings: "Settings") -> str:
    from nbchat.backends.probe import probe_url

    url = settings.embedding_url
    if not url:
        return "off (set NbChat.embedding_url, or `%chat engine start --embeddings`)"
    health = probe_url(url.rstrip("/") + "/health", timeout_s=2.0)
    if health == "ok":
        return f"on ({url})"
    return f"off: {url} {health}"


def _session_line(client: "ChatClient") -> str:
    session = client.current_session()
    if session is None:
        return "none yet (the next %%chat starts one)"
    turns = client.store.message_counts().get(session.id, 0) // 2
    return f"{session.id}{title_text(session)} ({turns_text(turns)})"
