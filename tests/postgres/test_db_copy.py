"""`nbchat db copy SRC DST`: a user's history from SQLite into the team store and back."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

from dbstate import database_state
from nbchat.core.extractors.record import Extracted
from nbchat.core.storage import open_store
from nbchat.core.store import MessageVector


def run_nbchat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbchat", *args], capture_output=True, text=True, timeout=300
    )


def fill(location: Any) -> dict[str, Any]:
    """A history with every kind of row; returns what to expect after a copy."""
    with open_store(location) as store:
        first = store.create_session(title="Soil survey", notebook="field.ipynb")
        fork = store.create_session(title="Soil survey (fork)", parent_id=first.id)
        with store.transaction() as db:
            q = store.add_message(db, session_id=first.id, role="user", content="Which plot?",
                                  rendered="Which plot? [file]")
            a = store.add_message(db, session_id=first.id, role="assistant",
                                  content="Plot B is more acidic.", rendered="Plot B",
                                  status="partial", error_kind="interrupted", tokens=7)
            store.add_message(db, session_id=fork.id, role="user", content="And plot C?",
                              rendered="And plot C?")
            store.record_attachment(db, session_id=first.id, message_id=q.id, kind="path",
                                    name="plots.csv", path="/data/plots.csv", sha256="c" * 64,
                                    total_tokens=40, kept_tokens=40)
            store.set_history(db, first.id, start_seq=0, carried_files="plots.csv",
                              compacted=True)
            store.put_extract(db, "c" * 64, "v9", Extracted("plot,ph", "csv", ("note",)))
            store.put_path_hash(db, "/data/plots.csv", 12, 34, "c" * 64)
            store.put_token_count(db, "c" * 64, "tk", 5)
            store.add_vectors(db, [MessageVector(a.id, "emb", 0, [0.5, 0.25, 0.0])])
        data = b"plot,ph\nB,5.1\n"
        store.add_file("plots.csv", data, sha256=hashlib.sha256(data).hexdigest(),
                       mime="text/csv")
    return {"sessions": {first.id, fork.id}, "first": first.id}


def describe(location: Any) -> dict[str, Any]:
    """The history as the protocol reads it, ids left out (each store numbers its own)."""
    with open_store(location) as store:
        sessions = sorted(store.list_sessions(limit=100), key=lambda s: s.id)
        out: dict[str, Any] = {"sessions": [
            (s.id, s.title, s.notebook, s.parent_id, s.carried_files, s.compactions,
             round(s.created, 3)) for s in sessions
        ]}
        for s in sessions:
            out[s.id] = [
                (m.seq, m.role, m.content, m.rendered, m.status, m.error_kind, m.tokens,
                 round(m.created, 3)) for m in store.messages(s.id)
            ]
            out[s.id + "/files"] = [
                (r.name, r.kind, r.sha256, r.message_seq, r.kept_tokens)
                for r in store.attachments(s.id, include_forgotten=True)
            ]
        out["stored"] = [(f.name, f.sha256) for f in store.list_files()]
        out["bytes"] = [store.file_bytes(f.id) for f in store.list_files()]
        out["extract"] = store.cached_extract("c" * 64, "v9")
        out["path"] = store.cached_path_hash("/data/plots.csv", 12, 34)
        out["tokens"] = store.cached_token_count("c" * 64, "tk")
        out["vectors"] = store.count_vectors("emb")
        return out


def test_db_copy_takes_a_sqlite_history_into_the_team_store_and_back(
    tmp_path: Path, pg_cluster: Any, pg_database: str
) -> None:
    source = tmp_path / "mine.sqlite"
    fill(source)
    expected = describe(source)
    before = database_state(open_store(source))
    url = pg_cluster.url("alice", pg_database)

    done = run_nbchat("db", "copy", str(source), url)
    assert done.returncode == 0, done.stderr
    assert "2/2 sessions" in done.stderr and "2 session(s) (2 new)" in done.stderr
    assert describe(url) == expected
    assert database_state(open_store(source)) == before  # the source is only read

    again = run_nbchat("db", "copy", str(source), url)
    assert again.returncode == 0, again.stderr
    assert "(0 new)" in again.stderr
    assert describe(url) == expected  # nothing twice

    back = tmp_path / "back.sqlite"
    assert run_nbchat("db", "copy", url, str(back)).returncode == 0
    assert describe(back) == expected
