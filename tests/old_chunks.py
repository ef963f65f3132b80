"""Chunk indexes as older schemas held them (a copy of each chunk's text), for upgrade
and disk-size tests: a SQLite database built by migrations m001-m004, and the rows and
ranking queries of that time, written as that code wrote them."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nbchat.core import migrations
from nbchat.core.store import ChunkRow

M004_STEPS = 4  # SQLite: m001-m004, the chunk index with its text column
M005_STEPS = 5  # PostgreSQL: m001-m005, likewise


def sqlite_at_m004(path: Path) -> sqlite3.Connection:
    """A new SQLite database at ``path`` with the schema as m004 left it (autocommit)."""
    db = sqlite3.connect(path, isolation_level=None)
    today = migrations.MIGRATIONS
    migrations.MIGRATIONS = today[:M004_STEPS]  # the list of an nbchat of that time
    try:
        migrations.migrate(db)
    finally:
        migrations.MIGRATIONS = today
    assert migrations.schema_version(db) == M004_STEPS
    return db


def put_m004_chunks(
    db: Any, sha256: str, version: str, text: str | None, chunks: Sequence[ChunkRow],
    *, placeholder: str = "?",
) -> None:
    """The extraction (unless ``text`` is None) and its chunks, each with its text, as
    the m004 (SQLite) / m005 (PostgreSQL) code stored them."""
    marks = ", ".join([placeholder] * 7)
    if text is not None:
        db.execute(
            "INSERT INTO extracts (sha256, extractor_version, kind, text, notes) "
            f"VALUES ({', '.join([placeholder] * 5)})",
            (sha256, version, "text", text, json.dumps([])),
        )
    for c in chunks:
        db.execute(
            "INSERT INTO file_chunks (sha256, extractor_version, idx, start, stop, label, text) "
            f"VALUES ({marks})",
            (sha256, version, c.index, c.start, c.end, c.label, c.text),
        )


def m004_ranking(
    db: sqlite3.Connection, sha256: str, version: str, terms: Sequence[str], limit: int
) -> list[tuple[int, float]]:
    """``rank_chunks`` as the m004 code ran it (FTS5 over the text column)."""
    match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
    rows = db.execute(
        "SELECT c.idx, bm25(file_chunks_fts) AS rank FROM file_chunks_fts "
        "JOIN file_chunks c ON c.id = file_chunks_fts.rowid "
        "WHERE file_chunks_fts MATCH ? AND c.sha256 = ? AND c.extractor_version = ? "
        "ORDER BY rank, c.idx LIMIT ?",
        (match, sha256, version, limit),
    ).fetchall()
    return [(int(r[0]), -float(r[1])) for r in rows]


def m005_pg_ranking(
    db: Any, sha256: str, version: str, terms: Sequence[str], limit: int
) -> list[tuple[int, float]]:
    """``rank_chunks`` as the PostgreSQL m005 code ran it, on a user's connection."""
    words = [w for w in ("".join(ch for ch in t if ch.isalnum()) for t in terms) if w]
    rows = db.execute(
        "SELECT idx, ts_rank(words, q) AS rank "
        "FROM file_chunks, to_tsquery('english', %s) AS q "
        "WHERE owner = current_user AND sha256 = %s AND extractor_version = %s "
        "AND words @@ q ORDER BY rank DESC, idx LIMIT %s",
        (" | ".join(words), sha256, version, limit),
    ).fetchall()
    return [(int(r[0]), float(r[1])) for r in rows]


def used_bytes(path: Path) -> int:
    """The bytes of the database's pages in use (pages freed by a drop are not)."""
    db = sqlite3.connect(path)
    try:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages, free, size = (
            db.execute(f"PRAGMA {p}").fetchone()[0]
            for p in ("page_count", "freelist_count", "page_size")
        )
        return (pages - free) * size
    finally:
        db.close()
