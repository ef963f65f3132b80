"""The OpenAI-compatible backend against the scripted server on a real socket."""

from __future__ import annotations

import time

import pytest

from nbchat.backends.openai_compat import OpenAICompatBackend
from nbchat.core.errors import BackendError, BackendUnreachable, ConfigError
from nbchat.core.events import Done, StreamError, TextDelta, Usage

from sse_server import (
    DONE,
    Reply,
    answer,
    dead_url,
    delta_chunk,
    finish_chunk,
    json_reply,
    sse_comment,
    sse_reply,
    text_reply,
    usage_chunk,
)

QUESTION = [{"role": "user", "content": "Hello?"}]


def backend_for(server, **options):
    return OpenAICompatBackend(server.url + "/v1", default_model="scripted-model", **options)


def run(backend, **options):
    try:
        return list(backend.stream(QUESTION, **options))
    finally:
        backend.close()


def text_of(events):
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def refusal(server, reply, **options):
    server.add(reply)
    with pytest.raises(BackendError) as caught:
        run(backend_for(server, **options))
    return caught.value


def test_a_streamed_answer_arrives_whole_with_usage_and_done(server):
    server.add(answer("The answer is 42.", cached_tokens=3, cost=0.0001))
    events = run(backend_for(server))
    assert text_of(events) == "The answer is 42."
    usage = events[-2]
    assert isinstance(usage, Usage)
    assert usage.prompt_tokens == 12 and usage.cached_tokens == 3 and usage.cost == 0.0001
    assert usage.timings["prompt_n"] == 9
    assert events[-1] == Done("stop")


def test_the_request_is_a_streamed_chat_completion_without_empty_fields(server):
    server.add(answer("ok"))
    run(backend_for(server), max_tokens=64)
    request = server.chat_requests[0]
    assert request.method == "POST" and request.path == "/v1/chat/completions"
    assert request.json == {
        "model": "scripted-model",
        "messages": QUESTION,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 64,
    }
    assert request.headers["accept"] == "text/event-stream"
    assert "authorization" not in request.headers


def test_temperature_and_model_are_sent_when_given(server):
    server.add(answer("ok"))
    run(backend_for(server), model="other", temperature=0.2)
    body = server.chat_requests[0].json
    assert body["model"] == "other" and body["temperature"] == 0.2


def test_a_key_is_sent_as_a_bearer_token(server):
    server.add(answer("ok"))
    run(OpenAICompatBackend(server.url + "/v1", api_key="local-secret-123"))
    assert server.chat_requests[0].headers["authorization"] == "Bearer local-secret-123"


@pytest.mark.parametrize(
    ("status", "body", "headers", "kind"),
    [
        (401, {"error": {"message": "Incorrect API key provided", "code": "invalid_api_key"}}, {}, "auth"),
        (402, {"error": {"message": "Payment required"}}, {}, "credits"),
        (403, {"error": {"message": "not allowed for this project"}}, {}, "model"),
        (404, {"error": {"message": "The model `gone` does not exist", "code": "model_not_found"}}, {}, "model"),
        (408, {"error": {"message": "timeout"}}, {}, "timeout"),
        (429, {"error": {"message": "Rate limit reached"}}, {"Retry-After": "7"}, "rate_limit"),
        (502, {"error": {"message": "bad gateway"}}, {}, "upstream"),
        (503, {"error": {"message": "overloaded"}}, {}, "upstream"),
        (400, {"error": {"message": "maximum context length is 4096 tokens",
                         "code": "context_length_exceeded"}}, {}, "context"),
        (500, {"error": {"message": "kaboom"}}, {}, "generic"),
    ],
)
def test_every_http_refusal_is_raised_classified_before_any_event(server, status, body, headers, kind):
    error = refusal(server, json_reply(status, body, headers))
    assert error.kind == kind
    assert error.status == status
    if kind == "rate_limit":
        assert error.retry_after == 7.0


def test_a_plain_text_refusal_is_classified_too(server):
    error = refusal(server, text_reply(502, "<html>502 Bad Gateway</html>"))
    assert error.kind == "upstream" and "502 Bad Gateway" in str(error)


def test_a_truncated_body_is_an_error_that_keeps_the_partial_text(server):
    server.add(answer("Half of the answer", finish_reason=None, usage=False, done=False))
    events = run(backend_for(server))
    assert text_of(events) == "Half of the answer"
    assert isinstance(events[-1], StreamError) and events[-1].kind == "truncated"


