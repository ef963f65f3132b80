"""Fixtures for the memory tests: a scripted chat server and clients that talk to it."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parents[1])
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from sse_server import ScriptedServer, echo_answer  # noqa: E402

from nbchat.api import ChatClient  # noqa: E402
from nbchat.core.settings import Settings  # noqa: E402
from nbchat.core.turn import TurnResult  # noqa: E402


@pytest.fixture
def chat_server() -> Iterator[ScriptedServer]:
    """A chat server that answers every question with ``Echo: <question as sent>``."""
    with ScriptedServer(default=echo_answer) as running:
        yield running


@pytest.fixture
def make_client(
    chat_server: ScriptedServer, database: Path | str
) -> Iterator[Callable[..., ChatClient]]:
    """Build clients on the test's database (each store in turn) and the scripted server;
    closed at the end."""
    made: list[ChatClient] = []

    def build(**settings: object) -> ChatClient:
        notebook = settings.pop("notebook", "memory-test.ipynb")
        options: dict[str, object] = {
            "backend": "llama",
            "base_url": chat_server.url,
            "db_path": database,
        }
        options.update(settings)
        client = ChatClient(Settings(**options), notebook=notebook)  # type: ignore[arg-type]
        made.append(client)
        return client

    yield build
    for client in made:
        client.close()


def _send(client: ChatClient, prompt: str, **options: object) -> TurnResult:
    result = None
    for event in client.run(client.prepare(prompt, **options)):  # type: ignore[arg-type]
        if isinstance(event, TurnResult):
            result = event
    assert result is not None
    return result


@pytest.fixture
def send() -> Callable[..., TurnResult]:
    """``send(client, prompt, **prepare_options)``: one whole turn; the stored result."""
    return _send


class FakeEmbeddings:
    """A small ``/v1/embeddings`` server on a real socket, for what the real one cannot do
    on demand: answer slowly, or refuse inputs longer than ``max_input_chars`` the way
    llama-server refuses inputs over its batch size.

    Vectors are word-hash counts (``dim`` wide), so texts sharing words are similar.
    ``hang_ups`` closes the connection on that many POSTs without answering, as
    llama-server does to a kept-alive connection it has just dropped.
    """

    def __init__(self, *, delay_s: float = 0.0, max_input_chars: int | None = None,
                 dim: int = 16, model: str = "/models/fake-embed.gguf",
                 hang_ups: int = 0) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        self.delay_s = delay_s
        self.max_input_chars = max_input_chars
        self.dim = dim
        self.model = model
        self.inputs: list[str] = []
        self.hang_ups = hang_ups  # the next POSTs that close the connection unanswered
        self.posts = 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                import socket

                super().setup()
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                self._json(200, {"object": "list", "data": [{"id": fake.model}]})

            def do_POST(self) -> None:
                import json
                import time

                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.posts += 1
                if fake.hang_ups:
                    fake.hang_ups -= 1
                    self.close_connection = True
                    return
                texts = body["input"]
                time.sleep(fake.delay_s)
                too_long = [t for t in texts if fake.max_input_chars and len(t) > fake.max_input_chars]
                if too_long:
                    self._json(500, {"error": {"code": 500, "message": (
                        f"input ({len(too_long[0])} tokens) is too large to process. "
                        "increase the physical batch size")}})
                    return
                fake.inputs.extend(texts)
                data = [{"index": i, "embedding": fake.vector(t)} for i, t in enumerate(texts)]
                self._json(200, {"object": "list", "data": data, "model": body.get("model")})

            def _json(self, status: int, payload: object) -> None:
                import json

                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def vector(self, text: str) -> list[float]:
        import zlib

        counts = [0.0] * self.dim
        for word in text.lower().split():
            counts[zlib.crc32(word.encode()) % self.dim] += 1.0
        return counts

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def fake_embeddings() -> Iterator[Callable[..., FakeEmbeddings]]:
    """``fake_embeddings(delay_s=..., max_input_chars=...)`` starts one; all stop at the end."""
    started: list[FakeEmbeddings] = []

    def start(**options: object) -> FakeEmbeddings:
        server = FakeEmbeddings(**options)  # type: ignore[arg-type]
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
