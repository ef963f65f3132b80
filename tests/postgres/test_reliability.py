"""The team store under load and failure: many kernels, a restarted server.

A writer killed mid-turn is tested on both stores in tests/reliability/test_crash.py.

Writers are separate interpreters using the public API (``tests/reliability/turn_writer.py``),
connected as the same user, as a user's kernels on several JupyterHub machines would be.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import psycopg
import pytest

import nbchat
import nbchat.api
from nbchat.core.errors import StoreError
from sse_server import ScriptedServer, echo_answer

WRITER = Path(__file__).resolve().parents[1] / "reliability" / "turn_writer.py"
WRITERS = 8
TURNS = 100


@pytest.fixture
def alice_url(pg_cluster: Any, pg_database: str, monkeypatch: pytest.MonkeyPatch) -> str:
    url = pg_cluster.url("alice", pg_database)
    monkeypatch.setenv("NBCHAT_DB", url)
    for name in ("NBCHAT_BACKEND", "NBCHAT_MODEL", "NBCHAT_BASE_URL", "NBCHAT_EMBEDDING_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(nbchat.api, "_DEFAULT", None)
    yield url
    if nbchat.api._DEFAULT is not None:
        nbchat.api._DEFAULT.close()


@pytest.fixture
def fast_server() -> Any:
    with ScriptedServer(default=echo_answer) as server:
        yield server


def rows(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as db:
        db.execute("SET search_path TO nbchat, public")
        return db.execute(sql, params).fetchall()


def seq_problems(url: str) -> list[str]:
    """Sessions whose messages are not numbered exactly 0, 1, 2, ..."""
    found = rows(url, "SELECT session_id, array_agg(seq ORDER BY seq) FROM messages GROUP BY 1")
    return [f"{sid}: {seqs[:10]}..." for sid, seqs in found if seqs != list(range(len(seqs)))]


def writer(url: str, server_url: str, title: str, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), "--db", url, "--url", server_url, "--title", title,
         *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def test_eight_processes_writing_100_turns_each_lose_nothing(
    alice_url: str, fast_server: ScriptedServer, tmp_path: Path
) -> None:
    ready = tmp_path / "ready"
    ready.mkdir()
    titles = [f"kernel-{i}" for i in range(WRITERS)]
    writers = [
        writer(alice_url, fast_server.url, title, "--turns", str(TURNS),
               "--ready-dir", str(ready), "--peers", str(WRITERS))
        for title in titles
    ]
    outputs = []
    try:
        for each in writers:
            outputs.append(each.communicate(timeout=600))
    finally:
        for each in writers:
            if each.poll() is None:
                each.kill()
                each.communicate()
    for each, (out, err) in zip(writers, outputs):
        assert each.returncode == 0, err[-3000:]
        lines = [json.loads(line) for line in out.splitlines()]
        assert [line.get("error") for line in lines if "error" in line] == []
        assert [line["turn"] for line in lines] == list(range(TURNS))
    for title in titles:
        stored = rows(alice_url, (
            "SELECT m.role, m.content, m.status FROM messages m JOIN sessions s "
            "ON s.id = m.session_id WHERE s.title = %s ORDER BY m.seq"
        ), (title,))
        assert len(stored) == 2 * TURNS, title
        questions = [content for role, content, _ in stored if role == "user"]
        assert questions == [f"{title} turn {i}: what is {i} + {i}?" for i in range(TURNS)]
        assert {status for *_, status in stored} == {"complete"}
    order = [r[0] for r in rows(alice_url, (
        "SELECT s.title FROM messages m JOIN sessions s ON s.id = m.session_id ORDER BY m.id"
    ))]
    assert sum(a != b for a, b in zip(order, order[1:])) > 50, "the writers hardly overlapped"
    assert seq_problems(alice_url) == []


def test_a_server_restarted_mid_turn_gives_a_clear_error_and_the_next_turn_works(
    pg_cluster: Any, alice_url: str
) -> None:
    def restart_then_answer(request: Any) -> Any:
        if "restart now" in json.dumps(request.json):
            pg_cluster.restart()  # the kernel's connection dies while the answer streams
        return echo_answer(request)

    with ScriptedServer(default=restart_then_answer) as server:
        first = nbchat.chat("Before the restart.", base_url=server.url, session="restarted")
        with pytest.raises(StoreError) as caught:
            nbchat.chat("Please restart now.", base_url=server.url, session="restarted")
        text = str(caught.value)
        assert "PostgreSQL server" in text and "not stored" in text
        assert "Traceback" not in text
        after = nbchat.chat("After the restart.", base_url=server.url, session="restarted")
    assert after.status == "complete" and after.session_id == first.session_id
    stored = rows(alice_url, "SELECT role, content FROM messages ORDER BY seq")
    assert stored[0] == ("user", "Before the restart.")
    assert stored[-1] == ("assistant", "Echo: After the restart.")
    assert seq_problems(alice_url) == []


def test_an_unreachable_server_stores_nothing_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fast_server: ScriptedServer
) -> None:
    url = f"postgresql://alice:pw@/nbchat?host={tmp_path}"
    monkeypatch.setattr(nbchat.api, "_DEFAULT", None)
    with pytest.raises(StoreError) as caught:
        nbchat.chat("Is anyone there?", base_url=fast_server.url, db_path=url)
    text = str(caught.value)
    assert "Cannot reach the PostgreSQL server" in text and "pw" not in text.replace("postgresql", "")
    assert fast_server.chat_requests == []  # the question was not sent either


def test_commits_are_not_flushed_one_by_one_unless_the_url_asks(
    pg_cluster: Any, pg_database: str
) -> None:
    """SQLite's durability (docs/team.md, "Durability"), and the team's way out of it."""
    from nbchat.core.postgres_store import PostgresStore

    url = pg_cluster.url("alice", pg_database)
    with PostgresStore(url) as store:
        assert store._query("SHOW synchronous_commit") == [("off",)]
        assert store._query("SHOW search_path")[0][0].startswith("nbchat")
    with PostgresStore(url + "&options=-csynchronous_commit%3Don") as store:
        assert store._query("SHOW synchronous_commit") == [("on",)]
