"""What a store holds, to compare before and after: "nothing was written" on any store.

For SQLite it is a digest of the file and its WAL (byte-for-byte unchanged); for PostgreSQL, every row of
every nbchat table the store's role can see, read on a connection of its own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

TABLES = (
    "sessions", "messages", "files", "attachments", "extracts", "path_hashes",
    "token_counts", "embeddings", "session_shares",
)


def database_state(store: Any) -> Any:
    path = getattr(store, "path", None)
    if path is not None:
        import hashlib

        digest = hashlib.sha256()
        for suffix in ("", "-wal"):
            part = Path(path).parent / (Path(path).name + suffix)
            if part.exists():
                digest.update(part.read_bytes())
        return digest.hexdigest()
    import psycopg

    with psycopg.connect(store.url, autocommit=True) as db:
        return {
            table: db.execute(f"SELECT * FROM nbchat.{table} ORDER BY 1, 2").fetchall()
            for table in TABLES
        }
