"""Choosing a backend from the settings."""

from __future__ import annotations

import pytest

from nbchat.backends.llama import LlamaServerBackend
from nbchat.backends.openai_compat import OpenAICompatBackend
from nbchat.backends.openrouter import OpenRouterBackend
from nbchat.backends.registry import get_backend
from nbchat.core.errors import ConfigError
from nbchat.core.settings import Settings

from sse_server import answer


def test_llama_is_the_default_at_the_usual_address():
    backend = get_backend(Settings())
    assert type(backend) is LlamaServerBackend
    assert backend.base_url == "http://127.0.0.1:8080"


def test_settings_carry_the_url_and_timeouts_but_not_the_model(server):
    settings = Settings(backend="openai", base_url=server.url + "/v1/", model="m1",
                        connect_timeout=1.5, request_timeout=9.0)
    backend = get_backend(settings)
    assert type(backend) is OpenAICompatBackend
    assert backend.base_url == server.url + "/v1"
    assert (backend.connect_timeout, backend.request_timeout) == (1.5, 9.0)
    # The model comes with each turn (Settings.resolved_model), never from the backend.
    assert backend.default_model is None


def test_openrouter_gets_its_default_address_and_model(fake_key):
    backend = get_backend(Settings(backend="openrouter", api_key=fake_key))
    assert type(backend) is OpenRouterBackend
    assert backend.base_url == "https://openrouter.ai/api/v1"
    assert backend.default_model == "openrouter/auto"


def test_openrouter_without_any_key_is_a_config_error():
    with pytest.raises(ConfigError) as caught:
        get_backend(Settings(backend="openrouter"))
    assert "OPENROUTER_API_KEY" in str(caught.value)


@pytest.mark.parametrize(
    ("call_key", "env_key", "config_key", "sent"),
    [
        ("call-key-1", "env-key-1", "config-key-1", "call-key-1"),
        (None, "env-key-1", "config-key-1", "env-key-1"),
        (None, None, "config-key-1", "config-key-1"),
    ],
)
def test_the_key_sent_follows_call_then_environment_then_configuration(
    server, monkeypatch, call_key, env_key, config_key, sent
):
    if env_key:
        monkeypatch.setenv("OPENROUTER_API_KEY", env_key)
    server.add(answer("ok"))
    # from_env layers the configuration's key under the environment's.
    settings = Settings.from_env(
        backend="openrouter", openrouter_url=server.url + "/api/v1", api_key=config_key
    )
    backend = get_backend(settings, api_key=call_key)
    list(backend.stream([{"role": "user", "content": "hi"}], model=None, max_tokens=None,
                        temperature=None))
    backend.close()
    assert server.chat_requests[0].headers["authorization"] == f"Bearer {sent}"


def test_an_unknown_backend_names_the_accepted_ones():
    with pytest.raises(ConfigError) as caught:
        get_backend(Settings(backend="ollama"))
    message = str(caught.value)
    assert "'ollama'" in message
    assert "'llama'" in message and "'openrouter'" in message and "'openai'" in message


def test_a_local_base_url_never_receives_the_openrouter_key(server, fake_key):
    # NBCHAT_BASE_URL points at a local server; a cell switches to OpenRouter.
    settings = Settings(backend="openrouter", base_url=server.url, api_key=fake_key)
    assert get_backend(settings).base_url == "https://openrouter.ai/api/v1"
    # And the local backends never get the OpenRouter key at all.
    server.add(answer("ok"))
    local = get_backend(settings.replace(backend="openai", base_url=server.url + "/v1"))
    list(local.stream([{"role": "user", "content": "hi"}], model=None, max_tokens=None,
                      temperature=None))
    local.close()
    assert "authorization" not in server.chat_requests[0].headers