def test_a_connection_cut_mid_stream_is_truncated_and_keeps_the_text(server):
    server.add(sse_reply(delta_chunk("Before the cut"), drop=True))
    events = run(backend_for(server))
    assert text_of(events) == "Before the cut"
    assert events[-1].kind == "truncated"


def test_a_body_closed_by_the_server_after_finish_is_a_normal_end(server):
    server.add(sse_reply(delta_chunk("Fine"), finish_chunk("stop"), framing="close"))
    assert run(backend_for(server))[-1] == Done("stop")


def test_a_llama_error_object_mid_stream_keeps_the_partial_text(server):
    error = {"error": {"code": 500, "message": "slot unavailable", "type": "server_error"}}
    server.add(sse_reply(delta_chunk("Partial "), delta_chunk("text"), error))
    events = run(backend_for(server))
    assert text_of(events) == "Partial text"
    assert isinstance(events[-1], StreamError) and "slot unavailable" in events[-1].message


def test_comment_lines_are_ignored(server):
    server.add(
        sse_reply(
            sse_comment("OPENROUTER PROCESSING"),
            delta_chunk("A"),
            b": keep-alive\n\n",
            delta_chunk("B"),
            sse_comment("OPENROUTER PROCESSING"),
            finish_chunk("stop"),
            DONE,
        )
    )
    events = run(backend_for(server))
    assert text_of(events) == "AB" and events[-1] == Done("stop")


@pytest.mark.parametrize("line_ending", ["\r\n", "\r"])
def test_crlf_and_cr_line_endings_stream_the_same_text(server, line_ending):
    server.add(answer("Line endings\nof every kind.", line_ending=line_ending))
    events = run(backend_for(server))
    assert text_of(events) == "Line endings\nof every kind."
    assert events[-1] == Done("stop")


def test_unicode_line_separators_in_the_text_arrive_intact(server):
    text = "one\u2028two\u0085three\u2029four \U0001f600 caf\u00e9"
    reply = answer(text, piece_chars=3)
    wire = b"".join(c for c in reply.chunks if isinstance(c, bytes))
    # Sent raw, not \u-escaped, so the SSE line splitting is really exercised.
    assert "\u2028".encode() in wire and "\u0085".encode() in wire
    server.add(reply)
    events = run(backend_for(server))
    assert text_of(events) == text


def test_data_split_over_several_lines_is_joined(server):
    body = (
        b'data: {"choices": [{"index": 0,\n'
        b'data: "delta": {"content": "joined"},\n'
        b'data: "finish_reason": null}]}\n\n'
        + DONE
    )
    server.add(sse_reply(body))
    events = run(backend_for(server))
    assert text_of(events) == "joined"


def test_a_slow_first_byte_still_streams(server):
    server.add(answer("Worth the wait.", delay_s=0.6))
    started = time.monotonic()
    events = run(backend_for(server))
    assert time.monotonic() - started >= 0.6
    assert text_of(events) == "Worth the wait."


def test_chunks_arrive_as_they_are_sent_not_at_the_end(server):
    server.add(sse_reply(delta_chunk("first"), 1.0, delta_chunk(" second"), finish_chunk(), DONE))
    backend = backend_for(server)
    started = time.monotonic()
    stream = backend.stream(QUESTION)
    first = next(stream)
    first_at = time.monotonic() - started
    rest = list(stream)
    total = time.monotonic() - started
    backend.close()
    assert first == TextDelta("first")
    assert first_at < 0.5 <= total
    assert text_of(rest) == " second"


def test_waiting_for_the_first_byte_longer_than_the_timeout_is_a_timeout(server):
    error = refusal(server, answer("late", delay_s=1.5), request_timeout=0.3)
    assert error.kind == "timeout"
    assert "c.NbChat.request_timeout" in str(error)


def test_silence_mid_stream_longer_than_the_timeout_keeps_the_text(server):
    server.add(sse_reply(delta_chunk("So far so good"), 2.0, delta_chunk("never")))
    events = run(backend_for(server, request_timeout=0.3))
    assert text_of(events) == "So far so good"
    assert events[-1].kind == "timeout"


