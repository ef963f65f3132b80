"""A scripted OpenAI-compatible server on a real 127.0.0.1 socket, for tests.

It plays back replies written by the test, byte for byte and chunk by chunk (each chunk
is written and flushed on its own, with optional pauses in between), and records every
request it receives. Besides chat completions it serves what llama-server and
OpenRouter offer around them: ``/health``, ``/props``, ``/tokenize``, ``/apply-template``
and model lists.

    with ScriptedServer(answer("Hello there.")) as server:
        backend = LlamaServerBackend(server.url)
        events = list(backend.stream([{"role": "user", "content": "Hi"}]))
        assert server.chat_requests[0].json["stream"] is True

Routes (matched on the end of the path, so ``/v1/...``, ``/api/v1/...`` and ``/...`` all
work): ``POST .../chat/completions`` takes the next scripted reply (or ``default``);
``GET /health``; ``GET /props``; ``POST /tokenize`` (a BOS first with ``add_special``);
``POST /apply-template`` (gemma-style turn markers); ``GET .../models``.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union

__all__ = [
    "Reply",
    "RecordedRequest",
    "ScriptedServer",
    "answer",
    "echo_answer",
    "sse_reply",
    "sse_event",
    "sse_comment",
    "json_reply",
    "text_reply",
    "delta_chunk",
    "finish_chunk",
    "usage_chunk",
    "progress_chunk",
    "llama_timings",
    "simple_tokenize",
    "apply_template",
    "SCRIPTED_BOS_TOKEN",
    "dead_url",
    "replies_from",
    "DONE",
    "FAKE_OPENROUTER_KEY",
]

DONE = b"data: [DONE]\n\n"
# Recognizable, shaped like a real OpenRouter key, and useless anywhere: tests that
# hunt for leaked secrets search for it.
FAKE_OPENROUTER_KEY = "sk-or-v1-FAKE" + "0123456789abcdef" * 3
_TOKEN_PIECES = re.compile(r"\w+|[^\w\s]")

# A chunk is bytes to write and flush, or a number of seconds to pause.
Chunk = Union[bytes, float, int]


@dataclass
class Reply:
    """One scripted HTTP response.

    ``framing`` says how the body is delimited: ``chunked`` (HTTP/1.1 chunked encoding,
    as llama-server and OpenRouter stream), ``close`` (no length; the body ends when the
    server closes the connection) or ``length`` (a Content-Length, all chunks still
    written one by one). ``drop`` cuts the connection after the chunks without ending
    the body properly (a server that died). ``delay_s`` waits before the status line
    (a slow first byte). ``hang_up`` closes the connection before any byte of an
    answer, as a server does to a kept-alive connection it has just timed out.
    """

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    chunks: list[Chunk] = field(default_factory=list)
    framing: str = "chunked"
    drop: bool = False
    delay_s: float = 0.0
    hang_up: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """A request as the server received it; header names are lower-case."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


Responder = Callable[[RecordedRequest], Reply]


# -- building replies ---------------------------------------------------------------------


def sse_event(payload: Any, *, line_ending: str = "\n", event: str | None = None) -> bytes:
    """One SSE event: a dict is sent as JSON (non-ASCII kept raw), a str as is."""
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    lines = [f"event: {event}"] if event else []
    lines += [f"data: {line}" for line in data.split("\n")]
    return (line_ending.join(lines) + line_ending + line_ending).encode("utf-8")


def sse_comment(text: str, *, line_ending: str = "\n") -> bytes:
    return f": {text}{line_ending}{line_ending}".encode("utf-8")


def delta_chunk(text: str, *, model: str = "scripted-model", role: str | None = None) -> dict:
    delta: dict[str, Any] = {"content": text}
    if role:
        delta["role"] = role
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
    }


def finish_chunk(reason: str = "stop", *, model: str = "scripted-model") -> dict:
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": {}, "finish_reason": reason}],
    }


def progress_chunk(
    processed: int, total: int, *, cache: int = 0, time_ms: float = 0, model: str = "scripted-model"
) -> dict:
    """llama-server's prompt-progress chunk (``return_progress``), as the real one sends it:
    an empty assistant delta carrying ``prompt_progress``."""
    return {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": None},
                     "finish_reason": None}],
        "prompt_progress": {"total": total, "cache": cache, "processed": processed,
                            "time_ms": time_ms},
    }


