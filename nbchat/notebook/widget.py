"""The chat panel: an anywidget over the same :class:`~nbchat.client.ChatClient` as ``%%chat``.

The widget holds no prompt logic: every send is ``client.prepare(...)`` then
``client.run(...)``, so the panel and the magics share the core, the backends and the
store. State lives in synced traits (a view displayed later, or again, draws itself from
them); only the answer's new text travels as custom messages while it streams, batched
at ``settings.stream_update_interval``. When the turn ends, the browser appends it to its
copy of the message list from the text it already has, so an answer crosses the comm
once, not twice, and the history is never re-sent (``_finish_turn``).

The answer streams on a worker thread. The kernel keeps handling comm messages in the
meantime, so the Stop button's message arrives mid-answer; it sets an event that the
streaming loop checks, and the loop then closes the turn, which stores the partial
answer, marked. Trait writes from both threads go through one lock.

Markdown is rendered in the browser by the bundled marked + DOMPurify, with raw HTML
escaped (``static/markdown-src/``): model output can never run script or add markup.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from nbchat.client import ChatClient
from nbchat.core.attachments import AttachmentSpec, stored_spec
from nbchat.core.dataframe import fingerprint, is_dataframe
from nbchat.core.errors import NbChatError
from nbchat.core.events import PromptProgress, TextDelta
from nbchat.core.settings import Settings
from nbchat.core.store import Session, StoredMessage
from nbchat.core.turn import PreparedTurn, TokenReport, TurnResult
from nbchat.notebook.footer import footer_text
from nbchat.notebook.specs import dataframe_spec
from nbchat.notebook.text import short_size_text

__all__ = ["ChatWidget", "Traffic"]

STATIC = Path(__file__).parent / "static"
HISTORY_SHOWN = 200  # messages drawn in the panel; older ones stay in the store
SESSIONS_SHOWN = 50
EMPTY_DRAFT = "?"  # the token meter's stand-in question while the input box is empty
# A streamed update waits at least ``stream_update_interval``, and then until it carries
# MIN_DELTA_BYTES of text (about its own envelope, so the bytes sent stay under twice the
# answer's) or MAX_DELTA_WAIT intervals have passed (so a slow model still flows).
MIN_DELTA_BYTES = 64
MAX_DELTA_WAIT = 6

log = logging.getLogger("nbchat.widget")


def _panel_module() -> str:
    """The front end: the Markdown bundle (defines ``nbchatMarkdown``), then the panel."""
    bundle = (STATIC / "markdown.bundle.js").read_text(encoding="utf-8")
    panel = (STATIC / "panel.js").read_text(encoding="utf-8")
    return bundle + "\n" + panel


@dataclass
class Traffic:
    """What the widget sent to the browser: comm messages and their JSON payload bytes.

    ``delta_*`` counts the streamed answer text messages only; the rest are state
    updates. Jupyter's own envelope (headers, about 0.5 KB a message) is not included.
    """

    messages: int = 0
    payload_bytes: int = 0
    delta_messages: int = 0
    delta_bytes: int = 0

    def add(self, payload_bytes: int, *, delta: bool) -> None:
        self.messages += 1
        self.payload_bytes += payload_bytes
        if delta:
            self.delta_messages += 1
            self.delta_bytes += payload_bytes


class _LatestJob:
    """Runs submitted jobs one at a time on a worker thread; a job overtaken while it
    waited is dropped (only the newest draft's token count matters)."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._job: Callable[[], None] | None = None
        self._running = False

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._job = job
            if self._running:
                return
            self._running = True
        threading.Thread(target=self._loop, name=self._name, daemon=True).start()

    def _loop(self) -> None:
        while True:
            with self._lock:
                job, self._job = self._job, None
                if job is None:
                    self._running = False
                    self._idle.notify_all()
                    return
            try:
                job()
            except Exception:  # noqa: BLE001 - a failed count must not kill the worker
                log.exception("nbchat widget: a background job failed")

    def wait(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True


class ChatWidget(anywidget.AnyWidget):
    """A chat panel: messages, input box, attachments, token meter, sessions.

    ``client`` is the :class:`~nbchat.client.ChatClient` to talk through; by default the
    notebook's (the one ``%%chat`` uses), else a new one. ``traffic`` counts what the
    widget has sent to the browser (reset it with ``widget.traffic = Traffic()``).
    """

    _esm = _panel_module()
    _css = STATIC / "panel.css"

    messages = traitlets.List(
        traitlets.Dict(), help="The session's messages as drawn (role, text, status, footer...)."
    ).tag(sync=True)
    session_id = traitlets.Unicode("", help="The shown session; '' until a new one starts.").tag(
        sync=True
    )
    session_title = traitlets.Unicode("").tag(sync=True)
    sessions = traitlets.List(traitlets.Dict(), help="Sessions for the picker.").tag(sync=True)
    earlier_messages = traitlets.Int(0, help="Messages of the session not drawn.").tag(sync=True)
    pending = traitlets.Dict(help="The question being answered: {question, files}.").tag(sync=True)
    streaming = traitlets.Bool(False, help="A turn is under way (Send is Stop).").tag(sync=True)
    phase = traitlets.Unicode("", help="'', 'preparing', 'streaming' or 'stopping'.").tag(
        sync=True
    )
    error = traitlets.Unicode("", help="The last error, shown inline until the next send.").tag(
        sync=True
    )
    attachments = traitlets.List(traitlets.Dict(), help="Attached for the next send.").tag(
        sync=True
    )
    dataframes = traitlets.List(traitlets.Dict(), help="DataFrames in the user namespace.").tag(
        sync=True
    )
    meter = traitlets.Dict(help="Token report of the current draft (the dry run's).").tag(sync=True)
    model_label = traitlets.Unicode("").tag(sync=True)
    progress = traitlets.Unicode(
        "", help="How far a long prompt has been read; '' once the answer starts."
    ).tag(sync=True)
    max_upload_bytes = traitlets.Int(0).tag(sync=True)
    last_error = traitlets.Dict(
        help="The kernel's last error, {cell, summary}, for 'Explain last error'; {} if none."
    ).tag(sync=True)

    def __init__(self, client: ChatClient | None = None, **kwargs: Any) -> None:
        self.traffic = Traffic()  # before the comm opens: every message is counted
        self._quiet: set[str] = set()
        super().__init__(**kwargs)
        self.client = client if client is not None else _default_client()
        self._shell = _current_shell()
        self._sync_lock = threading.RLock()
        self._stop = threading.Event()
        self._turn: threading.Thread | None = None
        self._meter_jobs = _LatestJob("nbchat-widget-meter")
        self._draft = ""
        self._new_next = False
        self._committed = False
        self._streamed: list[str] = []  # the deltas of the answer under way, as sent
        self._footers: dict[int, str] = {}
        self._files: dict[str, AttachmentSpec] = {}  # attachment key -> spec (uploads)
        self._frame_specs: dict[str, tuple[int, AttachmentSpec]] = {}  # name -> (id, spec)
        self.on_msg(_dispatch)
        hook = _TurnStoredHook(self)
        self.client.on_turn_stored.append(hook)
        weakref.finalize(self, _remove_hook, self.client.on_turn_stored, hook)
        self._follow_errors()
        try:
            self.refresh()
        except NbChatError as error:  # e.g. the database cannot be opened: say so in the panel
            self._update(error=str(error))

    # -- public -----------------------------------------------------------------------

    def refresh(self) -> None:
        """Reload the session's messages, the session list and the DataFrame list."""
        with self._sync_lock, self.hold_sync():
            self._load_session()
            self._list_dataframes()
        self._request_meter()

    def wait(self, timeout_s: float = 30.0) -> bool:
        """Block until the answer under way and the token meter are done (scripts, tests)."""
        deadline = time.monotonic() + timeout_s
        turn = self._turn
        if turn is not None:
            turn.join(max(0.0, deadline - time.monotonic()))
            if turn.is_alive():
                return False
        return self._meter_jobs.wait(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Stop an answer under way (it is stored, marked partial) and close the panel."""
        self._stop.set()
        super().close()

    # -- messages from the browser ----------------------------------------------------

    def handle_message(self, content: dict[str, Any], buffers: list[Any]) -> None:
        """One message from the panel (``content["type"]`` says which)."""
        kind = content.get("type")
        handler = _HANDLERS.get(str(kind))
        if handler is None:
            return
        try:
            handler(self, content, buffers)
        except NbChatError as error:
            self._update(error=str(error))
        except Exception as error:  # noqa: BLE001 - a bug: say so, keep the kernel quiet
            log.exception("nbchat widget: handling %r failed", kind)
            self._update(error=_bug_text(error))

    def _on_send(self, content: dict[str, Any], buffers: list[Any]) -> None:
        self._start_turn(str(content.get("text") or ""))

    def _on_explain_error(self, content: dict[str, Any], buffers: list[Any]) -> None:
        """Ask about the kernel's last error, its traceback and cell attached."""
        from nbchat.core.failure import EXPLAIN_ERROR_QUESTION
        from nbchat.notebook.cells import NO_ERROR_YET, failure_spec, find_failure

        failure = find_failure(self._shell) if self._shell is not None else None
        if failure is None:
            raise NbChatError(NO_ERROR_YET)
        spec = failure_spec(failure, self.client.settings.secrets)
        self._start_turn(EXPLAIN_ERROR_QUESTION, [spec])

    def _start_turn(self, text: str, extra: list[AttachmentSpec] | None = None) -> None:
        if self.streaming:
            raise NbChatError("An answer is still streaming: stop it first, or wait for it.")
        if not text.strip():
            raise NbChatError("The message is empty: type a question first.")
        self._refresh_settings()
        specs = self._attachment_specs()  # user_ns is read here, on the kernel's thread
        specs += extra or []
        self._stop = threading.Event()
        self._update(streaming=True, phase="preparing", error="")
        self._turn = threading.Thread(
            target=self._run_turn,
            args=(text, specs, self._new_next, self._stop),
            name="nbchat-widget-turn",
            daemon=True,
        )
        self._turn.start()

    def _follow_errors(self) -> None:
        """Show "Explain last error" when the kernel has one, and follow new ones."""
        if self._shell is None:
            return
        from nbchat.notebook.cells import find_failure, recorder_for

        failure = find_failure(self._shell)
        if failure is not None:
            self.last_error = _error_state(failure)
        recorder = recorder_for(self._shell)
        if recorder is not None:
            hook = _FailureHook(self)
            recorder.on_failure.append(hook)
            weakref.finalize(self, _remove_hook, recorder.on_failure, hook)

    def _on_stop(self, content: dict[str, Any], buffers: list[Any]) -> None:
        if self.streaming:
            self._stop.set()
            self._update(phase="stopping")

    def _on_draft(self, content: dict[str, Any], buffers: list[Any]) -> None:
        self._draft = str(content.get("text") or "")
        self._request_meter()

    def _on_upload(self, content: dict[str, Any], buffers: list[Any]) -> None:
        name = Path(str(content.get("name") or "upload")).name or "upload"
        if not buffers:
            raise NbChatError(f"{name}: no bytes arrived from the browser; attach it again.")
        data = bytes(buffers[0])
        # The same check, and message, as `%chat store`.
        stored, _ = self.client.store_file(name, data, mime=str(content.get("mime") or ""))
        key = f"file:{stored.id}"
        self._files[key] = stored_spec(str(stored.id))
        detail = short_size_text(len(data))
        entry = {"key": key, "kind": "file", "name": stored.name, "detail": detail}
        self._set_attachment(entry)

    def _on_attach_dataframe(self, content: dict[str, Any], buffers: list[Any]) -> None:
        name = str(content.get("name") or "")
        frame = self._dataframe(name)
        entry = {"key": f"df:{name}", "kind": "dataframe", "name": name, "detail": _shape(frame)}
        self._set_attachment(entry)

    def _on_remove(self, content: dict[str, Any], buffers: list[Any]) -> None:
        key = str(content.get("key") or "")
        self._files.pop(key, None)
        self._update(attachments=[a for a in self.attachments if a["key"] != key])
        self._request_meter()

    def _on_list_dataframes(self, content: dict[str, Any], buffers: list[Any]) -> None:
        with self._sync_lock:
            self._list_dataframes()

    def _on_select_session(self, content: dict[str, Any], buffers: list[Any]) -> None:
        self._not_while_streaming("switch conversations")
        self.client.use_session(str(content.get("id") or ""))
        self._new_next = False
        self._after_session_change()

    def _on_new_session(self, content: dict[str, Any], buffers: list[Any]) -> None:
        self._not_while_streaming("start a new conversation")
        self._new_next = True
        self._after_session_change()

    def _on_fork(self, content: dict[str, Any], buffers: list[Any]) -> None:
        self._not_while_streaming("fork the conversation")
        if self._new_next:
            raise NbChatError("This conversation is empty: there is nothing to fork yet.")
        upto = content.get("upto_turn")
        self.client.fork(int(upto) if upto is not None else None)
        self._after_session_change()

    def _on_resync(self, content: dict[str, Any], buffers: list[Any]) -> None:
        """The browser missed part of a turn (it reloaded mid-answer): send it all."""
        with self._sync_lock:
            self.send_state(["messages", "pending", "phase", "streaming"])

    def _on_refresh(self, content: dict[str, Any], buffers: list[Any]) -> None:
        if not self.streaming:
            self.refresh()

    # -- the turn (worker thread) -----------------------------------------------------

    def _run_turn(
        self, text: str, specs: list[AttachmentSpec], new: bool, stop: threading.Event
    ) -> None:
        shown = False
        self._committed = False
        try:
            prepared = self.client.prepare(text, specs, new=new)
            if stop.is_set():
                return
            names = [part.name for _, part in prepared.attachments]
            self._streamed = []
            self._update(pending={"question": text, "files": names}, phase="streaming")
            shown = True
            self._stream(prepared, stop)
        except NbChatError as error:
            self._update(error=str(error))
        except Exception as error:  # noqa: BLE001 - a bug: say so, keep the panel usable
            log.exception("nbchat widget: the turn failed")
            self._update(error=_bug_text(error))
        finally:
            if shown and not self._committed:
                with self._sync_lock:
                    self.send({"restore": text})  # nothing was stored: give the text back
            self._finish_turn(self._committed)

    def _stream(self, prepared: PreparedTurn, stop: threading.Event) -> None:
        """Relay the answer in batches; ``_committed`` once the question is stored."""
        interval = max(0.0, prepared.settings.stream_update_interval)
        events = self.client.run(prepared)
        waiting: list[str] = []
        flushed_at = 0.0
        result: TurnResult | None = None
        waiting_bytes = 0
        try:
            for event in events:
                self._committed = True  # the core stores the question before any event
                if isinstance(event, TextDelta):
                    if self.progress:
                        self._update(progress="")  # the answer starts: the browser hides it too
                    waiting.append(event.text)
                    waiting_bytes += len(event.text.encode("utf-8"))
                    since = time.monotonic() - flushed_at
                    if since >= interval and (
                        waiting_bytes >= MIN_DELTA_BYTES or since >= MAX_DELTA_WAIT * interval
                    ):
                        self._send_delta("".join(waiting))
                        waiting.clear()
                        waiting_bytes = 0
                        flushed_at = time.monotonic()
                elif isinstance(event, PromptProgress):
                    if event.worth_showing and not self._streamed and not waiting:
                        self._update(progress=event.describe())
                elif isinstance(event, TurnResult):
                    result = event
                if stop.is_set() and result is None:
                    break
        finally:
            events.close()  # stopped early: the core stores the partial answer, marked
        if waiting:
            self._send_delta("".join(waiting))
        if result is not None:
            self._footers[result.message_id] = footer_text(result)

    def _finish_turn(self, committed: bool) -> None:
        """Show the stored turn. The browser already holds the answer's text, so when the
        new message list is the old one plus this turn, only a small ``done`` message goes
        out and the browser appends the turn itself; the traits change here without being
        sent again (a view opened later still reads them, complete)."""
        idle = {"pending": {}, "phase": "", "streaming": False, "progress": ""}
        if not committed:
            self._update(**idle)
            return
        self._new_next = False
        self._files.clear()
        with self._sync_lock:
            state = self._session_state()
            question = self.pending.get("question", "")
            streamed = "".join(self._streamed)
            done = _done_message(self.messages, state["messages"], question, streamed)
            if done is None:
                self._update(**state, **idle, attachments=[])
            else:
                self.send({"done": {**done, "state": idle}})
                with self._quietly("messages", *idle), self.hold_sync():
                    for name, value in {**state, **idle, "attachments": []}.items():
                        setattr(self, name, value)
        self._request_meter()

    def _send_delta(self, text: str) -> None:
        with self._sync_lock:
            self._streamed.append(text)
            self.send({"d": text})

    # -- state ------------------------------------------------------------------------

    def _update(self, **traits: Any) -> None:
        with self._sync_lock, self.hold_sync():
            for name, value in traits.items():
                setattr(self, name, value)

    def _load_session(self) -> None:
        for name, value in self._session_state().items():
            setattr(self, name, value)

    def _session_state(self) -> dict[str, Any]:
        """Messages of the current session (none after "new"), and the session list."""
        session = None if self._new_next else self.client.current_session()
        entries: list[dict[str, Any]] = []
        earlier = 0
        if session is not None:
            store = self.client.store
            shown = store.messages(session.id, limit=HISTORY_SHOWN)
            earlier = shown[0].seq if shown else 0
            files: dict[int, list[str]] = {}
            for record in store.attachments(session.id, include_forgotten=True):
                if record.message_id is not None:
                    files.setdefault(record.message_id, []).append(record.name)
            entries = [self._entry(m, files.get(m.id, [])) for m in shown]
        return {
            "messages": entries,
            "earlier_messages": earlier,
            "session_id": session.id if session is not None else "",
            "session_title": session.title if session is not None else "",
            "sessions": self._session_list(session),
        }

    def _entry(self, message: StoredMessage, files: list[str]) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": message.id,
            "seq": message.seq,
            "role": message.role,
            "text": message.content,
            "status": message.status,
        }
        if files:
            entry["files"] = files
        if message.role == "assistant":
            entry["footer"] = self._footers.get(message.id) or _stored_footer(message)
            if message.error_message:
                entry["error"] = message.error_message
                entry["error_kind"] = message.error_kind or ""
        return entry

    def _session_list(self, current: Session | None) -> list[dict[str, Any]]:
        store = self.client.store
        notebook = self.client.notebook
        found = store.list_sessions(limit=SESSIONS_SHOWN)
        if notebook is not None:
            found += store.list_sessions(notebook=notebook, limit=SESSIONS_SHOWN)
        if current is not None:
            found.append(current)
        seen: set[str] = set()
        listed: list[dict[str, Any]] = []
        for session in sorted(found, key=lambda s: s.updated, reverse=True):
            if session.id in seen:
                continue
            seen.add(session.id)
            listed.append(
                {
                    "id": session.id,
                    "title": session.title or "(untitled)",
                    "here": notebook is not None and session.notebook == notebook,
                }
            )
        return listed

    def _after_session_change(self) -> None:
        self._update(error="")
        with self._sync_lock, self.hold_sync():
            self._load_session()
        self._request_meter()

    def _set_attachment(self, entry: dict[str, Any]) -> None:
        kept = [a for a in self.attachments if a["key"] != entry["key"]]
        self._update(attachments=[*kept, entry], error="")
        self._request_meter()

    def _refresh_settings(self) -> None:
        """Pick up ``%config NbChat`` changes, as the magics do before each cell."""
        if self._shell is not None:
            from nbchat.notebook.state import client_for, is_loaded

            if is_loaded(self._shell):
                client_for(self._shell)  # rebuilds that client's settings from NbChat
        settings = self.client.settings
        self._update(
            model_label=_model_label(self.client, settings),
            max_upload_bytes=settings.max_file_bytes,
        )

    def _not_while_streaming(self, action: str) -> None:
        if self.streaming:
            raise NbChatError(f"An answer is still streaming: stop it before you {action}.")

    # -- DataFrames -------------------------------------------------------------------

    def _namespace(self) -> dict[str, Any]:
        return getattr(self._shell, "user_ns", None) or {}

    def _list_dataframes(self) -> None:
        listed = []
        for name, value in list(self._namespace().items()):
            if not name.startswith("_") and is_dataframe(value):
                listed.append({"name": name, "detail": _shape(value)})
        self.dataframes = sorted(listed, key=lambda d: d["name"])

    def _dataframe(self, name: str) -> Any:
        value = self._namespace().get(name)
        if value is None or not is_dataframe(value):
            raise NbChatError(
                f"There is no DataFrame named {name!r} in the notebook: run the cell that "
                "defines it, or remove it from the attachments."
            )
        return value

    def _attachment_specs(self, *, fresh: bool = True) -> list[AttachmentSpec]:
        """The attachments as specs, DataFrames summarized as they are now.

        ``fresh=False`` (the token meter, on every pause in typing) reuses a frame's last
        summary while the variable still holds the same object, instead of hashing it.
        """
        specs: list[AttachmentSpec] = []
        for entry in self.attachments:
            key = entry["key"]
            if entry["kind"] == "file":
                specs.append(self._files.get(key) or stored_spec(key.split(":", 1)[1]))
            else:
                specs.append(self._dataframe_spec(entry["name"], fresh))
        return specs

    def _dataframe_spec(self, name: str, fresh: bool) -> AttachmentSpec:
        frame = self._dataframe(name)
        known = self._frame_specs.get(name)
        if known is not None and not fresh and known[0] == id(frame):
            return known[1]
        mark = fingerprint(frame)
        if known is not None and known[1].fingerprint == mark:
            spec = known[1]
        else:
            spec = dataframe_spec(frame, name, mark)
        self._frame_specs[name] = (id(frame), spec)
        return spec

    # -- token meter ------------------------------------------------------------------

    def _request_meter(self) -> None:
        """Recount the draft in the background (after the answer when one streams)."""
        if self.streaming:
            return  # the end of the turn asks again
        self._refresh_settings()
        try:
            specs = self._attachment_specs(fresh=False)
        except NbChatError as error:
            self._update(meter={"error": str(error)})
            return
        draft, new = self._draft, self._new_next
        self._meter_jobs.submit(lambda: self._count_draft(draft, specs, new))

    def _count_draft(self, draft: str, specs: list[AttachmentSpec], new: bool) -> None:
        try:
            prepared = self.client.prepare(
                draft if draft.strip() else EMPTY_DRAFT, specs, new=new, count_prompt=True
            )
        except NbChatError as error:
            meter: dict[str, Any] = {"error": str(error)}
        else:
            prepared.resolver.remember()  # the send reuses this extraction
            meter = _meter(prepared.report)
        self._update(meter=meter)

    # -- traffic ----------------------------------------------------------------------

    @contextmanager
    def _quietly(self, *names: str) -> Iterator[None]:
        """Change these traits without sending them (the browser makes the same change)."""
        self._quiet.update(names)
        try:
            yield
        finally:
            self._quiet.difference_update(names)

    def _send(self, msg: dict[str, Any], buffers: list[Any] | None = None) -> None:
        """Every comm message to the browser passes here: count it, then send it."""
        state = msg.get("state")
        if self._quiet and msg.get("method") == "update" and isinstance(state, dict):
            state = {k: v for k, v in state.items() if k not in self._quiet}
            if not state:
                return
            msg = {**msg, "state": state}
        size = len(json.dumps(msg, ensure_ascii=False, default=str).encode("utf-8"))
        size += sum(len(memoryview(b).cast("B")) for b in buffers or ())
        content = msg.get("content")
        delta = msg.get("method") == "custom" and isinstance(content, dict) and "d" in content
        self.traffic.add(size, delta=delta)
        super()._send(msg, buffers=buffers)


# -- helpers ------------------------------------------------------------------------------


_HANDLERS: dict[str, Callable[[ChatWidget, dict[str, Any], list[Any]], None]] = {
    "send": ChatWidget._on_send,
    "stop": ChatWidget._on_stop,
    "draft": ChatWidget._on_draft,
    "upload": ChatWidget._on_upload,
    "attach_dataframe": ChatWidget._on_attach_dataframe,
    "remove": ChatWidget._on_remove,
    "list_dataframes": ChatWidget._on_list_dataframes,
    "select_session": ChatWidget._on_select_session,
    "new_session": ChatWidget._on_new_session,
    "fork": ChatWidget._on_fork,
    "refresh": ChatWidget._on_refresh,
    "resync": ChatWidget._on_resync,
    "explain_error": ChatWidget._on_explain_error,
}


def _dispatch(widget: ChatWidget, content: Any, buffers: list[Any]) -> None:
    if isinstance(content, dict):
        widget.handle_message(content, list(buffers or ()))


class _TurnStoredHook:
    """Redraws the panel when a turn of its session is stored elsewhere (``%%chat``)."""

    def __init__(self, widget: ChatWidget) -> None:
        self._widget = weakref.ref(widget)

    def __call__(self, store: Any, result: TurnResult) -> None:
        widget = self._widget()
        if widget is None or widget.streaming or widget._new_next:
            return
        if result.session_id == widget.client.session_id:
            with widget._sync_lock, widget.hold_sync():
                widget._load_session()


class _FailureHook:
    """Updates the panel's ``last_error`` when a cell fails."""

    def __init__(self, widget: ChatWidget) -> None:
        self._widget = weakref.ref(widget)

    def __call__(self, failure: Any) -> None:
        widget = self._widget()
        if widget is not None:
            widget._update(last_error=_error_state(failure))


def _error_state(failure: Any) -> dict[str, Any]:
    return {"cell": failure.number, "summary": failure.summary}


def _bug_text(error: Exception) -> str:
    return (
        f"Something went wrong inside nbchat ({error}); the details are in the kernel's log. "
        "Please report it."
    )


def _remove_hook(hooks: list[Any], hook: Any) -> None:
    if hook in hooks:
        hooks.remove(hook)


def _default_client() -> ChatClient:
    """The notebook's client when the extension is there, else a new one."""
    shell = _current_shell()
    if shell is not None:
        from nbchat.notebook.state import client_for

        return client_for(shell)
    return ChatClient()


def _current_shell() -> Any:
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    return get_ipython()


def _shape(frame: Any) -> str:
    try:
        rows, columns = frame.shape
    except (AttributeError, TypeError, ValueError):
        return ""
    return f"{rows:,} × {columns:,}"


def _done_message(
    old: list[dict[str, Any]], new: list[dict[str, Any]], question: str, streamed: str
) -> dict[str, Any] | None:
    """How the browser turns ``old`` into ``new`` with the texts it already holds: drop
    ``drop`` messages from the front, append ``add`` without their ``text`` (the question
    is ``pending``'s, the answer the streamed one). None when ``new`` is not ``old`` plus
    this one turn; then the traits are sent."""
    if len(new) < 2 or new[-2]["role"] != "user" or new[-1]["role"] != "assistant":
        return None
    if new[-2]["text"] != question or new[-1]["text"] != streamed:
        return None
    head = new[:-2]
    drop = len(old) - len(head)
    if drop < 0 or old[drop:] != head:
        return None
    asked = {k: v for k, v in new[-2].items() if k != "text"}
    answer = {k: v for k, v in new[-1].items() if k != "text"}
    return {
        "drop": drop,
        "add": [asked, answer],
        "count": len(new),
        "length": len(streamed.encode("utf-16-le")) // 2,  # as JavaScript counts
    }


def _model_label(client: ChatClient, settings: Settings) -> str:
    """``model · server`` for the header, e.g. ``llama-server at 127.0.0.1:8080``: the
    server turns really go to (a running local engine when no URL is set). A hosted
    service at its usual address is named alone: ``OpenRouter · model``."""
    from nbchat.backends.openai_compat import display_url

    url = display_url(client.server_url(settings))
    try:
        described = client.backend(settings).describe()
        label, alone = described.label, described.server == described.label
    except NbChatError:  # e.g. no key yet: name the configured server
        info = settings.info
        label = info.label if info is not None else settings.backend
        alone = info is not None and info.key_setting is not None and url == info.default_url
    if alone:
        return " · ".join(part for part in (label, settings.resolved_model) if part)
    server = f"{label} at {url.split('://', 1)[-1]}"
    return " · ".join(part for part in (settings.resolved_model, server) if part)


def _meter(report: TokenReport) -> dict[str, Any]:
    meter: dict[str, Any] = {
        "attachment_tokens": report.attachment_tokens,
        "attachment_budget": report.attachment_budget,
        "total_tokens": report.total_tokens,
        "window_tokens": report.window_tokens,
        "max_tokens": report.max_tokens,
        "exact": report.exact,
        "parts_exact": report.parts_exact,
    }
    if report.attachments:
        meter["parts"] = [
            {"name": p.name, "kept_tokens": p.kept_tokens, "total_tokens": p.total_tokens,
             "passages": list(p.passages)}
            for p in report.attachments
        ]
    if report.brought_in:
        meter["brought_in"] = [
            {"name": p.name, "tokens": p.kept_tokens, "passages": list(p.passages)}
            for p in report.brought_in
        ]
    if report.notices:
        meter["notices"] = list(report.notices)
    return meter


_NO_REPORT = TokenReport(
    system_tokens=0, history_tokens=0, history_turns=0, earlier_files=(), attachments=(),
    recall_tokens=0, question_tokens=0, total_tokens=0, window_tokens=0, max_tokens=0,
    attachment_budget=0, exact=False, tokenizer="",
)


def _stored_footer(message: StoredMessage) -> str:
    """The footer of an answer read back from the store (its turn's notices are gone)."""
    return footer_text(TurnResult.from_stored(message, _NO_REPORT), message.model)
