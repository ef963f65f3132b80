"""A writer killed with SIGKILL while storing a turn leaves a sound database.

The writer is a separate process attaching a new file to every turn, so a turn's
first transaction writes a session update, the question, its attachment record and
the extraction caches; the second writes the answer. After each kill the database
must pass ``PRAGMA integrity_check`` (on PostgreSQL: valid indexes) and hold no half of
a transaction, on either store. A question
without its answer is allowed: it is the user's stored question, and the next turn
carries on without it in the prompt.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import nbchat
from dbcheck import half_written_turns, integrity, row_counts, rows, seq_problems

WRITER = Path(__file__).with_name("turn_writer.py")
KILLS = 12


def _writer(db_path: Path | str, url: str, files: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WRITER), "--db", str(db_path), "--url", url, "--turns", "0",
         "--title", "crashy", "--files", str(files), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _kill(process: subprocess.Popen[str]) -> str:
    os.kill(process.pid, signal.SIGKILL)
    out, _ = process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL
    return out


def _wait_for(path: Path, process: subprocess.Popen[str], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if process.poll() is not None:
            pytest.fail(f"the writer exited early: {process.stderr.read() if process.stderr else ''}")
        assert time.monotonic() < deadline, "the writer never reached the pause"
        time.sleep(0.01)


def _assert_sound(db_path: Path | str) -> None:
    assert integrity(db_path) == "ok"
    assert half_written_turns(db_path, files_per_question=1) == []
    assert seq_problems(db_path) == []


def test_killing_a_writer_at_random_moments_never_leaves_half_a_turn(fast_server, db_path, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    chooser = random.Random(20240611)
    stored_turns = 0
    for _ in range(KILLS):
        writer = _writer(db_path, fast_server.url, files)
        assert writer.stdout is not None
        first = writer.stdout.readline()  # it is writing turns now
        time.sleep(chooser.uniform(0.0, 0.5))
        lines = [json.loads(line) for line in (first + _kill(writer)).splitlines()]
        assert [line["error"] for line in lines if "error" in line] == []
        stored_turns += len(lines)
        _assert_sound(db_path)
    counts = row_counts(db_path)
    assert stored_turns >= KILLS  # each kill landed among stored turns
    roles = dict(rows(db_path, "SELECT role, COUNT(*) FROM messages GROUP BY role"))
    complete = rows(
        db_path, "SELECT COUNT(*) FROM messages WHERE role = 'assistant' AND status = 'complete'"
    )[0][0]
    # Every turn a writer reported is stored, and each question has its one file record.
    assert complete >= stored_turns
    assert roles["user"] - roles["assistant"] <= KILLS  # at most one open question per kill
    assert counts["attachments"] == roles["user"]


@pytest.mark.parametrize("where", ["question", "answer"])
def test_a_writer_killed_inside_a_transaction_leaves_none_of_it(where, fast_server, db_path, tmp_path):
    files = tmp_path / "files"
    files.mkdir()
    notes = files / "before.txt"
    notes.write_text(f"Notes from before the crash ({where}).", encoding="utf-8")
    first = nbchat.chat("Before the crash: keep this.", [str(notes)], base_url=fast_server.url,
                        session="crashy")
    before = row_counts(db_path)
    nbchat.api.default_client().close()
    marker = tmp_path / "paused"
    writer = _writer(db_path, fast_server.url, files, "--pause-in", where, "--marker", str(marker))
    _wait_for(marker, writer)
    _kill(writer)
    _assert_sound(db_path)
    after = row_counts(db_path)
    if where == "question":
        # The question, its attachment and the caches were rolled back together.
        assert after == before
    else:
        # The question's transaction committed; the answer's did not.
        assert after["messages"] == before["messages"] + 1
        assert after["attachments"] == before["attachments"] + 1
    # The conversation carries on: the next turn works and sees the earlier turn.
    nbchat.api._DEFAULT = None
    notes.write_text(f"Notes from after the crash ({where}).", encoding="utf-8")
    result = nbchat.chat("After the crash: still there?", [str(notes)], base_url=fast_server.url,
                         session="crashy")
    assert result.status == "complete" and result.session_id == first.session_id
    sent = fast_server.chat_requests[-1].json["messages"]
    assert sent[1]["content"].endswith("Before the crash: keep this.")
    assert sent[-1]["content"].endswith("After the crash: still there?")
    assert f"Notes from after the crash ({where})." in sent[-1]["content"]
    _assert_sound(db_path)


def test_a_file_attached_in_two_databases_has_its_text_cached_in_both(fast_server, tmp_path,
                                                                       monkeypatch):
    """One process, two databases (two notebooks' settings, or a moved NBCHAT_DB): each
    database must hold the extracted text of the files its turns recorded, or a later
    process that finds the file gone cannot re-include it."""
    notes = tmp_path / "shared-notes.txt"
    notes.write_text(f"Shared notes {tmp_path.name}.", encoding="utf-8")
    for name in ("first.sqlite", "second.sqlite"):
        path = tmp_path / name
        monkeypatch.setenv("NBCHAT_DB", str(path))
        nbchat.api._DEFAULT = None
        result = nbchat.chat("Read the notes.", [str(notes)], base_url=fast_server.url)
        assert result.status == "complete"
        nbchat.api.default_client().close()
        assert half_written_turns(path, files_per_question=1) == [], name


def test_a_file_tried_in_a_dry_run_first_is_still_cached_by_the_real_turn(fast_server, db_path,
                                                                          tmp_path):
    """``--dry-run`` keeps what it extracted in memory only; the turn sent afterwards
    must still write it to the database with its attachment record."""
    notes = tmp_path / "dry-notes.txt"
    notes.write_text(f"Dry-run notes {tmp_path.name}.", encoding="utf-8")
    nbchat.dry_run("Read the notes.", [str(notes)], base_url=fast_server.url)
    result = nbchat.chat("Read the notes.", [str(notes)], base_url=fast_server.url)
    assert result.status == "complete"
    assert half_written_turns(db_path, files_per_question=1) == []