def llama_timings(prompt_n: int = 12, cache_n: int = 0, predicted_n: int = 5) -> dict:
    """A llama-server ``timings`` object with plausible numbers."""
    return {
        "cache_n": cache_n,
        "prompt_n": prompt_n,
        "prompt_ms": prompt_n * 2.5,
        "prompt_per_token_ms": 2.5,
        "prompt_per_second": 400.0,
        "predicted_n": predicted_n,
        "predicted_ms": predicted_n * 21.0,
        "predicted_per_token_ms": 21.0,
        "predicted_per_second": 47.6,
    }


def usage_chunk(
    prompt_tokens: int = 12,
    completion_tokens: int = 5,
    *,
    cached_tokens: int | None = None,
    cost: float | None = None,
    timings: Mapping[str, Any] | None = None,
    model: str = "scripted-model",
) -> dict:
    """The final usage-only chunk (empty ``choices``), llama-server and OpenRouter style."""
    usage: dict[str, Any] = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }
    if cached_tokens is not None:
        usage["prompt_tokens_details"] = {"cached_tokens": cached_tokens}
    if cost is not None:
        usage["cost"] = cost
    chunk: dict[str, Any] = {
        "id": "chatcmpl-scripted",
        "object": "chat.completion.chunk",
        "created": 1_700_000_000,
        "model": model,
        "choices": [],
        "usage": usage,
    }
    if timings is not None:
        chunk["timings"] = dict(timings)
    return chunk


