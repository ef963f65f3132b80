"""The OpenRouter backend against the scripted server standing in for openrouter.ai."""

from __future__ import annotations

import pytest

from nbchat.backends.openrouter import OpenRouterBackend, resolve_openrouter_key
from nbchat.core.errors import BackendError, BackendUnreachable, ConfigError
from nbchat.core.events import Done, StreamError, TextDelta, Usage

from sse_server import answer, dead_url, delta_chunk, json_reply, sse_reply

QUESTION = [{"role": "user", "content": "Hello?"}]


def openrouter(server, key, **options):
    return OpenRouterBackend(key, base_url=server.url + "/api/v1", **options)


def run(backend, **options):
    try:
        return list(backend.stream(QUESTION, **options))
    finally:
        backend.close()


def test_no_key_anywhere_is_a_config_error_and_nothing_is_sent(server):
    with pytest.raises(ConfigError) as caught:
        OpenRouterBackend(base_url=server.url + "/api/v1")
    assert "OPENROUTER_API_KEY" in str(caught.value)
    assert "c.NbChat.api_key" in str(caught.value)
    assert server.requests == []


def test_the_key_comes_from_the_call_then_the_environment_then_the_configuration(monkeypatch):
    assert resolve_openrouter_key(None, "from-config") == "from-config"
    monkeypatch.setenv("OPENROUTER_API_KEY", "from-env")
    assert resolve_openrouter_key(None, "from-config") == "from-env"
    assert resolve_openrouter_key("from-call", "from-config") == "from-call"
    assert resolve_openrouter_key("  ", "from-config") == "from-env"


def test_a_request_carries_the_key_the_app_headers_and_the_default_model(server, fake_key):
    server.add(answer("Hi."))
    run(openrouter(server, fake_key))
    request = server.chat_requests[0]
    assert request.path == "/api/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {fake_key}"
    assert request.headers["x-title"] == "nbchat"
    assert request.headers["http-referer"]
    assert request.json["model"] == "openrouter/auto"
    assert "cache_prompt" not in request.json
    assert "return_progress" not in request.json  # llama-server's field only


def test_usage_keeps_cost_and_cached_tokens(server, fake_key):
    server.add(answer("Paid answer.", prompt_tokens=100, cached_tokens=64, cost=0.00042,
                      timings=False, comments=["OPENROUTER PROCESSING"]))
    events = run(openrouter(server, fake_key))
    usage = events[-2]
    assert isinstance(usage, Usage)
    assert usage.cost == 0.00042 and usage.cached_tokens == 64 and usage.prompt_tokens == 100
    assert usage.timings == {}
    assert events[-1] == Done("stop")


def test_finish_reason_error_mid_stream_keeps_the_partial_text(server, fake_key):
    failing = delta_chunk("")
    failing["choices"][0]["finish_reason"] = "error"
    failing["error"] = {"code": 502, "message": "Provider disconnected unexpectedly"}
    server.add(sse_reply(delta_chunk("The first half"), failing))
    events = run(openrouter(server, fake_key))
    assert events[0] == TextDelta("The first half")
    assert isinstance(events[-1], StreamError)
    assert events[-1].kind == "upstream"
    assert "Provider disconnected unexpectedly" in events[-1].message


@pytest.mark.parametrize(
    ("status", "message", "kind", "hint"),
    [
        (401, "User not found.", "auth", "OPENROUTER_API_KEY"),
        (402, "Insufficient credits", "credits", "openrouter.ai/settings/credits"),
        (403, "Input was flagged by moderation", "model", "c.NbChat.model"),
        (404, "No endpoints found for acme/none.", "model", "openrouter.ai/models"),
        (408, "Request timed out", "timeout", "Try again"),
        (429, "Rate limit exceeded", "rate_limit", "Try again in 12 s"),
        (502, "Provider returned error", "upstream", "another model"),
        (503, "No available provider", "upstream", "Try again"),
    ],
)
def test_each_openrouter_refusal_has_an_actionable_message(server, fake_key, status, message, kind, hint):
    server.add(json_reply(status, {"error": {"code": status, "message": message}},
                          {"Retry-After": "12"} if status == 429 else None))
    with pytest.raises(BackendError) as caught:
        run(openrouter(server, fake_key), model="acme/none")
    assert caught.value.kind == kind
    assert hint in str(caught.value)
    assert message.rstrip(".") in str(caught.value)


def test_context_window_comes_from_the_model_list_once_per_process(server, fake_key):
    server.models = [
        {"id": "openrouter/auto", "context_length": 2_000_000},
        {"id": "acme/small", "context_length": 8192, "top_provider": {"context_length": 4096}},
    ]
    with openrouter(server, fake_key) as first:
        assert first.context_window(None) == 2_000_000
        assert first.context_window("acme/small") == 8192
        assert first.token_counter() is None
    with openrouter(server, fake_key) as second:
        assert second.context_window("acme/small") == 8192
    assert len(server.requests_to("/api/v1/models")) == 1


def test_an_unreachable_openrouter_names_the_url_not_the_key(fake_key):
    url = dead_url() + "/api/v1"
    with pytest.raises(BackendUnreachable) as caught:
        run(OpenRouterBackend(fake_key, base_url=url))
    assert url in str(caught.value)
    assert fake_key not in str(caught.value)


def test_the_repr_says_a_key_is_set_without_showing_it(fake_key):
    backend = OpenRouterBackend(fake_key)
    assert repr(backend) == (
        "OpenRouterBackend(base_url='https://openrouter.ai/api/v1', "
        "default_model='openrouter/auto', api_key=<set>)"
    )
    assert backend.server_label == "OpenRouter"
