"""Schema migrations: an append-only list of small functions, run in order.

The database's ``PRAGMA user_version`` is the number of migrations applied. Each step
runs with its version bump in one transaction. Never edit or reorder a step that has
shipped; add a new one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from nbchat.core.errors import StoreError

__all__ = ["MIGRATIONS", "migrate", "schema_version"]


def m001_core(db: sqlite3.Connection) -> None:
    """Sessions, messages, stored files, attachments and the caches."""
    db.executescript(
        """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            notebook TEXT,
            system_prompt TEXT NOT NULL DEFAULT '',
            model TEXT,
            backend TEXT,
            parent_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
            history_start_seq INTEGER NOT NULL DEFAULT 0,
            carried_files TEXT NOT NULL DEFAULT '',
            compactions INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL,
            updated REAL NOT NULL
        );
        CREATE INDEX sessions_notebook ON sessions(notebook, updated);

        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content TEXT NOT NULL,
            rendered TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'complete'
                CHECK (status IN ('complete', 'partial', 'error')),
            error_kind TEXT,
            error_message TEXT,
            importance REAL NOT NULL DEFAULT 0.5,
            tokens INTEGER,
            usage TEXT,
            timings TEXT,
            model TEXT,
            created REAL NOT NULL,
            UNIQUE (session_id, seq)
        );

        CREATE TABLE files (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            data BLOB NOT NULL,
            sha256 TEXT NOT NULL,
            size_bytes INTEGER NOT NULL,
            mime TEXT NOT NULL DEFAULT 'application/octet-stream',
            created REAL NOT NULL
        );

        CREATE TABLE attachments (
            id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            message_id INTEGER REFERENCES messages(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            path TEXT,
            sha256 TEXT NOT NULL,
            fingerprint TEXT,
            total_tokens INTEGER,
            kept_tokens INTEGER,
            forgotten INTEGER NOT NULL DEFAULT 0,
            created REAL NOT NULL,
            UNIQUE (session_id, kind, name, sha256)
        );

        CREATE TABLE extracts (
            sha256 TEXT NOT NULL,
            extractor_version TEXT NOT NULL,
            kind TEXT NOT NULL,
            text TEXT NOT NULL,
            notes TEXT NOT NULL DEFAULT '[]',
            PRIMARY KEY (sha256, extractor_version)
        );

        CREATE TABLE path_hashes (
            path TEXT PRIMARY KEY,
            size_bytes INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            sha256 TEXT NOT NULL
        );

        CREATE TABLE token_counts (
            sha256 TEXT NOT NULL,
            tokenizer TEXT NOT NULL,
            tokens INTEGER NOT NULL,
            PRIMARY KEY (sha256, tokenizer)
        );
        """
    )


def m002_memory(db: sqlite3.Connection) -> None:
    """Full-text index over message text, and stored message embeddings.

    ``messages_fts`` is an external-content FTS5 index kept in step by triggers; it is
    created only when this SQLite has FTS5 (search then falls back to plain matching).
    ``embeddings`` holds one float32 vector per (message, model, chunk); its ids only
    grow, so a reader can load new vectors incrementally by id. Messages get an index
    on their time, for searches limited to "yesterday" or "last week".
    """
    if _has_fts5(db):
        db.executescript(
            """
            CREATE VIRTUAL TABLE messages_fts USING fts5(
                content, content='messages', content_rowid='id',
                tokenize='porter unicode61'
            );
            CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN
                INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
            END;
            CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN
                INSERT INTO messages_fts(messages_fts, rowid, content)
                VALUES ('delete', old.id, old.content);
            END;
            CREATE TRIGGER messages_fts_update AFTER UPDATE OF content ON messages BEGIN
                INSERT INTO messages_fts(messages_fts, rowid, content)
                VALUES ('delete', old.id, old.content);
                INSERT INTO messages_fts(rowid, content) VALUES (new.id, new.content);
            END;
            INSERT INTO messages_fts(messages_fts) VALUES ('rebuild');
            """
        )
    db.executescript(
        """
        CREATE TABLE embeddings (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            chunk INTEGER NOT NULL,
            dim INTEGER NOT NULL,
            vector BLOB NOT NULL,
            created REAL NOT NULL,
            UNIQUE (message_id, model, chunk)
        );
        CREATE INDEX embeddings_model ON embeddings(model, id);
        CREATE INDEX messages_created ON messages(created);
        """
    )


def m003_extract_sections(db: sqlite3.Connection) -> None:
    """Where each page, sheet, slide or cell sits in a cached extraction's text.

    One row per cached extraction that has sections: a JSON list of
    ``[unit, number, start, end, label]``. A table of its own, so ``extracts`` keeps
    its rows and columns as they were; an extraction without a row has no sections.
    """
    db.executescript(
        """
        CREATE TABLE extract_sections (
            sha256 TEXT NOT NULL,
            extractor_version TEXT NOT NULL,
            sections TEXT NOT NULL,
            PRIMARY KEY (sha256, extractor_version)
        );
        """
    )


def m004_file_chunks(db: sqlite3.Connection) -> None:
    """Large files' chunks, indexed for word search, and which chunks each message sent.

    ``file_chunks`` holds one row per chunk of an extraction (sha256, extractor version),
    written once; ``file_chunks_fts`` (FTS5, when this SQLite has it) ranks them by BM25.
    ``sent_chunks`` says which chunks of a partly sent file a message carried, so later
    turns bring in only what the conversation has not seen. ``chunk_vectors`` holds the
    chunks' embeddings (float32, one per chunk and model), made in the background.
    """
    db.executescript(
        """
        CREATE TABLE file_chunks (
            id INTEGER PRIMARY KEY,
            sha256 TEXT NOT NULL,
            extractor_version TEXT NOT NULL,
            idx INTEGER NOT NULL,
            start INTEGER NOT NULL,
            stop INTEGER NOT NULL,
            label TEXT NOT NULL,
            text TEXT NOT NULL,
            UNIQUE (sha256, extractor_version, idx)
        );
        CREATE TABLE sent_chunks (
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            message_id INTEGER NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            sha256 TEXT NOT NULL,
            idx INTEGER NOT NULL,
            PRIMARY KEY (message_id, sha256, idx)
        );
        CREATE INDEX sent_chunks_session ON sent_chunks(session_id);
        CREATE TABLE chunk_vectors (
            chunk_id INTEGER NOT NULL REFERENCES file_chunks(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            dim INTEGER NOT NULL,
            vector BLOB NOT NULL,
            PRIMARY KEY (chunk_id, model)
        );
        """
    )
    if _has_fts5(db):
        db.executescript(
            """
            CREATE VIRTUAL TABLE file_chunks_fts USING fts5(
                text, content='file_chunks', content_rowid='id',
                tokenize='porter unicode61'
            );
            CREATE TRIGGER file_chunks_fts_insert AFTER INSERT ON file_chunks BEGIN
                INSERT INTO file_chunks_fts(rowid, text) VALUES (new.id, new.text);
            END;
            CREATE TRIGGER file_chunks_fts_delete AFTER DELETE ON file_chunks BEGIN
                INSERT INTO file_chunks_fts(file_chunks_fts, rowid, text)
                VALUES ('delete', old.id, old.text);
            END;
            """
        )


def m005_chunk_text_once(db: sqlite3.Connection) -> None:
    """The chunk index keeps offsets into the extraction, not a second copy of its text.

    A chunk's text is ``extracts.text[start:stop]`` (:mod:`nbchat.core.chunk_texts`), so
    ``file_chunks.text`` doubled what a large file costs on disk. ``file_chunks_fts``
    becomes a contentless FTS5 table (``content=''``): it holds the word index only, and
    the store feeds it each new chunk's text, sliced from the stored extraction (in
    Python: SQLite's ``substr`` stops at a NUL character). It is filled here from the
    old column, which holds exactly those slices, before the column is dropped. Chunks
    whose extraction is missing (none should exist) are dropped, to be indexed again
    with it. Ids are kept, so vectors and the word index still match. Chunk rows are
    never deleted one by one: deleting one would need its text for FTS5's ``'delete'``
    command (SQLite 3.40 has no contentless delete).
    """
    if sqlite3.sqlite_version_info < (3, 35, 0):
        raise StoreError(
            f"This nbchat needs SQLite 3.35 or newer to upgrade its database (Python's "
            f"sqlite3 module uses SQLite {sqlite3.sqlite_version}): use a Python built "
            "with a newer SQLite, or set NBCHAT_DB to a new database file."
        )
    db.executescript(
        """
        DROP TRIGGER IF EXISTS file_chunks_fts_insert;
        DROP TRIGGER IF EXISTS file_chunks_fts_delete;
        DELETE FROM file_chunks WHERE NOT EXISTS (
            SELECT 1 FROM extracts e WHERE e.sha256 = file_chunks.sha256
            AND e.extractor_version = file_chunks.extractor_version
        );
        """
    )
    if _has_fts5(db):
        db.executescript(
            """
            DROP TABLE IF EXISTS file_chunks_fts;
            CREATE VIRTUAL TABLE file_chunks_fts USING fts5(
                text, content='', tokenize='porter unicode61'
            );
            INSERT INTO file_chunks_fts(rowid, text) SELECT id, text FROM file_chunks;
            """
        )
    # Dropping the column rewrites each row in its page, leaving the pages mostly empty:
    # writing the rows again packs them and frees the rest for any table. Deleting the
    # chunks deletes their vectors (foreign key), so those are written again too.
    db.executescript(
        """
        ALTER TABLE file_chunks DROP COLUMN text;
        CREATE TEMP TABLE kept_chunks AS SELECT * FROM file_chunks;
        CREATE TEMP TABLE kept_chunk_vectors AS SELECT * FROM chunk_vectors;
        DELETE FROM file_chunks;
        INSERT INTO file_chunks SELECT * FROM kept_chunks ORDER BY id;
        INSERT INTO chunk_vectors SELECT * FROM kept_chunk_vectors;
        DROP TABLE temp.kept_chunks;
        DROP TABLE temp.kept_chunk_vectors;
        """
    )


def _has_fts5(db: sqlite3.Connection) -> bool:
    row = db.execute(
        "SELECT 1 FROM pragma_compile_options WHERE compile_options = 'ENABLE_FTS5'"
    ).fetchone()
    return row is not None


Migration = Callable[[sqlite3.Connection], None]

MIGRATIONS: list[Migration] = [
    m001_core,
    m002_memory,
    m003_extract_sections,
    m004_file_chunks,
    m005_chunk_text_once,
]


def schema_version(db: sqlite3.Connection) -> int:
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def migrate(db: sqlite3.Connection) -> int:
    """Apply the missing steps; return the number applied.

    The connection must be in autocommit mode (``isolation_level=None``). A database newer
    than this code is left alone: the caller reports it.
    """
    applied = 0
    while True:
        db.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(db)
            if version >= len(MIGRATIONS):
                db.execute("COMMIT")
                return applied
            # executescript would commit our transaction; run its statements one by one.
            MIGRATIONS[version](_NoCommit(db))  # type: ignore[arg-type]
            db.execute(f"PRAGMA user_version = {version + 1}")
            db.execute("COMMIT")
            applied += 1
        except BaseException:
            db.execute("ROLLBACK")
            raise


class _NoCommit:
    """Lets a migration call ``executescript`` inside the caller's transaction."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: tuple[object, ...] = ()) -> sqlite3.Cursor:
        return self._db.execute(sql, params)

    def executescript(self, script: str) -> None:
        for statement in _split_sql(script):
            self._db.execute(statement)


def _split_sql(script: str) -> list[str]:
    """Split a script into complete statements (``sqlite3.complete_statement`` decides)."""
    statements: list[str] = []
    buffer = ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            if buffer.strip():
                statements.append(buffer.strip())
            buffer = ""
    if buffer.strip():
        statements.append(buffer.strip())
    return statements
