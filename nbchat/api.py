"""The Python API, and the one client that the magics and the widget share.

:class:`ChatClient` holds what lives longer than a turn: the store, the backends and
the current session. The module functions :func:`chat`, :func:`iter_chat` and
:func:`dry_run` use one default client per process.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from nbchat.core.attachments import AttachmentSpec, FileLike, as_specs
from nbchat.core.errors import ConfigError
from nbchat.core.events import Backend, TextDelta
from nbchat.core.settings import BACKENDS, Settings, check_turn_settings
from nbchat.core.store import Session, Store
from nbchat.core.tokens import CachedCounter, EstimateCounter
from nbchat.core.turn import (
    NewSession,
    PreparedTurn,
    TurnEvent,
    TurnResult,
    count_whole_prompt,
    prepare_turn,
    run_turn,
)

__all__ = ["ChatClient", "chat", "iter_chat", "dry_run", "default_client"]

DEFAULT_WINDOW_TOKENS = 8192


class ChatClient:
    """One conversation front end's state: settings, store, backends, current session.

    ``notebook`` keys the default session: each notebook gets its own, found again
    after a kernel restart.
    """

    def __init__(self, settings: Settings | None = None, *, notebook: str | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.notebook = notebook
        self.session_id: str | None = None
        self._store: Store | None = None
        self._backends: dict[tuple[str, str, str | None], Backend] = {}
        self._lock = threading.RLock()
        self.on_turn_stored: list[Any] = []  # callables(store, TurnResult), e.g. memory
        self.on_turn_stored.append(self._remember_turn)

    # -- plumbing ---------------------------------------------------------------------

    @property
    def store(self) -> Store:
        path = self.settings.resolved_db_path
        if self._store is None or self._store.path != path:
            if self._store is not None:
                self._store.close()
            self._store = Store(path)
        return self._store

    def backend(self, settings: Settings | None = None) -> Backend:
        settings = settings or self.settings
        if settings.backend not in BACKENDS:
            raise ConfigError(
                f"Unknown backend {settings.backend!r}: use one of {', '.join(BACKENDS)}."
            )
        if settings.backend == "llama" and not settings.base_url:
            # No server named: use the local engine when one is running.
            from nbchat.engine import engine_url

            settings = settings.replace(base_url=engine_url("chat"))
        # The model is not part of the key: each turn sends its own settings' model.
        key = (settings.backend, settings.resolved_base_url, _key_id(settings.backend_key))
        with self._lock:
            if key not in self._backends:
                from nbchat.backends.registry import get_backend

                self._backends[key] = get_backend(settings)
            return self._backends[key]

    def close(self) -> None:
        from nbchat.memory.service import close_memory

        close_memory(self)
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
        if self._store is not None:
            self._store.close()
            self._store = None

    # -- sessions ---------------------------------------------------------------------

    def current_session(self) -> Session | None:
        """The session the next turn continues, or None when it will start a new one."""
        if self.session_id is not None:
            return self.store.get_session(self.session_id)
        if self.notebook is not None:
            found = self.store.latest_session_for_notebook(self.notebook)
            if found is not None:
                self.session_id = found.id
            return found
        return None

    def use_session(self, key: str) -> Session:
        found = self.store.get_session(key)
        if found is None:
            raise ConfigError(
                f"No session {key!r}: list them with `%chat sessions`, or start one with "
                "`%chat new TITLE`."
            )
        self.session_id = found.id
        return found

    def new_session(self, title: str = "", *, system_prompt: str | None = None) -> Session:
        session = self.store.create_session(
            title=title,
            notebook=self.notebook,
            system_prompt=system_prompt if system_prompt is not None else self.settings.system_prompt,
            model=self.settings.model,
            backend=self.settings.backend,
        )
        self.session_id = session.id
        return session

    def fork(self, upto_turn: int | None = None, title: str = "") -> Session:
        """A new session holding this one's history up to turn ``upto_turn`` (1-based)."""
        source = self.current_session()
        if source is None:
            raise ConfigError("There is no session to fork yet: chat first.")
        messages = self.store.messages(source.id)
        if upto_turn is not None:
            turns = len({m.seq // 2 for m in messages})
            if not 1 <= upto_turn <= turns:
                counted = f"{turns} turn" if turns == 1 else f"{turns} turns"
                raise ConfigError(
                    f"Session {source.id} has {counted}, so there is no turn {upto_turn} to "
                    f"fork at: give a turn from 1 to {turns}, or none to fork it all."
                )
            messages = [m for m in messages if m.seq < 2 * upto_turn]
        attachments = self.store.attachments(source.id)
        with self.store.transaction() as db:
            session = self.store.create_session(
                title=title or f"{source.title} (fork)",
                notebook=self.notebook,
                system_prompt=source.system_prompt,
                model=source.model,
                backend=source.backend,
                parent_id=source.id,
                db=db,
            )
            db.execute(
                "UPDATE sessions SET history_start_seq = ?, carried_files = ? WHERE id = ?",
                (source.history_start_seq, source.carried_files, session.id),
            )
            ids: dict[int, int] = {}
            for m in messages:
                copy = self.store.add_message(
                    db, session_id=session.id, role=m.role, content=m.content,
                    rendered=m.rendered, status=m.status, error_kind=m.error_kind,
                    error_message=m.error_message, importance=m.importance, tokens=m.tokens,
                    usage=m.usage, timings=m.timings, model=m.model,
                )
                ids[m.id] = copy.id
            for a in attachments:
                if a.message_id in ids:
                    self.store.record_attachment(
                        db, session_id=session.id, message_id=ids[a.message_id], kind=a.kind,
                        name=a.name, path=a.path, sha256=a.sha256, fingerprint=a.fingerprint,
                        total_tokens=a.total_tokens, kept_tokens=a.kept_tokens,
                    )
        self.session_id = session.id
        found = self.store.get_session(session.id)
        assert found is not None
        return found

    # -- turns ------------------------------------------------------------------------

    def prepare(
        self,
        prompt: str,
        files: Iterable[FileLike] | None = None,
        *,
        session: str | None = None,
        new: bool = False,
        no_history: bool = False,
        settings: Settings | None = None,
        recalled: str = "",
        exact_tokens: bool = True,
        recall: bool = False,
        count_prompt: bool = False,
    ) -> PreparedTurn:
        """The exact messages and token report of a turn; writes nothing.

        Unless ``recalled`` gives the block itself, the memory's planner may add relevant
        past messages (``recall=True`` asks it to search whatever the prompt says).
        ``count_prompt`` has the server count the whole prompt for the report's total
        (for reports that are shown; a turn about to be sent does not need it).
        """
        settings = settings or self.settings
        store = self.store
        if settings.resolved_db_path != store.path:
            raise ConfigError(
                f"This client works on the database {store.path}, not "
                f"{settings.resolved_db_path}: use a ChatClient whose settings name it "
                "(nbchat.chat(db_path=...) does this for you)."
            )
        check_turn_settings(settings)
        specs: Sequence[AttachmentSpec] = as_specs(files, store)
        current: Session | None
        new_spec: NewSession | None = None
        if new:
            current = None
            new_spec = NewSession(
                session or "", self.notebook, settings.system_prompt, settings.model,
                settings.backend,
            )
        elif session is not None:
            current = store.get_session(session)
            if current is None:
                new_spec = NewSession(
                    session, self.notebook, settings.system_prompt, settings.model,
                    settings.backend,
                )
        else:
            current = self.current_session()
            if current is None:
                new_spec = NewSession(
                    "", self.notebook, settings.system_prompt, settings.model, settings.backend
                )
        backend = self.backend(settings)
        counter = self._counter(backend, exact_tokens)
        window = settings.context_window or _window(backend, settings) or DEFAULT_WINDOW_TOKENS
        system_override = settings.system_prompt if (
            current is not None and settings.system_prompt != self.settings.system_prompt
        ) else None

        def turn(recalled_text: str) -> PreparedTurn:
            return prepare_turn(
                store,
                settings,
                prompt,
                specs,
                session=current,
                new_session=new_spec,
                counter=counter,
                window_tokens=window,
                no_history=no_history,
                system_prompt=system_override,
                recalled=recalled_text,
            )

        if recalled:
            prepared = turn(recalled)
        else:
            from nbchat.memory.planner import prepare_with_recall

            prepared = prepare_with_recall(
                self, turn, prompt, session=current, counter=counter, settings=settings,
                forced=recall, no_history=no_history,
            )
        return count_whole_prompt(prepared) if count_prompt and exact_tokens else prepared

    def run(self, prepared: PreparedTurn) -> Iterator[TurnEvent]:
        """Send a prepared turn: deltas and usage as they come, then the stored result."""
        backend = self.backend(prepared.settings)
        check = getattr(backend, "check_ready", None)
        if check is not None:
            check()  # a dead server is reported before anything is stored
        events = run_turn(self.store, backend, prepared)
        from nbchat.memory.service import hold_embeddings

        resume_embeddings = hold_embeddings(self)  # the engine's CPU goes to this answer
        try:
            for event in events:
                if isinstance(event, TurnResult):
                    self.session_id = event.session_id
                    for hook in self.on_turn_stored:
                        hook(self.store, event)
                yield event
        finally:
            # Closed early (Stop, Ctrl-C): the core stores the partial answer now, and
            # the next turn continues the session this one started.
            events.close()
            resume_embeddings()
            if prepared.session is not None:
                self.session_id = prepared.session.id

    def _remember_turn(self, store: Store, result: TurnResult) -> None:
        """Hand a stored turn to the memory (background embeddings); never raises."""
        from nbchat.memory.service import remember_turn

        remember_turn(self, store, result)

    def _counter(self, backend: Backend, exact: bool) -> CachedCounter:
        inner = backend.token_counter() if exact else None
        return CachedCounter(inner or EstimateCounter(), self.store)


def _window(backend: Backend, settings: Settings) -> int | None:
    try:
        return backend.context_window(settings.resolved_model)
    except Exception:  # noqa: BLE001 - a window we cannot learn falls back to the default
        return None


def _key_id(api_key: str | None) -> str | None:
    if not api_key:
        return None
    import hashlib

    return hashlib.sha256(api_key.encode()).hexdigest()[:16]


_DEFAULT: ChatClient | None = None
# Clients of the databases named by a call's ``db_path``, one per file: each keeps its
# own current session, memory and store.
_BY_DATABASE: dict[Path, ChatClient] = {}


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
