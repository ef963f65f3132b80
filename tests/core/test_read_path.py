"""Reading attached paths from disk: bytes back, or an error a person can act on."""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import pytest

from nbchat.core.errors import AttachmentError
from nbchat.core.extract import read_path, stat_key
from filegen import make_text

LIMIT_BYTES = 50 * 1024 * 1024
_CLASS_NAME = re.compile(r"\b[A-Z]\w*(Error|Exception|Warning)\b")


def assert_actionable(error: AttachmentError, name: str) -> None:
    """The message names the file, says what to do, and reads as prose, not a trace."""
    message = str(error)
    assert error.name == name
    assert message.startswith(f"{name}: ")
    assert error.problem and error.fix
    assert "Traceback" not in message
    assert "Errno" not in message
    assert not _CLASS_NAME.search(message), message


def test_read_path_returns_the_bytes_of_the_file(tmp_path: Path) -> None:
    path = make_text(tmp_path, "notes.txt", "line one\nline two\n")
    assert read_path(path, max_file_bytes=LIMIT_BYTES) == b"line one\nline two\n"


def test_read_path_accepts_a_string_and_reports_the_path_as_given(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere" / "report.pdf")
    with pytest.raises(AttachmentError) as caught:
        read_path(missing, max_file_bytes=LIMIT_BYTES)
    assert caught.value.name == missing


def test_missing_file_mentions_cloud_placeholders_and_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(AttachmentError) as caught:
        read_path("data/missing.csv", max_file_bytes=LIMIT_BYTES)
    error = caught.value
    assert_actionable(error, "data/missing.csv")
    assert "not found" in error.problem
    assert "OneDrive" in error.fix and "download" in error.fix
    assert str(tmp_path) in error.fix


def test_path_through_a_file_is_reported_as_not_found(tmp_path: Path) -> None:
    make_text(tmp_path, "plain.txt", "x")
    name = str(tmp_path / "plain.txt" / "inner.txt")
    with pytest.raises(AttachmentError) as caught:
        read_path(name, max_file_bytes=LIMIT_BYTES)
    assert_actionable(caught.value, name)
    assert "not found" in caught.value.problem


def test_undownloaded_icloud_file_is_named_as_such(tmp_path: Path) -> None:
    make_text(tmp_path, ".thesis.docx.icloud", "placeholder")
    name = str(tmp_path / "thesis.docx")
    with pytest.raises(AttachmentError) as caught:
        read_path(name, max_file_bytes=LIMIT_BYTES)
    assert_actionable(caught.value, name)
    assert "iCloud" in caught.value.problem
    assert "Download" in caught.value.fix


def test_directory_suggests_attaching_the_files_inside_with_a_glob(tmp_path: Path) -> None:
    folder = tmp_path / "reports"
    folder.mkdir()
    with pytest.raises(AttachmentError) as caught:
        read_path(folder, max_file_bytes=LIMIT_BYTES)
    assert_actionable(caught.value, str(folder))
    assert "directory" in caught.value.problem
    assert f"{folder}/*" in caught.value.fix


def test_named_pipe_is_refused_instead_of_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "stream"
    os.mkfifo(fifo)
    with pytest.raises(AttachmentError) as caught:
        read_path(fifo, max_file_bytes=LIMIT_BYTES)
    assert_actionable(caught.value, str(fifo))
    assert "not a regular file" in caught.value.problem


def _message_as_another_user(path: Path) -> str:
    """Run ``read_path`` in a child process that dropped root to ``nobody``.

    Root reads any file whatever its mode, so the permission check needs a user the
    mode applies to; the child reports the message (or what went wrong) through a pipe.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                read_path(path, max_file_bytes=LIMIT_BYTES)
                message = "READ WITHOUT ERROR"
            except AttachmentError as error:
                message = f"{error.name}\n{error.problem}\n{error.fix}"
            except BaseException as error:  # reported to the parent, which fails
                message = f"UNEXPECTED {type(error).__name__}: {error}"
            os.write(write_end, message.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 65536):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def test_unreadable_file_is_reported_as_permission_denied() -> None:
    # Outside pytest's private tmp dir, so that another user can reach the folder.
    with tempfile.TemporaryDirectory(prefix="nbchat-perm-") as folder:
        os.chmod(folder, 0o755)
        secret = make_text(folder, "salaries.csv", "name,salary\n")
        secret.chmod(0)
        if os.geteuid() == 0:
            name, problem, fix = _message_as_another_user(secret).split("\n", 2)
        else:
            with pytest.raises(AttachmentError) as caught:
                read_path(secret, max_file_bytes=LIMIT_BYTES)
            assert_actionable(caught.value, str(secret))
            name, problem, fix = caught.value.name, caught.value.problem, caught.value.fix
    assert name == str(secret)
    assert problem.startswith("permission denied")
    assert "readable" in fix
    assert "Traceback" not in problem + fix


def test_file_over_the_limit_gives_size_limit_and_setting(tmp_path: Path) -> None:
    path = make_text(tmp_path, "big.log", "x" * (3 * 1024 * 1024))
    with pytest.raises(AttachmentError) as caught:
        read_path(path, max_file_bytes=2 * 1024 * 1024)
    error = caught.value
    assert_actionable(error, str(path))
    assert "is 3 MB, over the limit of 2 MB" in error.problem
    assert "c.NbChat.max_file_bytes" in error.fix


def test_tiny_limit_still_reads_as_megabytes_not_zero(tmp_path: Path) -> None:
    path = make_text(tmp_path, "small.txt", "twelve bytes")
    with pytest.raises(AttachmentError) as caught:
        read_path(path, max_file_bytes=5)
    assert "<0.01 MB" in caught.value.problem
    assert " 0 MB" not in caught.value.problem


def test_file_of_exactly_the_limit_is_read(tmp_path: Path) -> None:
    path = make_text(tmp_path, "exact.txt", "y" * 1000)
    assert len(read_path(path, max_file_bytes=1000)) == 1000


def test_home_directory_shorthand_is_expanded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    make_text(tmp_path, "todo.md", "# Todo\n")
    assert read_path("~/todo.md", max_file_bytes=LIMIT_BYTES) == b"# Todo\n"


def test_stat_key_is_absolute_path_size_and_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    path = make_text(tmp_path, "data.csv", "a,b\n1,2\n")
    os.utime(path, ns=(1_700_000_000_000_000_000, 1_700_000_000_123_456_789))
    assert stat_key("data.csv") == (str(path), 8, 1_700_000_000_123_456_789)


def test_stat_key_changes_when_the_file_is_rewritten(tmp_path: Path) -> None:
    path = make_text(tmp_path, "data.csv", "a,b\n1,2\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    before = stat_key(path)
    path.write_text("a,b\n1,3\n")
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    after = stat_key(path)
    assert before[:2] == after[:2]
    assert before[2] != after[2]


def test_stat_key_raises_the_same_errors_as_read_path(tmp_path: Path) -> None:
    with pytest.raises(AttachmentError) as missing:
        stat_key(tmp_path / "gone.txt")
    assert "not found" in missing.value.problem
    with pytest.raises(AttachmentError) as folder:
        stat_key(tmp_path)
    assert "directory" in folder.value.problem
