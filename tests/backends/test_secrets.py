"""The OpenRouter key never leaks: not in errors, events, reprs or log records.

The scripted server is hostile: every error it sends echoes the Authorization header
it received, so a leak anywhere on the error paths would show the key.
"""

from __future__ import annotations

import logging
import traceback

import pytest

from nbchat.backends.openrouter import OpenRouterBackend
from nbchat.backends.registry import get_backend
from nbchat.core.errors import NbChatError
from nbchat.core.settings import Settings

from sse_server import (
    Reply,
    dead_url,
    delta_chunk,
    json_reply,
    sse_event,
    sse_reply,
    text_reply,
)

QUESTION = [{"role": "user", "content": "Hello?"}]


def echo_json(status, **headers):
    def reply(request):
        auth = request.headers.get("authorization", "")
        return json_reply(
            status,
            {"error": {"code": status, "message": f"Bad request with {auth} (too long context)",
                       "metadata": {"raw": f"upstream saw key={auth.split()[-1]}"}}},
            headers or None,
        )
    return reply


def echo_text(status):
    return lambda request: text_reply(status, f"proxy error for {request.headers['authorization']}")


def echo_mid_stream_error(request):
    key = request.headers["authorization"].split()[-1]
    return sse_reply(delta_chunk("partial"), {"error": {"message": f"key {key} revoked"}})


def echo_finish_reason_error(request):
    failing = delta_chunk("")
    failing["choices"][0]["finish_reason"] = "error"
    failing["error"] = {"code": "server_error", "message": request.headers["authorization"]}
    return sse_reply(delta_chunk("partial"), failing)


def echo_garbage_chunk(request):
    return sse_reply(delta_chunk("partial"), sse_event(f"oops {request.headers['authorization']}"))


def echo_html_page(request):
    page = f"<html>{request.headers['authorization']}</html>".encode()
    return Reply(200, {"Content-Type": "text/html"}, [page], framing="length")


def truncated(request):
    return sse_reply(delta_chunk("partial"), drop=True)


def slow(request):
    return sse_reply(delta_chunk("partial"), 3.0, delta_chunk("late"))


ERROR_PATHS = {
    **{f"http-{status}": echo_json(status) for status in (400, 401, 402, 403, 404, 408, 500, 502, 503)},
    "http-429": echo_json(429, **{"Retry-After": "3"}),
    "plain-text-500": echo_text(500),
    "mid-stream-error": echo_mid_stream_error,
    "finish-reason-error": echo_finish_reason_error,
    "garbage-chunk": echo_garbage_chunk,
    "html-instead-of-stream": echo_html_page,
    "truncated": truncated,
    "timeout": slow,
}


def texts_of_exception(error: BaseException) -> list[str]:
    texts = [str(error), repr(error), repr(error.args)]
    texts += traceback.format_exception(type(error), error, error.__traceback__)
    return texts


def texts_of_records(records) -> list[str]:
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts = []
    for record in records:
        texts += [record.getMessage(), repr(record.args), formatter.format(record)]
    return texts


@pytest.mark.parametrize("path", sorted(ERROR_PATHS))
def test_no_error_path_leaks_the_key(server, fake_key, caplog, path):
    caplog.set_level(logging.DEBUG)
    server.add(ERROR_PATHS[path])
    backend = OpenRouterBackend(fake_key, base_url=server.url + "/api/v1", request_timeout=1.0)
    texts = [repr(backend)]
    try:
        events = list(backend.stream(QUESTION, model="acme/model"))
    except NbChatError as error:
        texts += texts_of_exception(error)
        outcome = "raised"
    else:
        texts += [repr(event) for event in events]
        outcome = type(events[-1]).__name__
    finally:
        backend.close()
    # The server really received (and echoed) the key, so the test can see a leak.
    assert server.chat_requests[0].headers["authorization"] == f"Bearer {fake_key}"
    assert outcome in ("raised", "StreamError")
    # httpx's own loggers were listening and are part of what is searched.
    assert any(record.name.startswith(("httpx", "httpcore")) for record in caplog.records)
    texts += texts_of_records(caplog.records)
    leaks = [text for text in texts if fake_key in text or fake_key[8:] in text]
    assert leaks == []


def test_model_listing_failures_do_not_leak_the_key(server, fake_key, caplog):
    caplog.set_level(logging.DEBUG)
    server.models = [{"id": f"leak-{fake_key}", "context_length": 1}]
    with OpenRouterBackend(fake_key, base_url=server.url + "/api/v1") as backend:
        assert backend.context_window("acme/model") is None
    texts = texts_of_records(caplog.records) + [repr(backend)]
    assert not [text for text in texts if fake_key in text]


def test_an_unreachable_server_does_not_leak_the_key(fake_key, caplog):
    caplog.set_level(logging.DEBUG)
    with OpenRouterBackend(fake_key, base_url=dead_url() + "/api/v1") as backend:
        with pytest.raises(NbChatError) as caught:
            list(backend.stream(QUESTION))
    texts = texts_of_exception(caught.value) + texts_of_records(caplog.records)
    assert not [text for text in texts if fake_key in text]


def test_settings_and_the_backend_built_from_them_hide_the_key(fake_key):
    settings = Settings(backend="openrouter", api_key=fake_key)
    backend = get_backend(settings)
    assert fake_key not in repr(settings)
    assert fake_key not in repr(backend)
