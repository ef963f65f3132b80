"""Copy one user's whole history between stores: ``nbchat db copy SRC DST``.

SQLite to the team store and back. The source is only read. Sessions keep their ids,
messages their ``seq``, text, status and times; attachments, stored files, the caches
and the embedding vectors come along (message ids are mapped, since the target numbers
its own). Running it again adds nothing twice: each row is skipped when the target
already has it (a session by id, a message by session and ``seq``, an attachment by
session, kind, name and content, a cache entry by its key). Each session is copied in
one transaction, so an interrupted copy leaves whole sessions and can be run again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbchat.core.errors import StoreError
from nbchat.core.storage import open_store

__all__ = ["CopyCounts", "copy_history"]

ALL_SESSIONS = 1 << 62


@dataclass
class CopyCounts:
    """What the copy found in the source and what it added to the target."""

    sessions: int = 0
    new_sessions: int = 0
    messages: int = 0
    files: int = 0
    cache_entries: int = 0
    vectors: int = 0


def copy_history(
    source_location: Any, target_location: Any, report: Callable[[str], None] = print
) -> CopyCounts:
    """Copy everything of ``source_location`` into ``target_location`` (paths or URLs)."""
    if str(source_location) == str(target_location):
        raise StoreError("The source and the target of a copy are the same database.")
    source = open_store(source_location)
    try:
        target = open_store(target_location)
        try:
            return _copy(source, target, report)
        finally:
            target.close()
    finally:
        source.close()


def _copy(source: Any, target: Any, report: Callable[[str], None]) -> CopyCounts:
    for store in (source, target):
        if not hasattr(store, "import_message"):
            raise StoreError(f"The store at {store.location} cannot take part in a copy.")
    counts = CopyCounts()
    sessions = sorted(source.list_sessions(limit=ALL_SESSIONS), key=lambda s: s.created)
    counts.sessions = len(sessions)
    report(f"nbchat: copying {len(sessions)} session(s) from {source.location} "
           f"to {target.location}")
    for file in source.list_files():
        if target.get_file(file.name) is None or target.get_file(file.name).sha256 != file.sha256:
            target.add_file(file.name, source.file_bytes(file.id), sha256=file.sha256,
                            mime=file.mime)
        counts.files += 1
    for number, session in enumerate(sessions, start=1):
        messages = source.messages(session.id)
        with target.transaction() as db:
            counts.new_sessions += bool(target.import_session(db, session))
            new_ids = {m.id: target.import_message(db, m) for m in messages}
            for record in source.attachments(session.id, include_forgotten=True):
                target.record_attachment(
                    db, session_id=session.id,
                    message_id=new_ids.get(record.message_id) if record.message_id else None,
                    kind=record.kind, name=record.name, path=record.path,
                    sha256=record.sha256, fingerprint=record.fingerprint,
                    total_tokens=record.total_tokens, kept_tokens=record.kept_tokens,
                )
            vectors = source.stored_vectors(list(new_ids))
            if vectors:
                from nbchat.core.store import MessageVector

                counts.vectors += len(vectors)
                target.add_vectors(db, [
                    MessageVector(new_ids[v.message_id], v.model, v.chunk, v.vector)
                    for v in vectors
                ])
        forgotten = {r.name for r in source.attachments(session.id, include_forgotten=True)
                     if r.forgotten}
        for name in forgotten:
            target.forget_attachment(session.id, name)
        counts.messages += len(messages)
        if number % 10 == 0 or number == len(sessions):
            report(f"nbchat: {number}/{len(sessions)} sessions, {counts.messages} messages")
    with target.transaction() as db:
        for kind, values in source.cached_entries():
            counts.cache_entries += 1
            if kind == "extract":
                target.put_extract(db, *values)
            elif kind == "path":
                target.put_path_hash(db, *values)
            else:
                target.put_token_count(db, *values)
    return counts
