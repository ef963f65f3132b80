"""The OpenRouter key never lands anywhere: database, notebook outputs, logs, errors.

Every path to OpenRouter runs end to end (``nbchat.chat`` and ``%%chat`` in a real
kernel) against a scripted server that plays OpenRouter and echoes the Authorization
header it received into every error it sends. Afterwards the database (a SQLite file with
its WAL and shared-memory index; on PostgreSQL every column of every nbchat table, read
as the superuser), the saved notebook, the captured logs and output, and
the texts of every exception are searched for the key: zero occurrences.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

import nbchat
from nbchat.core.errors import ConfigError, NbChatError
from dbcheck import database_text
from sse_server import (
    FAKE_OPENROUTER_KEY,
    Reply,
    RecordedRequest,
    ScriptedServer,
    answer,
    delta_chunk,
    json_reply,
    sse_event,
    sse_reply,
    text_reply,
)

KEY = FAKE_OPENROUTER_KEY
KEY_PARTS = (KEY, KEY[len("sk-or-v1-"):], KEY[-32:])  # the key, and pieces of it


def _auth(request: RecordedRequest) -> str:
    return request.headers.get("authorization", "")


def _json_error(status: int, **headers: str) -> Callable[[RecordedRequest], Reply]:
    def reply(request: RecordedRequest) -> Reply:
        auth = _auth(request)
        return json_reply(
            status,
            {"error": {"code": status,
                       "message": f"Request with {auth} failed (credits, context too long, rate)",
                       "metadata": {"raw": f"upstream saw key={auth.split()[-1]}",
                                    "provider_name": auth}}},
            headers or None,
        )
    return reply


def _mid_stream_error(request: RecordedRequest) -> Reply:
    return sse_reply(delta_chunk("Partial "), {"error": {"message": f"key {_auth(request)} revoked",
                                                         "code": 502}})


def _finish_reason_error(request: RecordedRequest) -> Reply:
    failing = delta_chunk("")
    failing["choices"][0]["finish_reason"] = "error"
    failing["error"] = {"code": "server_error", "message": _auth(request)}
    return sse_reply(delta_chunk("Partial "), failing)


def _garbage_chunk(request: RecordedRequest) -> Reply:
    return sse_reply(delta_chunk("Partial "), sse_event(f"not json {_auth(request)}"))


def _html_page(request: RecordedRequest) -> Reply:
    page = f"<html><body>Gateway says {_auth(request)}</body></html>".encode()
    return Reply(200, {"Content-Type": "text/html"}, [page], framing="length")


def _dropped(request: RecordedRequest) -> Reply:
    return sse_reply(delta_chunk("Partial "), drop=True)


def _stalled(request: RecordedRequest) -> Reply:
    return sse_reply(delta_chunk("Partial "), 3.0, delta_chunk(f"late {_auth(request)}"))


def _plain_text(request: RecordedRequest) -> Reply:
    return text_reply(500, f"proxy error for {_auth(request)}")


ERROR_PATHS: dict[str, Callable[[RecordedRequest], Reply]] = {
    **{f"http-{status}": _json_error(status)
       for status in (400, 401, 402, 403, 404, 408, 413, 500, 502, 503)},
    "http-429": _json_error(429, **{"Retry-After": "2"}),
    "plain-text-500": _plain_text,
    "html-instead-of-stream": _html_page,
    "mid-stream-error": _mid_stream_error,
    "finish-reason-error": _finish_reason_error,
    "garbage-chunk": _garbage_chunk,
    "connection-dropped": _dropped,
    "stalled-stream": _stalled,
}


def _exception_texts(error: BaseException) -> list[str]:
    return [str(error), repr(error), repr(error.args),
            *traceback.format_exception(type(error), error, error.__traceback__)]


def _leaks(texts: list[str]) -> list[str]:
    return [text for text in texts if any(part in text for part in KEY_PARTS)]


def _bytes_leak(data: bytes) -> bool:
    return any(part.encode() in data for part in KEY_PARTS)


@pytest.fixture
def openrouter() -> Any:
    with ScriptedServer() as server:
        yield server


def _openrouter(server: ScriptedServer, **options: Any) -> dict[str, Any]:
    return {"backend": "openrouter", "openrouter_url": server.url + "/api/v1",
            "model": "acme/model", "request_timeout": 1.0, **options}


def test_no_openrouter_path_through_the_api_leaves_the_key_anywhere(openrouter, db_path, caplog,
                                                                    capfd, monkeypatch):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    outcomes: dict[str, str] = {}
    for name, path in ERROR_PATHS.items():
        openrouter.add(path)
        try:
            result = nbchat.chat(f"Question for {name}?", **_openrouter(openrouter, api_key=KEY))
        except NbChatError as error:
            texts += _exception_texts(error)
            outcomes[name] = f"raised {type(error).__name__}"
        else:
            texts += [repr(result), result.error_message or "", result.text]
            outcomes[name] = result.status
    # The key also comes from the environment, and a turn goes through normally.
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    openrouter.add(answer("All fine."))
    good = nbchat.chat("And a normal question?", **_openrouter(openrouter))
    assert good.status == "complete" and good.text == "All fine."
    texts += [repr(good), repr(nbchat.dry_run("Dry?", **_openrouter(openrouter))),
              repr(nbchat.api.default_client().settings)]
    monkeypatch.delenv("OPENROUTER_API_KEY")
    nbchat.api.default_client().close()
    monkeypatch.setattr(nbchat.api, "_DEFAULT", None)  # a new kernel, without any key
    with pytest.raises(ConfigError) as missing:
        nbchat.chat("No key at all?", **_openrouter(openrouter))
    assert "OPENROUTER_API_KEY" in str(missing.value)
    texts += _exception_texts(missing.value)

    # Every path was taken for real: the server received the key each time.
    assert len(openrouter.chat_requests) == len(ERROR_PATHS) + 1
    assert all(_auth(r) == f"Bearer {KEY}" for r in openrouter.chat_requests)
    assert set(outcomes.values()) == {"error", "partial"}, outcomes
    assert any(r.name.startswith(("httpx", "httpcore")) for r in caplog.records)
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts += [formatter.format(record) for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    out, err = capfd.readouterr()
    texts += [out, err]
    assert _leaks(texts) == []
    nbchat.api.default_client().close()  # the WAL is checkpointed into the main file
    assert not _bytes_leak(database_text(db_path))


def test_no_notebook_output_or_database_byte_holds_the_key(openrouter, db_path, tmp_path,
                                                          monkeypatch):
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    monkeypatch.setenv("NBCHAT_OPENROUTER_URL", openrouter.url + "/api/v1")
    monkeypatch.setenv("NBCHAT_BACKEND", "openrouter")
    names = [name for name in ERROR_PATHS if name != "stalled-stream"]  # no timeout trait
    for name in names:
        openrouter.add(ERROR_PATHS[name])
    openrouter.add(answer("Fine, thanks."), answer("You ran a few cells."))
    cells = ["%load_ext nbchat\n%config NbChat.model = 'acme/model'"]
    cells += [f"%%chat\nQuestion for {name}?" for name in names]
    cells += ["%%chat\nAnd a normal question?", "%%chat --dry-run\nDry?",
              "%chat status", "%chat config", "%chat history 30",
              "%%chat --nb\nWhat did I run so far?"]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    NotebookClient(notebook, timeout=60, allow_errors=True, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    saved = nbformat.writes(notebook)
    assert len(openrouter.chat_requests) == len(names) + 2
    assert all(_auth(r) == f"Bearer {KEY}" for r in openrouter.chat_requests)
    # --nb sent the notebook's inputs and outputs so far: the echoed errors, masked.
    notebook_prompt = openrouter.chat_requests[-1].body.decode("utf-8")
    assert "Question for http-401?" in notebook_prompt and "[redacted]" in notebook_prompt
    assert not any(part in notebook_prompt for part in KEY_PARTS)
    # The error paths really produced errors (shown without traceback) and partial answers.
    shown = ["".join(o.get("text", "") for o in c.outputs if o.output_type == "stream")
             for c in notebook.cells]
    assert sum("UsageError: OpenRouter at" in text for text in shown) >= 10
    assert saved.count("partial answer (stream failed; kept as received)") >= 4
    assert "[redacted]" in saved  # the echoed key was there to leak, and was masked
    assert "Fine, thanks." in saved and "You ran a few cells." in saved and "hidden" in saved
    assert not any(part in saved for part in KEY_PARTS)
    assert not _bytes_leak(database_text(db_path))


def test_a_key_taken_out_of_the_environment_is_not_sent_again(openrouter, db_path, monkeypatch):
    """Removing or replacing ``OPENROUTER_API_KEY`` in a running kernel takes effect on
    the next turn: the old key is neither sent again nor kept by a cached backend."""
    monkeypatch.setenv("OPENROUTER_API_KEY", KEY)
    openrouter.add(answer("First."), answer("Second."))
    assert nbchat.chat("One?", **_openrouter(openrouter)).status == "complete"
    rotated = "sk-or-v1-ROTATED" + "9" * 48
    monkeypatch.setenv("OPENROUTER_API_KEY", rotated)
    assert nbchat.chat("Two?", **_openrouter(openrouter)).status == "complete"
    assert _auth(openrouter.chat_requests[-1]) == f"Bearer {rotated}"
    monkeypatch.delenv("OPENROUTER_API_KEY")
    with pytest.raises(ConfigError):
        nbchat.chat("Three?", **_openrouter(openrouter))
    assert len(openrouter.chat_requests) == 2
