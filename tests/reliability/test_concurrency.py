"""Two processes write 200 turns each into one database at the same time.

Each process is a separate Python interpreter using the public API (``nbchat.chat``),
as two kernels would, on each store. The server answers at once, so the two writers spend most of
their time in the database and collide on its write lock all along.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from nbchat.core.sqlite_store import SqliteStore as Store
from dbcheck import half_written_turns, integrity, rows, seq_problems

WRITER = Path(__file__).with_name("turn_writer.py")
TURNS = 200


def test_two_processes_writing_200_turns_each_lose_nothing(fast_server, db_path, tmp_path):
    ready = tmp_path / "ready"  # both start writing once both are ready
    ready.mkdir()
    writers = [
        subprocess.Popen(
            [sys.executable, str(WRITER), "--db", str(db_path), "--url", fast_server.url,
             "--turns", str(TURNS), "--title", title, "--ready-dir", str(ready), "--peers", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for title in ("kernel-A", "kernel-B")
    ]
    outputs = []
    for writer in writers:
        try:
            outputs.append(writer.communicate(timeout=120))
        except subprocess.TimeoutExpired:
            for each in writers:
                each.kill()
            raise AssertionError(f"a writer hung: {[w.communicate() for w in writers]}") from None
    for writer, (out, err) in zip(writers, outputs):
        assert writer.returncode == 0, err
        assert "locked" not in out + err and "Traceback" not in err, out[-2000:] + err[-2000:]
        lines = [json.loads(line) for line in out.splitlines()]
        assert [line.get("error") for line in lines if "error" in line] == []
        assert [line["turn"] for line in lines] == list(range(TURNS))
        assert {line["status"] for line in lines} == {"complete"}
    # Both really ran at the same time: their turns interleave in the database.
    order = [title for (title,) in rows(
        db_path, "SELECT s.title FROM messages m JOIN sessions s ON s.id = m.session_id ORDER BY m.id"
    )]
    switches = sum(a != b for a, b in zip(order, order[1:]))
    assert switches > 20, f"the writers hardly overlapped ({switches} switches)"
    for title in ("kernel-A", "kernel-B"):
        stored = rows(
            db_path, "SELECT m.seq, m.role, m.content, m.status FROM messages m "
            "JOIN sessions s ON s.id = m.session_id WHERE s.title = ? ORDER BY m.seq", (title,)
        )
        assert len(stored) == 2 * TURNS
        questions = [content for _, role, content, _ in stored if role == "user"]
        answers = [content for _, role, content, _ in stored if role == "assistant"]
        expected = [f"{title} turn {i}: what is {i} + {i}?" for i in range(TURNS)]
        assert questions == expected
        assert all(a.startswith("Echo: ") for a in answers) and len(answers) == TURNS
        assert {status for *_, status in stored} == {"complete"}
    assert seq_problems(db_path) == []
    assert half_written_turns(db_path) == []
    assert integrity(db_path) == "ok"


def test_opening_the_database_while_another_connection_writes_waits_instead_of_failing(sqlite_path):
    """Two kernels creating the database at the same moment both switch it to WAL. When
    one holds a write lock while the other asks for one, SQLite answers "database is
    locked" at once, without the busy timeout (each would wait for the other). A plain
    connection in the middle of a write on the not-yet-WAL file makes that moment
    certain; opening must wait for it like for any other lock."""
    db_path = sqlite_path
    other = sqlite3.connect(db_path, isolation_level=None, check_same_thread=False)
    other.execute("CREATE TABLE scratch (x)")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO scratch VALUES (1)")
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    try:
        with Store(db_path) as store:
            db = store.connection
            assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert db.execute("SELECT COUNT(*) FROM scratch").fetchone()[0] == 1
            assert store.list_sessions() == []
    finally:
        release.join()
        other.close()
