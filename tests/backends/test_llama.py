"""The llama-server backend against the scripted server: health, props, tokenize, errors."""

from __future__ import annotations

import json

import pytest

from nbchat.backends.llama import LlamaServerBackend
from nbchat.core.errors import BackendError, BackendUnreachable
from nbchat.core.events import Done, PromptProgress, StreamError, TextDelta, Usage

from sse_server import (
    answer,
    apply_template,
    dead_url,
    delta_chunk,
    json_reply,
    progress_chunk,
    simple_tokenize,
    sse_reply,
)

QUESTION = [{"role": "user", "content": "Hello?"}]
OVERFLOW = {
    "error": {
        "code": 400,
        "message": "the request exceeds the available context size, try increasing it",
        "type": "exceed_context_size_error",
        "n_prompt_tokens": 9300,
        "n_ctx": 8192,
    }
}


def run(backend, **options):
    try:
        return list(backend.stream(QUESTION, **options))
    finally:
        backend.close()


def test_a_turn_checks_health_then_streams_with_the_prompt_cache_on(server):
    server.add(answer("Hi from llama.", prompt_tokens=40, cached_tokens=30))
    events = run(LlamaServerBackend(server.url))
    paths = [request.path for request in server.requests]
    assert paths == ["/health", "/v1/chat/completions"]
    body = server.chat_requests[0].json
    assert body["cache_prompt"] is True and body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    usage = events[-2]
    assert isinstance(usage, Usage)
    assert usage.timings["cache_n"] == 30 and usage.timings["prompt_n"] == 10
    assert events[-1] == Done("stop")


def test_llama_server_is_asked_for_prompt_progress(server):
    server.add(answer("ok"))
    run(LlamaServerBackend(server.url))
    assert server.chat_requests[0].json["return_progress"] is True


def test_progress_chunks_become_events_before_the_first_text(server):
    # The shape and cadence the xllamacpp server sent for a 5,670-token prompt: one
    # report at the start, one per 2,048-token batch, one when the prompt is read.
    reports = [(0, 0), (2048, 33982), (4096, 74266), (5670, 155586)]
    server.add(answer("The value.", progress=[
        progress_chunk(processed, 5670, time_ms=ms) for processed, ms in reports
    ]))
    events = run(LlamaServerBackend(server.url))
    progress = [e for e in events if isinstance(e, PromptProgress)]
    assert [(p.processed_tokens, p.total_tokens, p.elapsed_ms) for p in progress] == [
        (0, 5670, 0.0), (2048, 5670, 33982.0), (4096, 5670, 74266.0), (5670, 5670, 155586.0)
    ]
    first_text = next(i for i, e in enumerate(events) if isinstance(e, TextDelta))
    assert all(isinstance(e, PromptProgress) for e in events[:first_text])
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The value."
    assert [p.worth_showing for p in progress] == [False, True, True, False]
    assert progress[1].describe() == "reading the prompt: 2,048 / 5,670 tokens"


def test_progress_counts_leave_out_the_cached_part_of_the_prompt():
    report = PromptProgress(processed_tokens=5000, total_tokens=6000, cached_tokens=3000,
                            elapsed_ms=1500)
    assert report.describe() == "reading the prompt: 2,000 / 3,000 tokens"
    assert report.worth_showing
    assert not PromptProgress(1000, 6000, 0, elapsed_ms=900).worth_showing


def test_a_good_health_check_is_trusted_for_a_few_seconds(server):
    server.add(answer("one"), answer("two"))
    with LlamaServerBackend(server.url) as backend:
        run(backend)
        run(backend)
    assert len(server.requests_to("/health")) == 1


def test_an_expired_health_check_is_repeated(server):
    server.add(answer("one"), answer("two"))
    with LlamaServerBackend(server.url, health_ttl_s=0.0) as backend:
        run(backend)
        run(backend)
    assert len(server.requests_to("/health")) == 2


def test_a_base_url_ending_in_v1_still_reaches_the_right_paths(server):
    server.add(answer("ok"))
    run(LlamaServerBackend(server.url + "/v1/"))
    assert server.chat_requests[0].path == "/v1/chat/completions"


def test_no_server_says_how_to_start_one():
    url = dead_url()
    with pytest.raises(BackendUnreachable) as caught:
        run(LlamaServerBackend(url))
    message = str(caught.value)
    assert url in message
    assert "%chat engine start" in message and "nbchat engine start" in message
    assert "NBCHAT_BASE_URL" in message and "c.NbChat.base_url" in message


def test_a_loading_server_says_to_try_again_and_nothing_is_sent(server):
    server.health_status = 503
    with pytest.raises(BackendError) as caught:
        run(LlamaServerBackend(server.url))
    assert caught.value.kind == "loading"
    assert "still loading" in str(caught.value) and "few seconds" in str(caught.value)
    assert server.chat_requests == []


