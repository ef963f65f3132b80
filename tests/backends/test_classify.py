"""Error classification: status, body and headers to a kind and an actionable message."""

from __future__ import annotations

import email.utils
import json
import time

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from nbchat.backends.classify import ErrorContext, classify_error, parse_retry_after

from sse_server import FAKE_OPENROUTER_KEY as FAKE_KEY

OPENROUTER = ErrorContext("openrouter", "OpenRouter", "acme/model-x", FAKE_KEY)
LLAMA = ErrorContext("llama", "llama-server at http://127.0.0.1:8080", None, None)
KINDS = {"credits", "context", "rate_limit", "auth", "model", "upstream", "timeout",
         "unreachable", "loading", "truncated", "interrupted", "generic"}


def err(message, **extra):
    return {"error": {"message": message, **extra}}


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (402, err("Insufficient credits. Add more using https://openrouter.ai/credits"), "credits"),
        (400, err("Your account balance is too low"), "credits"),
        (429, err("You exceeded your current quota, please check your plan and billing"), "credits"),
        (400, err("This endpoint's maximum context length is 8192 tokens"), "context"),
        (413, "Payload Too Large", "context"),
        (429, err("Rate limit exceeded: free-models-per-min."), "rate_limit"),
        (401, err("No auth credentials found"), "auth"),
        (400, err("Invalid API key provided"), "auth"),
        (403, err("Your input was flagged by moderation"), "model"),
        (404, err("No endpoints found for acme/model-x."), "model"),
        (502, err("Provider returned error"), "upstream"),
        (503, "Service Unavailable", "upstream"),
        (503, err("Loading model", type="unavailable_error"), "loading"),
        (408, err("Request timed out"), "timeout"),
        (500, "<html><body>Internal Server Error</body></html>", "generic"),
        (404, "Not Found", "generic"),
    ],
)
def test_each_refusal_gets_its_kind(status, body, kind):
    error = classify_error(status, json.dumps(body) if isinstance(body, dict) else body, {}, OPENROUTER)
    assert error.kind == kind
    assert error.status == status
    assert str(error).strip()


def test_credit_message_says_where_to_add_credits():
    error = classify_error(402, err("Insufficient credits"), None, OPENROUTER)
    assert "https://openrouter.ai/settings/credits" in str(error)
    assert "Insufficient credits" in str(error)


def test_llama_context_overflow_names_both_numbers_and_the_ways_out():
    body = err("the request exceeds the available context size, try increasing it",
               type="exceed_context_size_error", n_prompt_tokens=12000, n_ctx=8192, code=400)
    error = classify_error(400, json.dumps(body).encode(), None, LLAMA)
    text = str(error)
    assert error.kind == "context"
    assert "12000" in text and "8192" in text
    assert "fewer or smaller" in text and "budget" in text and "new session" in text
    assert "--no-history" in text


def test_rate_limit_reads_retry_after_in_seconds():
    error = classify_error(429, err("slow down"), {"Retry-After": "17"}, OPENROUTER)
    assert error.kind == "rate_limit"
    assert error.retry_after == 17.0
    assert "17 s" in str(error)


def test_rate_limit_reads_retry_after_as_an_http_date():
    when = email.utils.formatdate(time.time() + 40, usegmt=True)
    error = classify_error(429, err("slow down"), {"retry-after": when}, OPENROUTER)
    assert 35 <= error.retry_after <= 41


def test_retry_after_parses_seconds_dates_and_rejects_junk():
    now = 1_000_000.0
    assert parse_retry_after("2.5", now=now) == 2.5
    assert parse_retry_after("-3", now=now) == 0.0
    assert parse_retry_after(email.utils.formatdate(now + 60, usegmt=True), now=now) == 60.0
    assert parse_retry_after(email.utils.formatdate(now - 60, usegmt=True), now=now) == 0.0
    assert parse_retry_after("soon", now=now) is None
    assert parse_retry_after("", now=now) is None
    assert parse_retry_after(None) is None


def test_auth_message_points_at_the_key_settings_without_the_key():
    error = classify_error(401, f"Invalid key {FAKE_KEY}", {}, OPENROUTER)
    assert error.kind == "auth"
    assert "OPENROUTER_API_KEY" in str(error) and "c.NbChat.api_key" in str(error)
    assert FAKE_KEY not in str(error)
    assert "[redacted]" in str(error)


def test_model_errors_name_the_model_and_how_to_choose_another():
    error = classify_error(404, err("Model acme/model-x not found"), {}, OPENROUTER)
    assert "'acme/model-x'" in str(error)
    assert "c.NbChat.model" in str(error)


def test_in_stream_error_takes_the_status_from_the_error_code():
    error = classify_error(None, err("Too many requests", code=429), None, OPENROUTER)
    assert error.kind == "rate_limit" and error.status == 429


def test_a_long_server_message_is_shortened():
    error = classify_error(500, err("x" * 5000), None, OPENROUTER)
    assert len(str(error)) < 600


@hsettings(max_examples=200, deadline=None)
@given(
    status=st.one_of(st.none(), st.integers(min_value=400, max_value=599)),
    words=st.text(max_size=80),
    echo_where=st.sampled_from(["message", "raw", "text", "header-ish"]),
)
def test_no_refusal_ever_echoes_the_key(status, words, echo_where):
    if echo_where == "message":
        body = json.dumps(err(f"{words} {FAKE_KEY} {words}"))
    elif echo_where == "raw":
        body = json.dumps(err(words, metadata={"raw": f"Authorization: Bearer {FAKE_KEY}"}))
    elif echo_where == "text":
        body = f"{words}{FAKE_KEY}"
    else:
        body = f"authorization=Bearer {FAKE_KEY[:-3]}"
    error = classify_error(status, body, {"Retry-After": "1"}, OPENROUTER)
    assert error.kind in KINDS
    assert FAKE_KEY not in str(error)
    assert FAKE_KEY[:-3] not in str(error)


def test_a_401_names_the_key_setting_of_the_backend_that_was_used():
    openai = ErrorContext("openai", "the server at http://127.0.0.1:9/v1", "m", FAKE_KEY)
    said = str(classify_error(401, {"error": {"message": "bad key"}}, {}, openai))
    assert "NBCHAT_OPENAI_API_KEY or c.NbChat.openai_api_key" in said
    assert "c.NbChat.api_key" not in said and "OPENROUTER_API_KEY" not in said
    # llama-server gets no key from nbchat: the message points to the backend that sends one.
    local = str(classify_error(401, {"error": {"message": "Invalid API Key"}}, {}, LLAMA))
    assert "sends no key" in local and "--backend openai" in local
    assert "c.NbChat.openai_api_key" in local and "c.NbChat.api_key" not in local