def _event_stream_headers(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    headers.update(extra or {})
    return headers


def sse_reply(*parts: Any, line_ending: str = "\n", **reply_options: Any) -> Reply:
    """A 200 event stream from parts: a dict or str becomes one event, bytes are sent
    as they are, a number pauses that many seconds."""
    chunks: list[Chunk] = []
    for part in parts:
        if isinstance(part, (bytes, bytearray)):
            chunks.append(bytes(part))
        elif isinstance(part, (int, float)) and not isinstance(part, bool):
            chunks.append(float(part))
        else:
            chunks.append(sse_event(part, line_ending=line_ending))
    headers = _event_stream_headers(reply_options.pop("headers", None))
    return Reply(200, headers, chunks, **reply_options)


def split_text(text: str, piece_chars: int) -> list[str]:
    return [text[i : i + piece_chars] for i in range(0, len(text), piece_chars)] or [""]


def answer(
    text: str,
    *,
    piece_chars: int = 4,
    finish_reason: str | None = "stop",
    usage: bool = True,
    usage_with_finish: bool = False,
    prompt_tokens: int = 12,
    completion_tokens: int | None = None,
    cached_tokens: int | None = None,
    cost: float | None = None,
    timings: Mapping[str, Any] | None | bool = True,
    done: bool = True,
    line_ending: str = "\n",
    pause_s: float = 0.0,
    comments: Sequence[str] = (),
    model: str = "scripted-model",
    progress: Sequence[Any] = (),
    **reply_options: Any,
) -> Reply:
    """A normal streamed answer: ``text`` in pieces, a finish chunk, a usage chunk (after
    the finish, or inside it with ``usage_with_finish``) and ``[DONE]``.

    ``timings=True`` adds llama-style timings consistent with the counts. ``progress``
    parts (:func:`progress_chunk` dicts, or pauses in seconds) come before the text.
    """
    pieces = split_text(text, piece_chars)
    completion = completion_tokens if completion_tokens is not None else len(pieces)
    if timings is True:
        timings = llama_timings(prompt_tokens - (cached_tokens or 0), cached_tokens or 0, completion)
    elif timings is False:
        timings = None
    parts: list[Any] = [sse_comment(c, line_ending=line_ending) for c in comments]
    parts += list(progress)
    for index, piece in enumerate(pieces):
        if pause_s and index:
            parts.append(pause_s)
        parts.append(delta_chunk(piece, model=model, role="assistant" if index == 0 else None))
    final_usage = usage_chunk(
        prompt_tokens, completion, cached_tokens=cached_tokens, cost=cost,
        timings=timings, model=model,
    )
    if finish_reason is not None:
        finish = finish_chunk(finish_reason, model=model)
        if usage and usage_with_finish:
            finish["usage"] = final_usage["usage"]
            if "timings" in final_usage:
                finish["timings"] = final_usage["timings"]
        parts.append(finish)
    if usage and not (usage_with_finish and finish_reason is not None):
        parts.append(final_usage)
    if done:
        parts.append(DONE.replace(b"\n", line_ending.encode()))
    return sse_reply(*parts, line_ending=line_ending, **reply_options)


def json_reply(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    all_headers = {"Content-Type": "application/json"}
    all_headers.update(headers or {})
    return Reply(status, all_headers, [body], framing="length")


def text_reply(status: int, text: str, headers: Mapping[str, str] | None = None) -> Reply:
    all_headers = {"Content-Type": "text/plain; charset=utf-8"}
    all_headers.update(headers or {})
    return Reply(status, all_headers, [text.encode("utf-8")], framing="length")


def echo_answer(request: RecordedRequest) -> Reply:
    """Answers with the last user message, prefixed by ``Echo: `` (a handy default)."""
    messages = (request.json or {}).get("messages") or [{"content": ""}]
    last = messages[-1].get("content", "")
    return answer(f"Echo: {last}")


SCRIPTED_BOS_TOKEN = 2


def apply_template(messages: Sequence[Mapping[str, Any]]) -> str:
    """The scripted chat template (gemma's turn markers), generation prompt included."""
    turns = [
        f"<start_of_turn>{message.get('role', 'user')}\n{message.get('content', '')}<end_of_turn>\n"
        for message in messages
    ]
    return "".join(turns) + "<start_of_turn>model\n"


def simple_tokenize(text: str) -> list[str]:
    """The scripted tokenizer: words and single punctuation marks."""
    return _TOKEN_PIECES.findall(text)


def dead_url() -> str:
    """The URL of a 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# -- the server ----------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_HTTPServer"

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.scripted._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        except OSError:
            pass
        self.server.scripted._track(self.connection, False)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
        )
        reply = self.server.scripted._reply_for(request)
        self._send(reply)

    def _write(self, data: bytes) -> bool:
        try:
            self.wfile.write(data)
            self.wfile.flush()
            return True
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, OSError):
            self.close_connection = True
            self.server.scripted._record_disconnect()
            return False

    def _cut_connection(self) -> None:
        """Close the connection as a dying server would, without finishing the reply."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _send(self, reply: Reply) -> None:
        scripted = self.server.scripted
        if reply.delay_s and scripted._pause(reply.delay_s):
            return
        if reply.hang_up:
            self._cut_connection()
            return
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        body_bytes = [c for c in reply.chunks if isinstance(c, bytes)]
        if reply.framing == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        elif reply.framing == "length":
            self.send_header("Content-Length", str(sum(len(b) for b in body_bytes)))
        elif reply.framing == "close":
            self.send_header("Connection", "close")
            self.close_connection = True
        else:
            raise ValueError(f"unknown framing {reply.framing!r}")
        try:
            self.end_headers()
        except OSError:
            self.close_connection = True
            scripted._record_disconnect()
            return
        for chunk in reply.chunks:
            if not isinstance(chunk, bytes):
                if scripted._pause(float(chunk)):
                    self.close_connection = True
                    return
                continue
            if not chunk:
                continue
            data = b"%x\r\n%s\r\n" % (len(chunk), chunk) if reply.framing == "chunked" else chunk
            if not self._write(data):
                return
        if reply.drop:
            self._cut_connection()
            return
        if reply.framing == "chunked" and not self._write(b"0\r\n\r\n"):
            return
        scripted._record_completed()


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    scripted: "ScriptedServer"

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hung up is part of the script, not a failure of the server.
        pass


class ScriptedServer:
    """A real HTTP server on 127.0.0.1 that plays back scripted replies.

    ``replies`` are used in order by chat-completion requests; each is a :class:`Reply`
    or a function of the :class:`RecordedRequest` returning one. When they run out,
    ``default`` answers (by default a 500 saying the script is exhausted).
    ``health_status`` (and ``health_delay_s``, a slow health check),
    ``tokenize_delay_s`` (a slow tokenizer), ``n_ctx``, ``models`` and ``props`` may be
    changed while running.
    """

    def __init__(
        self,
        *replies: Reply | Responder,
        default: Reply | Responder | None = None,
        n_ctx: int = 8192,
        model_id: str = "scripted-model",
        model_path: str = "/models/scripted-model.gguf",
        models: list[dict[str, Any]] | None = None,
        health_status: int = 200,
        health_delay_s: float = 0.0,
        props: dict[str, Any] | None = None,
    ) -> None:
        self.replies: deque[Reply | Responder] = deque(replies)
        self.default = default
        self.n_ctx = n_ctx
        self.model_id = model_id
        self.model_path = model_path
        self.models = models
        self.health_status = health_status
        self.health_delay_s = health_delay_s
        self.tokenize_delay_s = 0.0
        self.props = props
        self.requests: list[RecordedRequest] = []
        self.disconnects = 0
        self.completed = 0
        self._condition = threading.Condition()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> "ScriptedServer":
        httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        httpd.scripted = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name="scripted-sse-server",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        with self._condition:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._httpd = None

    def __enter__(self) -> "ScriptedServer":
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "the server is not running"
        return self._httpd.server_address[1]

    @property
    def url(self) -> str:
        """The server's root, e.g. ``http://127.0.0.1:40123`` (no trailing slash)."""
        return f"http://127.0.0.1:{self.port}"

    # -- script and records ------------------------------------------------------------------

    def add(self, *replies: Reply | Responder) -> None:
        """Queue more chat replies."""
        with self._condition:
            self.replies.extend(replies)

    @property
    def chat_requests(self) -> list[RecordedRequest]:
        with self._condition:
            return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def requests_to(self, path_end: str) -> list[RecordedRequest]:
        with self._condition:
            return [r for r in self.requests if r.path.split("?")[0].endswith(path_end)]

    def wait_for_disconnect(self, timeout_s: float = 5.0, count: int = 1) -> bool:
        """True once ``count`` clients have hung up before their reply was complete."""
        deadline = time.monotonic() + timeout_s
        with self._condition:
            while self.disconnects < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._condition.wait(left)
            return True

    # -- used by the handler -------------------------------------------------------------------

    def _track(self, connection: socket.socket, is_open: bool) -> None:
        with self._condition:
            if is_open:
                self._connections.add(connection)
            else:
                self._connections.discard(connection)

    def _record_disconnect(self) -> None:
        with self._condition:
            self.disconnects += 1
            self._condition.notify_all()

    def _record_completed(self) -> None:
        with self._condition:
            self.completed += 1
            self._condition.notify_all()

    def _pause(self, seconds: float) -> bool:
        """Sleep; True when the server is stopping and the reply should be abandoned."""
        return self._stopping.wait(seconds)

    def _reply_for(self, request: RecordedRequest) -> Reply:
        with self._condition:
            self.requests.append(request)
        path = request.path.split("?")[0]
        if path.endswith("/chat/completions") or path.endswith("/completions"):
            with self._condition:
                scripted = self.replies.popleft() if self.replies else self.default
            if scripted is None:
                return json_reply(
                    500, {"error": {"code": 500, "message": "the scripted server has no reply left"}}
                )
            return scripted(request) if callable(scripted) else scripted
        if path == "/health":
            if self.health_status == 200:
                reply = json_reply(200, {"status": "ok"})
                reply.delay_s = self.health_delay_s
                return reply
            return json_reply(
                self.health_status,
                {"error": {"code": self.health_status, "message": "Loading model",
                           "type": "unavailable_error"}},
            )
        if path == "/props":
            return json_reply(200, self._props())
        if path == "/tokenize":
            body = request.json or {}
            content = body.get("content", "")
            tokens = [zlib.crc32(piece.encode("utf-8")) % 32_000 for piece in simple_tokenize(content)]
            if body.get("add_special"):
                tokens.insert(0, SCRIPTED_BOS_TOKEN)
            reply = json_reply(200, {"tokens": tokens})
            reply.delay_s = self.tokenize_delay_s
            return reply
        if path == "/apply-template":
            messages = (request.json or {}).get("messages") or []
            return json_reply(200, {"prompt": apply_template(messages)})
        if path.endswith("/models"):
            return json_reply(200, {"object": "list", "data": self._models()})
        return json_reply(404, {"error": {"code": 404, "message": f"File Not Found: {path}"}})

    def _props(self) -> dict[str, Any]:
        if self.props is not None:
            return self.props
        return {
            "default_generation_settings": {"n_ctx": self.n_ctx, "params": {}},
            "total_slots": 1,
            "model_path": self.model_path,
            "model_alias": self.model_id,
        }

    def _models(self) -> list[dict[str, Any]]:
        if self.models is not None:
            return self.models
        return [
            {
                "id": self.model_id,
                "object": "model",
                "owned_by": "scripted",
                "context_length": self.n_ctx,
                "meta": {"n_ctx_train": self.n_ctx * 4},
            }
        ]


def replies_from(texts: Iterable[str]) -> list[Reply]:
    """One normal answer per text, for queuing several turns at once."""
    return [answer(text) for text in texts]