def test_a_health_check_that_hangs_is_a_timeout(server):
    server.health_delay_s = 2.0
    with pytest.raises(BackendError) as caught:
        run(LlamaServerBackend(server.url, health_timeout_s=0.3))
    assert caught.value.kind == "timeout"
    assert server.chat_requests == []


def test_a_context_overflow_before_streaming_names_both_numbers(server):
    server.add(json_reply(400, OVERFLOW))
    with pytest.raises(BackendError) as caught:
        run(LlamaServerBackend(server.url))
    message = str(caught.value)
    assert caught.value.kind == "context"
    assert "9300" in message and "8192" in message


def test_a_context_overflow_inside_the_stream_names_both_numbers(server):
    server.add(sse_reply(delta_chunk("Par"), OVERFLOW))
    events = run(LlamaServerBackend(server.url))
    assert events[0] == TextDelta("Par")
    assert isinstance(events[-1], StreamError) and events[-1].kind == "context"
    assert "9300" in events[-1].message and "8192" in events[-1].message


def test_context_window_is_the_servers_n_ctx_read_once(server):
    server.n_ctx = 4096
    with LlamaServerBackend(server.url) as backend:
        assert backend.context_window(None) == 4096
        assert backend.context_window("anything") == 4096
    assert len(server.requests_to("/props")) == 1


def test_context_window_also_reads_a_top_level_n_ctx(server):
    server.props = {"n_ctx": 2048, "model_path": "/m.gguf"}
    with LlamaServerBackend(server.url) as backend:
        assert backend.context_window(None) == 2048


def test_context_window_is_none_without_a_server():
    with LlamaServerBackend(dead_url()) as backend:
        assert backend.context_window(None) is None


def test_the_token_counter_counts_with_the_servers_tokenizer(server):
    text = "Hello, world! How are you today?"
    with LlamaServerBackend(server.url) as backend:
        counter = backend.token_counter()
        assert counter is not None
        assert counter.count(text) == len(simple_tokenize(text)) == 9
        assert counter.count("word " * 400) == 400
    assert server.requests_to("/tokenize")[0].json == {"content": text}


def test_the_tokenizer_id_names_the_model_so_cache_keys_differ(server):
    server.model_path = "/models/gemma.gguf"
    with LlamaServerBackend(server.url) as backend:
        first = backend.token_counter()
    server.model_path = "/models/other.gguf"
    with LlamaServerBackend(server.url) as backend:
        second = backend.token_counter()
    assert first.tokenizer_id == "llama:/models/gemma.gguf"
    assert second.tokenizer_id == "llama:/models/other.gguf"


def test_short_texts_are_counted_once(server):
    with LlamaServerBackend(server.url) as backend:
        counter = backend.token_counter()
        assert counter.count("## notes.txt") == counter.count("## notes.txt") == 5
    assert len(server.requests_to("/tokenize")) == 1


def test_a_whole_prompt_is_templated_then_tokenized_with_the_bos_and_cached(server):
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello, model?"},
    ]
    backend = LlamaServerBackend(server.url)
    counter = backend.token_counter()
    assert counter is not None
    expected = len(simple_tokenize(apply_template(messages))) + 1  # the BOS
    assert counter.count_prompt(messages) == expected
    paths = [request.path for request in server.requests]
    assert paths[-2:] == ["/apply-template", "/tokenize"]
    assert server.requests[-2].json == {"messages": messages}
    assert server.requests[-1].json["add_special"] is True
    assert server.requests[-1].json["parse_special"] is True
    requests = len(server.requests)
    assert counter.count_prompt([dict(m) for m in messages]) == expected
    assert len(server.requests) == requests  # cached by the messages' hash
    backend.close()


def test_a_whole_prompt_the_server_cannot_template_is_left_to_the_estimate(server):
    from nbchat.backends.llama import LlamaTokenCounter
    from nbchat.core.tokens import CachedCounter

    # Under this prefix the scripted server has no /apply-template: it answers 404.
    backend = LlamaServerBackend(server.url + "/older-server")
    with pytest.raises(BackendError):
        backend.count_prompt(QUESTION)
    assert CachedCounter(LlamaTokenCounter(backend, "llama:old")).count_prompt(QUESTION) is None
    backend.close()


def test_no_token_counter_without_a_server():
    with LlamaServerBackend(dead_url()) as backend:
        assert backend.token_counter() is None


def test_a_server_that_dies_mid_answer_leaves_the_partial_text(server):
    server.add(sse_reply(delta_chunk("Partial "), delta_chunk("answer"), 0.05, drop=True))
    events = run(LlamaServerBackend(server.url))
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Partial answer"
    assert events[-1].kind == "truncated"


def test_the_repr_shows_the_address(server):
    backend = LlamaServerBackend(server.url, api_key="local-key-abcdef")
    assert repr(backend) == (
        f"LlamaServerBackend(base_url={server.url!r}, default_model=None, api_key=<set>)"
    )
    assert json.dumps(repr(backend)).count("local-key") == 0