def test_a_server_that_stays_open_after_finish_and_usage_does_not_hold_the_stream(server):
    server.add(sse_reply(delta_chunk("Done."), finish_chunk(), usage_chunk(3, 1), 30.0))
    started = time.monotonic()
    events = run(backend_for(server))
    assert time.monotonic() - started < 5
    assert [type(e) for e in events] == [TextDelta, Usage, Done]


def test_a_json_completion_instead_of_a_stream_is_accepted(server):
    server.add(json_reply(200, {
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Not streamed"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2},
    }))
    events = run(backend_for(server))
    assert text_of(events) == "Not streamed" and events[-1] == Done("stop")


def test_an_html_page_instead_of_a_stream_says_to_check_the_url(server):
    page = Reply(200, {"Content-Type": "text/html"}, [b"<html>login</html>"], framing="length")
    error = refusal(server, page)
    assert "base URL" in str(error)


def test_closing_the_stream_mid_answer_closes_the_connection(server):
    parts = []
    for index in range(200):
        parts += [delta_chunk(f"w{index} "), 0.02]
    server.add(sse_reply(*parts, finish_chunk(), DONE))
    backend = backend_for(server)
    stream = backend.stream(QUESTION)
    received = [next(stream) for _ in range(3)]
    stream.close()
    assert server.wait_for_disconnect(timeout_s=3.0)
    assert server.completed == 0
    assert text_of(received) == "w0 w1 w2 "
    backend.close()


def test_an_interrupt_inside_the_stream_closes_the_connection(server):
    parts = []
    for index in range(200):
        parts += [delta_chunk("x"), 0.02]
    server.add(sse_reply(*parts, finish_chunk(), DONE))
    backend = backend_for(server)
    stream = backend.stream(QUESTION)
    next(stream)
    with pytest.raises(KeyboardInterrupt):
        stream.throw(KeyboardInterrupt)
    assert server.wait_for_disconnect(timeout_s=3.0)
    backend.close()


def test_a_dead_port_is_unreachable_and_names_the_url():
    url = dead_url() + "/v1"
    with pytest.raises(BackendUnreachable) as caught:
        run(OpenAICompatBackend(url))
    assert url in str(caught.value)
    assert caught.value.kind == "unreachable"
    assert "refused" in str(caught.value)


def test_a_base_url_without_scheme_is_a_config_error():
    with pytest.raises(ConfigError) as caught:
        run(OpenAICompatBackend("localhost:8080"))
    assert "base URL" in str(caught.value)


def test_context_window_comes_from_the_model_listing_and_is_cached(server):
    server.models = [
        {"id": "small", "context_length": 4096},
        {"id": "vllm-style", "max_model_len": 32768},
        {"id": "bare"},
    ]
    with backend_for(server) as backend:
        assert backend.context_window("small") == 4096
        assert backend.context_window("vllm-style") == 32768
        assert backend.context_window("bare") is None
        assert backend.context_window("unknown") is None
        assert backend.token_counter() is None
    assert len(server.requests_to("/models")) == 1


def test_context_window_is_none_when_the_server_is_gone():
    with OpenAICompatBackend(dead_url() + "/v1") as backend:
        assert backend.context_window("m") is None


def test_the_backend_reconnects_after_close(server):
    server.add(answer("one"), answer("two"))
    backend = backend_for(server)
    assert text_of(list(backend.stream(QUESTION))) == "one"
    backend.close()
    assert text_of(list(backend.stream(QUESTION))) == "two"
    backend.close()


def test_credentials_in_the_base_url_are_not_shown():
    url = dead_url().replace("http://", "http://user:hunter2@") + "/v1"
    with OpenAICompatBackend(url) as backend:
        assert "hunter2" not in repr(backend)
        with pytest.raises(BackendUnreachable) as caught:
            list(backend.stream(QUESTION))
    assert "hunter2" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


def test_a_connection_closed_before_any_answer_is_tried_once_more(server):
    # llama-server closes kept-alive connections that sat idle: the next request on one
    # fails before any byte comes back, and must not reach the user as an error.
    server.add(Reply(hang_up=True), answer("Still here."))
    events = run(backend_for(server))
    assert text_of(events) == "Still here."
    assert len(server.chat_requests) == 2


def test_a_server_that_keeps_hanging_up_is_reported_as_unreachable(server):
    server.add(Reply(hang_up=True), Reply(hang_up=True))
    with pytest.raises(BackendUnreachable, match="closed the connection without answering"):
        run(backend_for(server))
    assert len(server.chat_requests) == 2
