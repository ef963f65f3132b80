"""The Python API: :func:`chat`, :func:`iter_chat` and :func:`dry_run`.

They use one default :class:`~nbchat.client.ChatClient` per process (one more per
database a call names with ``db_path``); the client is re-exported here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from nbchat.client import DEFAULT_WINDOW_TOKENS, ChatClient
from nbchat.core.attachments import FileLike
from nbchat.core.events import TextDelta
from nbchat.core.settings import Settings
from nbchat.core.turn import PreparedTurn, TurnEvent, TurnResult

__all__ = ["ChatClient", "chat", "iter_chat", "dry_run", "default_client", "DEFAULT_WINDOW_TOKENS"]


_DEFAULT: ChatClient | None = None
# Clients of the databases named by a call's ``db_path``, one per file: each keeps its
# own current session, memory and store.
_BY_DATABASE: dict[Path | str, ChatClient] = {}


def default_client() -> ChatClient:
    """The process's client for the module-level functions.

    Its settings are read from the environment afresh on every call, as the magics
    read ``NbChat`` on every cell: a variable set in the kernel applies to the next call.
    """
    global _DEFAULT
    settings = Settings.from_env()
    if _DEFAULT is None:
        _DEFAULT = ChatClient(settings)
    else:
        _DEFAULT.settings = settings
    return _DEFAULT


def _call(
    backend: str | None,
    model: str | None,
    max_tokens: int | None,
    temperature: float | None,
    overrides: dict[str, Any],
) -> tuple[ChatClient, Settings]:
    """The client and settings of one module-level call: its keywords win over all.

    A ``db_path`` keyword picks the client of that database, so the turn is read from
    and stored in it, and a later call naming it continues its conversation.
    """
    client = default_client()
    settings = client.settings.replace(
        backend=backend, model=model, max_tokens=max_tokens, temperature=temperature, **overrides
    )
    path = settings.resolved_db_path
    if path != client.settings.resolved_db_path:
        base = client.settings.replace(db_path=path)
        if path not in _BY_DATABASE:
            _BY_DATABASE[path] = ChatClient(base)
        client = _BY_DATABASE[path]
        client.settings = base
    return client, settings


def dry_run(
    prompt: str,
    files: Iterable[FileLike] | None = None,
    session: str | None = None,
    *,
    backend: str | None = None,
    model: str | None = None,
    max_tokens: int | None = None,
    new: bool = False,
    no_history: bool = False,
    recall: bool = False,
    **overrides: Any,
) -> PreparedTurn:
    """The exact messages and token report of a turn, without sending or storing.

    The report counts each part alone; its total is the server's count of the whole
    prompt on llama-server (``report.exact``), an estimate elsewhere.
    ``recall=True`` makes the memory search past messages whatever the prompt says.
    """
    client, settings = _call(backend, model, max_tokens, None, overrides)
    prepared = client.prepare(
        prompt, files, session=session, new=new, no_history=no_history, settings=settings,
        recall=recall, count_prompt=True,
    )
    prepared.resolver.remember()
    return prepared


def iter_chat(
    prompt: str,
    files: Iterable[FileLike] | None = None,
    session: str | None = None,
    *,
    backend: str | None = None,
    model: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    new: bool = False,
    no_history: bool = False,
    recall: bool = False,
    **overrides: Any,
) -> Iterator[str]:
    """Yield the answer's text as it streams; the stored result is :func:`last_result`."""
    call = _call(backend, model, max_tokens, temperature, overrides)
    for event in _events(call, prompt, files, session, new, no_history, recall):
        if isinstance(event, TextDelta):
            yield event.text


def chat(
    prompt: str,
    files: Iterable[FileLike] | None = None,
    session: str | None = None,
    *,
    backend: str | None = None,
    model: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    new: bool = False,
    no_history: bool = False,
    recall: bool = False,
    **overrides: Any,
) -> TurnResult:
    """Send one turn and return it once stored (``.text``, ``.status``, ``.usage``...).

    ``recall=True`` makes the memory search past messages whatever the prompt says.
    """
    result: TurnResult | None = None
    call = _call(backend, model, max_tokens, temperature, overrides)
    for event in _events(call, prompt, files, session, new, no_history, recall):
        if isinstance(event, TurnResult):
            result = event
    assert result is not None
    return result


_LAST: dict[str, TurnResult] = {}


def last_result() -> TurnResult | None:
    """The result of the last turn sent through the module functions."""
    return _LAST.get("result")


def _events(
    call: tuple[ChatClient, Settings],
    prompt: str,
    files: Iterable[FileLike] | None,
    session: str | None,
    new: bool,
    no_history: bool,
    recall: bool,
) -> Iterator[TurnEvent]:
    client, settings = call
    prepared = client.prepare(
        prompt, files, session=session, new=new, no_history=no_history, settings=settings,
        recall=recall,
    )
    for event in client.run(prepared):
        if isinstance(event, TurnResult):
            _LAST["result"] = event
        yield event
