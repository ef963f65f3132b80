"""What can be attached, and turning each attachment into text once.

An attachment is a path on disk, a stored file (by id or name), or a text made by the
caller (a DataFrame summary, a variable, notebook cells). Resolving reads and extracts
it through two caches: (absolute path, size, mtime_ns) -> sha256 of the bytes, and
sha256 -> extracted text. An unchanged file is therefore neither read nor parsed again,
on this turn or any later one. New cache entries wait in :class:`Resolver` until the
turn is stored, so a failed turn writes nothing.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Union

from nbchat.core.errors import AttachmentError, AttachmentsError
from nbchat.core.extractors.record import Extracted, Section
from nbchat.core.store import ChunkRow, Store, StoredFile, Transaction

__all__ = [
    "AttachmentSpec",
    "Resolved",
    "Resolver",
    "as_specs",
    "path_spec",
    "store_file",
    "stored_spec",
    "text_spec",
]

# Kinds of attachment, as recorded in the store.
PATH, STORED, TEXT = "path", "stored", "text"


@dataclass(frozen=True)
class AttachmentSpec:
    """An attachment as the user named it, before anything is read.

    ``kind`` is ``path``, ``stored`` or ``text``. For ``text``, ``text`` holds the
    content and ``label`` says what it is (``dataframe``, ``variable``, ``notebook``).
    ``fingerprint`` lets a front end notice later that the source object changed.
    """

    kind: str
    name: str
    text: str | None = None
    label: str = "text"
    fingerprint: str | None = None


def path_spec(path: str | os.PathLike[str]) -> AttachmentSpec:
    return AttachmentSpec(PATH, os.fspath(path))


def stored_spec(key: str | int) -> AttachmentSpec:
    return AttachmentSpec(STORED, str(key))


def text_spec(
    name: str, text: str, *, label: str = "text", fingerprint: str | None = None
) -> AttachmentSpec:
    return AttachmentSpec(TEXT, name, text=text, label=label, fingerprint=fingerprint)


FileLike = Union[str, "os.PathLike[str]", AttachmentSpec]


def as_specs(files: Iterable[FileLike] | None, store: Store | None) -> list[AttachmentSpec]:
    """Turn what a user passed as ``files`` into specs.

    A string that is a path on disk is a path; otherwise a stored file's name or id
    when one exists; otherwise a pattern (``reports/*.pdf``) stands for the files it
    matches, sorted; otherwise it stays a path, whose resolution reports it missing
    (or, for a pattern, that it matches no file).
    """
    specs: list[AttachmentSpec] = []
    for item in files or ():
        if isinstance(item, AttachmentSpec):
            specs.append(item)
        elif isinstance(item, (str, os.PathLike)):
            text = os.fspath(item)
            if os.path.lexists(os.path.expanduser(text)):
                specs.append(path_spec(text))
            elif store is not None and store.get_file(text) is not None:
                specs.append(stored_spec(text))
            else:
                specs += [path_spec(path) for path in matching_files(text)] or [path_spec(text)]
        else:
            raise AttachmentError(
                repr(item)[:80],
                "is not something nbchat can attach.",
                "Pass a file path, a stored file's name or id, or use --df/--var "
                "for DataFrames and variables.",
            )
    return specs


def is_pattern(text: str) -> bool:
    """Whether ``text`` holds a glob wildcard (``*``, ``?`` or ``[...]``)."""
    return any(mark in text for mark in "*?[")


def matching_files(pattern: str) -> list[str]:
    """The regular files a glob ``pattern`` matches (``**`` spans folders), sorted;
    [] for a pattern that matches none and for a text that is no pattern."""
    import glob

    if not is_pattern(pattern):
        return []
    found = glob.glob(os.path.expanduser(pattern), recursive=True)
    return sorted(path for path in found if os.path.isfile(path))


def store_file(
    store: Store,
    name: str,
    data: bytes,
    *,
    max_file_bytes: int,
    max_inflated_bytes: int,
    mime: str | None = None,
) -> StoredFile:
    """Save ``data`` in the file store as ``name``, if nbchat could attach it.

    The one check that ``%chat store`` and the chat panel's uploads share: the file
    is within ``max_file_bytes`` and its text can be extracted (so not empty, corrupted,
    a scanned PDF, a zip bomb...); otherwise the :class:`AttachmentError` says why and
    nothing is stored. The extracted text is kept in memory for the turn that uses it.
    """
    import mimetypes

    from nbchat.core.extract import extract_bytes
    from nbchat.core.extractors import problems

    if len(data) > max_file_bytes:
        raise problems.too_large(name, len(data), max_file_bytes)
    extracted = extract_bytes(data, name, max_inflated_bytes=max_inflated_bytes)
    sha = _sha(data)
    _remember_extract(sha, extracted)
    guessed = mimetypes.guess_type(name)[0]
    return store.add_file(
        name, data, sha256=sha, mime=mime or guessed or "application/octet-stream"
    )


@dataclass(frozen=True)
class Resolved:
    """An attachment's text, ready for budgeting.

    ``sha256`` identifies the content (the file's bytes, or the caller's text).
    """

    spec: AttachmentSpec
    name: str
    path: str | None
    sha256: str
    text: str
    kind: str
    notes: tuple[str, ...] = ()
    sections: tuple[Section, ...] = ()

    @property
    def record_kind(self) -> str:
        return self.spec.kind if self.spec.kind != TEXT else self.spec.label


@dataclass
class Resolver:
    """Resolves specs against one store, collecting cache writes for the turn's commit."""

    store: Store | None
    max_file_bytes: int = 50 * 1024 * 1024
    max_inflated_bytes: int = 512 * 1024 * 1024
    _path_hashes: list[tuple[str, int, int, str]] = field(default_factory=list)
    _extracts: dict[str, Extracted] = field(default_factory=dict)
    _resolved: dict[str, Extracted] = field(default_factory=dict)

    def resolve_all(self, specs: Sequence[AttachmentSpec]) -> list[Resolved]:
        """Every spec resolved, or one :class:`AttachmentsError` listing every failure."""
        resolved: list[Resolved] = []
        failures: list[AttachmentError] = []
        for spec in specs:
            try:
                resolved.append(self.resolve(spec))
            except AttachmentsError as many:
                failures.extend(many.failures)
            except AttachmentError as error:
                failures.append(error)
        if failures:
            raise AttachmentsError(failures)
        return resolved

    def resolve(self, spec: AttachmentSpec) -> Resolved:
        """The attachment's text; its chunk index is written by the turn's :meth:`flush`."""
        resolved = self._resolve(spec)
        self._resolved[resolved.sha256] = Extracted(
            resolved.text, resolved.kind, resolved.notes, resolved.sections
        )
        return resolved

    def _resolve(self, spec: AttachmentSpec) -> Resolved:
        if spec.kind == TEXT:
            text = spec.text or ""
            if not text.strip():
                raise AttachmentError(spec.name, "is empty: there is no text to attach.")
            sha = _sha(text.encode("utf-8", "surrogatepass"))
            self._extracts[sha] = Extracted(text, spec.label)
            return Resolved(spec, spec.name, None, sha, text, spec.label)
        if spec.kind == STORED:
            return self._resolve_stored(spec)
        return self._resolve_path(spec)

    def _resolve_path(self, spec: AttachmentSpec) -> Resolved:
        from nbchat.core.extract import read_path, stat_key

        if is_pattern(spec.name) and not os.path.lexists(os.path.expanduser(spec.name)):
            raise AttachmentError(
                spec.name,
                "matches no file.",
                "Check the folder and the pattern (for example 'reports/*.pdf'; "
                "'**' also looks in subfolders).",
            )
        absolute, size_bytes, mtime_ns = stat_key(spec.name)
        sha = self._known_sha(absolute, size_bytes, mtime_ns)
        cached = self.cached_extract(sha) if sha else None
        if sha is None or cached is None:
            data = read_path(spec.name, max_file_bytes=self.max_file_bytes)
            sha = _sha(data)
            self._path_hashes.append((absolute, size_bytes, mtime_ns, sha))
            cached = self.cached_extract(sha) or self._extract(data, spec.name, sha)
        return _resolved(spec, Path(spec.name).name, absolute, sha, cached)

    def _resolve_stored(self, spec: AttachmentSpec) -> Resolved:
        found = self.store.get_file(spec.name) if self.store is not None else None
        if found is None:
            raise AttachmentError(
                spec.name,
                "is not in the file store.",
                "List stored files with `%chat stored`, or add it with `%chat store PATH`.",
            )
        cached = self.cached_extract(found.sha256)
        if cached is None:
            assert self.store is not None
            cached = self._extract(self.store.file_bytes(found.id), found.name, found.sha256)
        return _resolved(spec, found.name, None, found.sha256, cached)

    def _known_sha(self, absolute: str, size_bytes: int, mtime_ns: int) -> str | None:
        key = (absolute, size_bytes, mtime_ns)
        for entry in self._path_hashes:
            if entry[:3] == key:
                return entry[3]
        if key in _MEMORY_PATHS:
            return _MEMORY_PATHS[key]
        if self.store is not None:
            return self.store.cached_path_hash(absolute, size_bytes, mtime_ns)
        return None

    def cached_extract(self, sha: str) -> Extracted | None:
        from nbchat.core.extract import EXTRACTOR_VERSION

        if sha in self._extracts:
            return self._extracts[sha]
        if sha in _MEMORY_EXTRACTS:
            entry = _MEMORY_EXTRACTS[sha]
            if self.store is not None and self.store.cached_extract(sha, EXTRACTOR_VERSION) is None:
                self._extracts[sha] = entry  # this database lacks it: the turn's flush stores it
            return entry
        if self.store is not None:
            return self.store.cached_extract(sha, EXTRACTOR_VERSION)
        return None

    def _extract(self, data: bytes, name: str, sha: str) -> Extracted:
        from nbchat.core.extract import extract_bytes

        extracted = extract_bytes(data, name, max_inflated_bytes=self.max_inflated_bytes)
        self._extracts[sha] = extracted
        return extracted

    def flush(self, store: Store, db: Transaction) -> None:
        """Save the new cache entries inside the turn's transaction ``db`` of ``store``."""
        from nbchat.core.extract import EXTRACTOR_VERSION

        for absolute, size_bytes, mtime_ns, sha in self._path_hashes:
            store.put_path_hash(db, absolute, size_bytes, mtime_ns, sha)
            _MEMORY_PATHS[(absolute, size_bytes, mtime_ns)] = sha
        for sha, extracted in self._extracts.items():
            store.put_extract(db, sha, EXTRACTOR_VERSION, extracted)
            _remember_extract(sha, extracted)
        for sha, extracted in self._resolved.items():
            if not store.has_chunks(sha, EXTRACTOR_VERSION):  # once per (content, version)
                # The chunks are offsets into the stored extraction: store it with them
                # (a no-op when stored), whichever cache this resolver read it from.
                store.put_extract(db, sha, EXTRACTOR_VERSION, extracted)
                store.put_chunks(db, sha, EXTRACTOR_VERSION, chunk_rows(extracted))
        self._path_hashes.clear()
        self._extracts.clear()
        self._resolved.clear()

    def remember(self) -> None:
        """Keep new entries in this process's memory only (a dry run stores nothing)."""
        for absolute, size_bytes, mtime_ns, sha in self._path_hashes:
            _MEMORY_PATHS[(absolute, size_bytes, mtime_ns)] = sha
        for sha, entry in self._extracts.items():
            _remember_extract(sha, entry)


def chunk_rows(extracted: Extracted) -> list[ChunkRow]:
    """The chunks of an extraction as the store's chunk index holds them."""
    from nbchat.core.chunks import chunk_text

    return [
        ChunkRow(c.index, c.start, c.end, c.label, extracted.text[c.start : c.end])
        for c in chunk_text(extracted.text, extracted.sections)
    ]


def _resolved(
    spec: AttachmentSpec, name: str, path: str | None, sha: str, extracted: Extracted
) -> Resolved:
    return Resolved(
        spec, name, path, sha, extracted.text, extracted.kind, extracted.notes,
        extracted.sections,
    )


# Process-wide memory of recent extractions, bounded by total characters.
_MEMORY_PATHS: dict[tuple[str, int, int], str] = {}
_MEMORY_EXTRACTS: dict[str, Extracted] = {}
_MEMORY_LIMIT_CHARS = 64 * 1024 * 1024
_memory_chars = 0


def _remember_extract(sha: str, entry: Extracted) -> None:
    """Keep ``entry`` as the newest; forget the oldest ones past the limit."""
    global _memory_chars
    old = _MEMORY_EXTRACTS.pop(sha, None)
    if old is not None:
        _memory_chars -= len(old.text)
    _MEMORY_EXTRACTS[sha] = entry
    _memory_chars += len(entry.text)
    while _memory_chars > _MEMORY_LIMIT_CHARS and len(_MEMORY_EXTRACTS) > 1:
        _memory_chars -= len(_MEMORY_EXTRACTS.pop(next(iter(_MEMORY_EXTRACTS))).text)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
