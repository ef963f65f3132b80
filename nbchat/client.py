"""The one client that the magics, the widget and the Python API share.

:class:`ChatClient` holds what lives longer than a turn: the settings, the store, the
backends, the memory and the current session. It runs a turn top to bottom: the
memory's planner decides whether to recall (:mod:`nbchat.memory.planner`, pure), the
client searches and builds the prompt with the core (:mod:`nbchat.core.turn`), checks
once that the server is ready, streams, and keeps the stored result, partial ones
included. Lower layers return records; only this layer decides.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from pathlib import Path

from nbchat.core.attachments import AttachmentSpec, FileLike, as_specs
from nbchat.core.chunk_words import ChunkWordsCache
from nbchat.core.errors import BudgetError, ConfigError, NbChatError
from nbchat.core.events import Backend
from nbchat.core.settings import BACKENDS, Settings, check_turn_settings
from nbchat.core.storage import open_store
from nbchat.core.store import Session, Store, StoredFile
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
from nbchat.memory.planner import (
    RecallPlan,
    decide_recall,
    failure_notice,
    in_prompt_before,
    plan_after_compaction,
    plan_recall,
    recall_notice,
)
from nbchat.memory.service import Memory

__all__ = ["ChatClient", "memory_for", "DEFAULT_WINDOW_TOKENS"]

DEFAULT_WINDOW_TOKENS = 8192

TurnHook = Callable[[Store, TurnResult], None]


class ChatClient:
    """One conversation front end's state: settings, store, backends, current session.

    ``notebook`` keys the default session: each notebook gets its own, found again
    after a kernel restart.
    """

    def __init__(self, settings: Settings | None = None, *, notebook: str | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self.notebook = notebook
        self.session_id: str | None = None
        # The last turn stored by :meth:`run`, partial ones (Stop, Ctrl-C) included.
        self.last_result: TurnResult | None = None
        self._store: Store | None = None
        self._store_path: Path | str | None = None
        self._memory: Memory | None = None
        self._backends: dict[tuple[str, str, str | None], Backend] = {}
        self._lock = threading.RLock()
        self.on_turn_stored: list[TurnHook] = []  # called with (store, TurnResult)
        # Large files' chunks and words, split once for all of this kernel's turns.
        self.chunk_words = ChunkWordsCache()

    # -- plumbing ---------------------------------------------------------------------

    @property
    def store(self) -> Store:
        path = self.settings.resolved_db_path
        if self._store is None or self._store_path != path:
            if self._store is not None:
                self._close_memory()
                self._store.close()
            self._store = open_store(path)
            self._store_path = path
        return self._store

    @property
    def memory(self) -> Memory:
        """This client's memory, rebuilt when its database or embeddings URL changes."""
        return self.use_memory(None)

    def use_memory(self, embedding_url: str | None) -> Memory:
        """The memory with ``embedding_url`` (None: the settings' URL)."""
        store = self.store
        url = embedding_url if embedding_url is not None else self.settings.embedding_url
        with self._lock:
            memory = self._memory
            if memory is not None and memory.store is store and memory.embedding_url == (url or None):
                return memory
            if memory is not None:
                memory.close()
            self._memory = Memory(store, url)
            return self._memory

    def backend(self, settings: Settings | None = None) -> Backend:
        settings = self._served(settings or self.settings)
        # The model is not part of the key: each turn sends its own settings' model.
        key = (settings.backend, settings.resolved_base_url, _key_id(settings.backend_key))
        with self._lock:
            if key not in self._backends:
                from nbchat.backends.registry import get_backend

                self._backends[key] = get_backend(settings)
            return self._backends[key]

    def server_url(self, settings: Settings | None = None) -> str:
        """Where turns go: the URL the backend really uses (a running local engine when
        none is set). The one answer for the magics' status and the widget's header."""
        settings = settings or self.settings
        try:
            return str(getattr(self.backend(settings), "base_url", settings.resolved_base_url))
        except NbChatError:
            return self._served_url(settings)

    def _served_url(self, settings: Settings) -> str:
        try:
            return self._served(settings).resolved_base_url
        except NbChatError:
            return settings.resolved_base_url

    def _served(self, settings: Settings) -> Settings:
        """``settings`` with the server a turn would use filled in."""
        if settings.backend not in BACKENDS:
            raise ConfigError(
                f"Unknown backend {settings.backend!r}: use one of {', '.join(BACKENDS)}."
            )
        if settings.backend == "llama" and not settings.base_url:
            # No server named: use the local engine when one is running.
            from nbchat.engine import engine_url

            settings = settings.replace(base_url=engine_url("chat"))
        return settings

    def close(self) -> None:
        self._close_memory()
        for backend in self._backends.values():
            backend.close()
        self._backends.clear()
        if self._store is not None:
            self._store.close()
            self._store = None
            self._store_path = None

    def _close_memory(self) -> None:
        with self._lock:
            memory, self._memory = self._memory, None
        if memory is not None:
            memory.close()

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

    def store_file(
        self, name: str, data: bytes, *, mime: str | None = None
    ) -> tuple[StoredFile, bool]:
        """Save ``data`` in the file store as ``name`` within this client's limits, if
        nbchat could attach it; also says whether a file of that name was replaced.
        ``%chat store`` and the panel's uploads both come here."""
        from nbchat.core.attachments import store_file

        replaced = self.store.get_file(name) is not None
        stored = store_file(
            self.store, name, data, max_file_bytes=self.settings.max_file_bytes,
            max_inflated_bytes=self.settings.max_inflated_bytes, mime=mime,
        )
        return stored, replaced

    def fork(self, upto_turn: int | None = None, title: str = "") -> Session:
        """A new session holding this one's history up to turn ``upto_turn`` (1-based)."""
        source = self.current_session()
        if source is None:
            raise ConfigError("There is no session to fork yet: chat first.")
        store = self.store
        messages = store.messages(source.id)
        if upto_turn is not None:
            turns = len({m.seq // 2 for m in messages})
            if not 1 <= upto_turn <= turns:
                counted = f"{turns} turn" if turns == 1 else f"{turns} turns"
                raise ConfigError(
                    f"Session {source.id} has {counted}, so there is no turn {upto_turn} to "
                    f"fork at: give a turn from 1 to {turns}, or none to fork it all."
                )
            messages = [m for m in messages if m.seq < 2 * upto_turn]
        attachments = store.attachments(source.id)
        with store.transaction() as db:
            session = store.create_session(
                title=title or f"{source.title} (fork)",
                notebook=self.notebook,
                system_prompt=source.system_prompt,
                model=source.model,
                backend=source.backend,
                parent_id=source.id,
                db=db,
            )
            store.set_history(
                db, session.id, start_seq=source.history_start_seq,
                carried_files=source.carried_files, compacted=False,
            )
            ids: dict[int, int] = {}
            for m in messages:
                copy = store.add_message(
                    db, session_id=session.id, role=m.role, content=m.content,
                    rendered=m.rendered, status=m.status, error_kind=m.error_kind,
                    error_message=m.error_message, importance=m.importance, tokens=m.tokens,
                    usage=m.usage, timings=m.timings, model=m.model,
                )
                ids[m.id] = copy.id
            for a in attachments:
                if a.message_id in ids:
                    store.record_attachment(
                        db, session_id=session.id, message_id=ids[a.message_id], kind=a.kind,
                        name=a.name, path=a.path, sha256=a.sha256, fingerprint=a.fingerprint,
                        total_tokens=a.total_tokens, kept_tokens=a.kept_tokens,
                    )
        self.session_id = session.id
        found = store.get_session(session.id)
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
        if settings.resolved_db_path != self._store_path:
            raise ConfigError(
                f"This client works on the database {store.location}, not "
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

        # With an embeddings server, a large file's passages rank by meaning too (the
        # question is embedded only if a file's passages are ranked).
        memory = self.memory
        passage_vector = (
            (lambda: memory.passage_query(prompt)) if memory.client is not None else None
        )

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
                query_vector=passage_vector,
                chunk_words=self.chunk_words,
            )

        if recalled:
            prepared = turn(recalled)
        else:
            prepared = self._prepare_with_recall(
                turn, prompt, session=current, counter=counter, settings=settings,
                forced=recall, no_history=no_history,
            )
        return count_whole_prompt(prepared) if count_prompt and exact_tokens else prepared

    def _prepare_with_recall(
        self,
        turn: Callable[[str], PreparedTurn],
        prompt: str,
        *,
        session: Session | None,
        counter: CachedCounter,
        settings: Settings,
        forced: bool,
        no_history: bool,
    ) -> PreparedTurn:
        """``turn(recalled)`` with the block the planner chose, or ``turn("")``.

        ``turn``'s own errors (a bad attachment, a question too long) propagate as they
        would without memory. A failure of the memory itself costs only the recalled
        block, and says so in a notice.
        """
        notices: list[str] = []
        plan: RecallPlan | None = None
        memory: Memory | None = None
        session_id = session.id if session is not None else None
        try:
            memory = self.memory
            decision = decide_recall(
                prompt,
                session_id=session_id,
                forced=forced,
                compacted=bool(
                    session is not None and session.history_start_seq > 0 and not no_history
                ),
            )
            if decision is not None or memory.attached_ids:
                ids, text = in_prompt_before(memory.store, session, no_history)
                plan = plan_recall(
                    memory, prompt, decision=decision, in_prompt_ids=ids, in_prompt_text=text,
                    counter=counter, budget_tokens=settings.recall_budget,
                    attached_ids=list(memory.attached_ids),
                )
        except Exception as exc:  # noqa: BLE001 - memory must never cost the user the turn
            notices.append(failure_notice(exc))
            plan = None

        prepared: PreparedTurn | None = None
        if plan is not None and plan.text:
            try:
                prepared = turn(plan.text)
            except BudgetError:
                notices.append(
                    "The recalled earlier conversation did not fit the context window, so it "
                    "was left out."
                )
                plan = None
        if prepared is None:
            prepared = turn("")

        dropped_now = prepared.report.dropped_turns > 0 and session is not None
        if dropped_now and memory is not None and not notices and (plan is None or not plan.text):
            try:
                plan = plan_after_compaction(memory, prompt, prepared, counter, settings)
                if plan.text:
                    try:
                        prepared = turn(plan.text)
                    except BudgetError:
                        plan = None
            except Exception as exc:  # noqa: BLE001 - as above
                notices.append(failure_notice(exc))
                plan = None

        notice = recall_notice(plan, prepared.report.recall_tokens)
        if notice:
            notices.append(notice)
        return prepared.with_notices(notices)

    def run(self, prepared: PreparedTurn) -> Generator[TurnEvent, None, None]:
        """Send a prepared turn: deltas and usage as they come, then the stored result.

        The server's readiness is checked here, once per turn, when ``run`` is called
        (not at the first event): a server that cannot take the turn raises before
        anything is stored or shown. Whatever stops the stream, the stored result
        (partial when cut short) is kept in :attr:`last_result`, so a caller that was
        interrupted need not look for it.
        """
        backend = self.backend(prepared.settings)
        self.last_result = None
        backend.check_ready()
        return self._stream(prepared, backend)

    def _stream(self, prepared: PreparedTurn, backend: Backend) -> Generator[TurnEvent, None, None]:
        events = run_turn(self.store, backend, prepared, on_stored=self._keep_result)
        resume_embeddings = self._hold_embeddings()  # the engine's CPU goes to this answer
        try:
            for event in events:
                if isinstance(event, TurnResult):
                    for hook in [self._remember_turn, *self.on_turn_stored]:
                        hook(self.store, event)
                yield event
        finally:
            # Closed early (Stop, Ctrl-C): the core stores the partial answer now, and
            # the next turn continues the session this one started.
            events.close()
            resume_embeddings()

    def _keep_result(self, result: TurnResult) -> None:
        self.last_result = result
        self.session_id = result.session_id

    def _hold_embeddings(self) -> Callable[[], None]:
        """Pause the background embedding while a turn is answered; returns the resume.

        Never raises: the memory must not cost the turn.
        """
        try:
            memory = self.memory
            memory.hold_embeddings()
        except Exception:  # noqa: BLE001 - best effort, as _remember_turn
            return lambda: None
        return memory.release_embeddings

    def _remember_turn(self, store: Store, result: TurnResult) -> None:
        """Hand a stored turn to the memory (background embeddings); never raises."""
        try:
            self.memory.after_turn()
        except Exception:  # noqa: BLE001 - memory is best effort; the turn is already stored
            import logging

            logging.getLogger("nbchat.memory").debug("memory hook failed", exc_info=True)

    def _counter(self, backend: Backend, exact: bool) -> CachedCounter:
        inner = backend.token_counter() if exact else None
        return CachedCounter(inner or EstimateCounter(), self.store)


def memory_for(client: ChatClient, embedding_url: str | None = None) -> Memory:
    """``client.memory``, or its memory with another embeddings URL when one is given."""
    return client.use_memory(embedding_url)


def _window(backend: Backend, settings: Settings) -> int | None:
    try:
        return backend.context_window(settings.resolved_model)
    except Exception:  # noqa: BLE001 - a window we cannot learn falls back to the default
        return None


def _key_id(api_key: str | None) -> str | None:
    if not api_key:
        return None
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]
