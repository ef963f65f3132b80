"""A backend is its class plus one entry in BACKEND_INFO: everything else derives.

The entry here is registered in-process for one test and reuses the generic
OpenAI-compatible class (no file is added to the package). Its key setting is a field of
a small Settings subclass, as a new field next to the entry would be.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from nbchat.backends.openai_compat import OpenAICompatBackend
from nbchat.backends.registry import get_backend
from nbchat.core.errors import BackendError
from nbchat.core.settings import BACKEND_INFO, BackendInfo, Settings, env_variables, key_variables
from nbchat.notebook.config import NbChat, SecretUnicode, _backend_traits
from nbchat.notebook.parsing import user_errors

from sse_server import answer, json_reply

ECHO_KEY = "echo-key-0123456789abcdef0123456789"
ECHO = BackendInfo(
    "echo", "Echo server", "nbchat.backends.openai_compat:OpenAICompatBackend",
    "base_url", "NBCHAT_BASE_URL", "http://127.0.0.1:8080",
    key_setting="echo_api_key", key_variable="ECHO_API_KEY", default_model="echo-1",
    models_url="https://echo.example/models",
)


@dataclass(frozen=True)
class EchoSettings(Settings):
    echo_api_key: str | None = None


@pytest.fixture
def echo_entry(monkeypatch):
    monkeypatch.setitem(BACKEND_INFO, "echo", ECHO)
    monkeypatch.delenv("ECHO_API_KEY", raising=False)
    return ECHO


def test_one_entry_gives_the_registry_its_class_model_and_label(echo_entry, server):
    server.add(answer("echoed"))
    settings = EchoSettings(backend="echo", base_url=server.url, echo_api_key=ECHO_KEY)
    backend = get_backend(settings)
    try:
        assert type(backend) is OpenAICompatBackend
        assert backend.default_model == "echo-1"
        described = backend.describe()
        assert (described.name, described.label, described.model) == ("echo", "Echo server", "echo-1")
        list(backend.stream([{"role": "user", "content": "hi"}]))
    finally:
        backend.close()
    request = server.chat_requests[0]
    assert request.json["model"] == "echo-1"
    assert request.headers["authorization"] == f"Bearer {ECHO_KEY}"


def test_one_entry_gives_key_lookup_and_redaction(echo_entry, monkeypatch):
    assert key_variables()["echo_api_key"] == "ECHO_API_KEY"
    assert env_variables()["echo_api_key"] == "ECHO_API_KEY"
    monkeypatch.setenv("ECHO_API_KEY", ECHO_KEY)
    settings = EchoSettings(backend="echo")
    assert settings.backend_key == ECHO_KEY
    assert ECHO_KEY in settings.secrets
    from IPython.core.error import UsageError

    with pytest.raises(UsageError) as raised:
        with user_errors(*settings.secrets):
            raise BackendError(f"the server echoed {ECHO_KEY} back", "generic")
    assert ECHO_KEY not in str(raised.value) and "[redacted]" in str(raised.value)


def test_one_entry_gives_error_hints_naming_its_key(echo_entry, server):
    server.add(json_reply(401, {"error": {"message": f"bad key {ECHO_KEY}", "code": 401}}))
    settings = EchoSettings(backend="echo", base_url=server.url, echo_api_key=ECHO_KEY)
    backend = get_backend(settings)
    try:
        with pytest.raises(BackendError) as caught:
            list(backend.stream([{"role": "user", "content": "hi"}]))
    finally:
        backend.close()
    message = str(caught.value)
    assert caught.value.kind == "auth"
    assert "ECHO_API_KEY or c.NbChat.echo_api_key" in message
    assert ECHO_KEY not in message


def test_one_entry_gives_its_config_traits(echo_entry):
    traits = _backend_traits()
    key_trait = traits["echo_api_key"]
    assert isinstance(key_trait, SecretUnicode)
    assert "Echo server" in key_trait.help and "ECHO_API_KEY" in key_trait.help
    assert "Echo server" in traits["base_url"].help  # the URL setting it shares
    config = NbChat()
    config.backend = "echo"  # the backend trait accepts every entry, live
    assert config.backend == "echo"
