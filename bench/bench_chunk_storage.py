"""What a large document's chunk index costs on disk (SQLite), before and after m005.

The document is generated (``tests/needles.py``, about 60,000 tokens). Three databases
get its extraction and chunk index: one built by migrations m001-m004 (each chunk's text
stored again in ``file_chunks.text``, as before m005), one with today's schema, and the
first one upgraded by opening it. Printed: the bytes of the pages in use in each (pages
freed by the upgrade are reused by later writes; ``VACUUM`` gives them back to the
file system) and the size of the text itself.

    python bench/bench_chunk_storage.py [--chars N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from common import emit, load_test_helper, print_table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chars", type=int, default=240_000,
                        help="document length in characters (240,000: ~60k tokens)")
    args = parser.parse_args()
    from nbchat.core.attachments import chunk_rows
    from nbchat.core.extractors.record import Extracted
    from nbchat.core.sqlite_store import SqliteStore

    needles = load_test_helper("needles")
    old_chunks = load_test_helper("old_chunks")
    document = needles.needle_document(args.chars)
    extracted = Extracted(document.text, "text")
    rows = chunk_rows(extracted)
    sha, version = "b" * 64, "bench"
    with tempfile.TemporaryDirectory() as folder:
        old_path, new_path = Path(folder) / "m004.sqlite", Path(folder) / "now.sqlite"
        old = old_chunks.sqlite_at_m004(old_path)
        old_chunks.put_m004_chunks(old, sha, version, document.text, rows)
        old.close()
        before = old_chunks.used_bytes(old_path)
        with SqliteStore(new_path) as store, store.transaction() as tx:
            store.put_extract(tx, sha, version, extracted)
            store.put_chunks(tx, sha, version, rows)
        now = old_chunks.used_bytes(new_path)
        SqliteStore(old_path).close()  # opening upgrades it
        upgraded = old_chunks.used_bytes(old_path)
    text_bytes = len(document.text.encode("utf-8"))
    print_table(
        f"Chunk index on disk: {len(rows)} chunks of a {text_bytes:,}-byte text",
        ["database", "bytes in use", "vs m004"],
        [["m004 (text stored twice)", before, 1.0],
         ["today's schema", now, round(now / before, 3)],
         ["m004 upgraded", upgraded, round(upgraded / before, 3)]],
    )
    emit("chunk_storage", {"chunks": len(rows), "text_bytes": text_bytes,
                           "m004_bytes": before, "now_bytes": now, "upgraded_bytes": upgraded,
                           "saved_bytes": before - now})


if __name__ == "__main__":
    main()
