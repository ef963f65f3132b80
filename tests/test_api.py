"""The Python API (``nbchat.chat``, ``iter_chat``, ``dry_run``) against a scripted server."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

import nbchat
import nbchat.api
from nbchat.core.errors import ConfigError
from sse_server import FAKE_OPENROUTER_KEY, ScriptedServer, answer, echo_answer


@pytest.fixture(autouse=True)
def _fresh_api(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A new default client per test, without any developer setting; closed after."""
    for name in ("NBCHAT_BACKEND", "NBCHAT_MODEL", "NBCHAT_BASE_URL", "NBCHAT_OPENROUTER_URL",
                 "NBCHAT_EMBEDDING_URL", "NBCHAT_OPENAI_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(nbchat.api, "_DEFAULT", None)
    monkeypatch.setattr(nbchat.api, "_BY_DATABASE", {}, raising=False)
    yield
    clients = [nbchat.api._DEFAULT, *getattr(nbchat.api, "_BY_DATABASE", {}).values()]
    for client in clients:
        if client is not None:
            client.close()


@pytest.fixture
def server() -> Iterator[ScriptedServer]:
    with ScriptedServer(default=echo_answer) as running:
        yield running


def _where(backend: str, server: ScriptedServer) -> dict[str, str]:
    """The keywords that send ``backend``'s requests to the scripted server."""
    if backend == "openrouter":
        return {"backend": backend, "openrouter_url": server.url + "/api/v1",
                "api_key": FAKE_OPENROUTER_KEY}
    suffix = "/v1" if backend == "openai" else ""
    return {"backend": backend, "base_url": server.url + suffix}


@pytest.mark.parametrize(
    ("backend", "default_model"),
    [("llama", None), ("openrouter", "openrouter/auto"), ("openai", None)],
)
def test_a_per_call_model_does_not_stick_to_later_calls(server, backend, default_model):
    where = _where(backend, server)
    first = nbchat.chat("first", model="picked/model-a", **where)
    second = nbchat.chat("second", **where)
    streamed = "".join(nbchat.iter_chat("third", **where))
    models = [r.json.get("model") for r in server.chat_requests]
    assert models == ["picked/model-a", default_model, default_model]
    assert (first.model, second.model) == ("picked/model-a", default_model)
    assert streamed == "Echo: third"


def test_the_api_key_of_the_call_wins_over_the_environment(server, monkeypatch):
    env_key = FAKE_OPENROUTER_KEY.replace("FAKE", "ENVK")
    call_key = FAKE_OPENROUTER_KEY.replace("FAKE", "CALL")
    monkeypatch.setenv("OPENROUTER_API_KEY", env_key)
    where = {"backend": "openrouter", "openrouter_url": server.url + "/api/v1"}
    first = nbchat.chat("with the call's key", api_key=call_key, **where)
    second = nbchat.chat("with the environment's key", **where)
    monkeypatch.setenv("NBCHAT_OPENAI_API_KEY", env_key)
    openai = {"backend": "openai", "base_url": server.url + "/v1"}
    third = nbchat.chat("openai, the call's key", openai_api_key=call_key, **openai)
    fourth = nbchat.chat("openai, the environment's key", **openai)
    sent = [r.headers.get("authorization") for r in server.chat_requests]
    assert sent == [f"Bearer {call_key}", f"Bearer {env_key}"] * 2
    shown = repr([first, second, third, fourth, nbchat.api.default_client().settings])
    assert call_key not in shown and env_key not in shown


def _turns_in(path: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT role, content FROM messages ORDER BY session_id, seq").fetchall()


def test_db_path_passed_to_chat_is_honoured(server, tmp_path, _private_database):
    other = tmp_path / "elsewhere.sqlite"
    where = _where("llama", server)
    nbchat.chat("Stored elsewhere?", db_path=str(other), **where)
    "".join(nbchat.iter_chat("Streamed elsewhere?", db_path=other, **where))
    prepared = nbchat.dry_run("Dry run elsewhere?", db_path=other, **where)
    assert [m["content"] for m in prepared.messages[1:]] == [
        "Stored elsewhere?", "Echo: Stored elsewhere?",
        "Streamed elsewhere?", "Echo: Streamed elsewhere?",
        "Dry run elsewhere?",
    ]
    nbchat.chat("In the usual database.", **where)
    assert _turns_in(other) == [
        ("user", "Stored elsewhere?"), ("assistant", "Echo: Stored elsewhere?"),
        ("user", "Streamed elsewhere?"), ("assistant", "Echo: Streamed elsewhere?"),
    ]
    assert _turns_in(_private_database) == [
        ("user", "In the usual database."), ("assistant", "Echo: In the usual database."),
    ]
    # The usual database's conversation does not carry the other one's turns.
    assert [m["content"] for m in server.chat_requests[-1].json["messages"][1:]] == [
        "In the usual database."
    ]


def test_a_pattern_in_the_files_list_attaches_its_matching_files_sorted(server, tmp_path):
    (tmp_path / "b.txt").write_text("Bravo text.")
    (tmp_path / "a.txt").write_text("Alpha text.")
    prepared = nbchat.dry_run("Read.", files=[str(tmp_path / "*.txt")], **_where("llama", server))
    assert [part.name for part in prepared.report.attachments] == ["a.txt", "b.txt"]


@pytest.mark.parametrize("temperature", [50.0, -1.0])
def test_a_temperature_outside_0_to_2_is_refused_before_anything_is_sent(server, temperature):
    with pytest.raises(ConfigError, match="temperature must be between 0 and 2"):
        nbchat.chat("Too hot?", temperature=temperature, **_where("llama", server))
    assert server.chat_requests == []


def test_a_client_refuses_a_turn_for_another_database(tmp_path):
    from nbchat.api import ChatClient
    from nbchat.core.settings import Settings

    client = ChatClient(Settings(db_path=tmp_path / "one.sqlite"))
    try:
        with pytest.raises(ConfigError, match="two.sqlite"):
            client.prepare("Hi?", settings=client.settings.replace(db_path=tmp_path / "two.sqlite"))
    finally:
        client.close()
    assert not (tmp_path / "two.sqlite").exists()
