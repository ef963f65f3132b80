"""The boundary to PostgreSQL: connecting, and turning psycopg's errors into ours.

psycopg is optional (the ``nbchat[postgres]`` extra), so it is imported inside
:func:`connect`; a missing install or an unreachable server becomes a
:class:`~nbchat.core.errors.StoreError` that names the fix. A URL may carry a password:
:func:`redact_url` is what any message shows instead.

PostgreSQL's text cannot hold the NUL character, which SQLite's can (a prompt may carry
one, pasted from a terminal): :func:`keep_nul_characters` makes a connection store it
escaped and read it back as written (see :func:`escape_nul`).
"""

from __future__ import annotations

import re
from typing import Any

from nbchat.core.errors import StoreError

__all__ = [
    "POSTGRES_SCHEMES",
    "connect",
    "is_postgres_url",
    "redact_url",
    "INSTALL_HINT",
    "escape_nul",
    "unescape_nul",
    "keep_nul_characters",
]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
INSTALL_HINT = 'pip install "nbchat[postgres]"'
CONNECT_TIMEOUT_S = 10
_PASSWORD = re.compile(r"^(?P<head>[a-z]+://[^:/@?#]*):[^@/?#]*@", re.IGNORECASE)
_PASSWORD_PARAM = re.compile(r"(?P<key>[?&]password=)[^&#]*", re.IGNORECASE)
# U+FFFF, a Unicode noncharacter (never in interchanged text): "\uffff0" stands for NUL,
# "\uffff\uffff" for itself, so every text maps to a NUL-free one and back.
NUL_ESCAPE = "\uffff"
_ESCAPED = re.compile("\uffff(.)", re.DOTALL)


def is_postgres_url(text: str) -> bool:
    """Whether a database setting names a PostgreSQL server rather than a SQLite file."""
    return text.strip().lower().startswith(POSTGRES_SCHEMES)


def redact_url(url: str) -> str:
    """``url`` without its password (in the user part or as a ``password=`` parameter)."""
    text = _PASSWORD.sub(r"\g<head>@", url.strip())
    return _PASSWORD_PARAM.sub(r"\g<key>***", text)


def connect(url: str, *, autocommit: bool = True) -> Any:
    """A psycopg connection to ``url``, its errors translated to :class:`StoreError`."""
    try:
        import psycopg
    except ImportError as exc:
        raise StoreError(
            f"The database {redact_url(url)} is PostgreSQL, which needs psycopg and pgvector: "
            f"{INSTALL_HINT}, then restart the kernel."
        ) from exc
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.OperationalError as exc:
        raise StoreError(
            f"Cannot reach the PostgreSQL server of {redact_url(url)}: "
            f"{_first_line(exc, url)}. Check the server is running and the URL "
            "(NBCHAT_DB or c.NbChat.db_path) names it; nothing was stored."
        ) from exc
    except psycopg.Error as exc:
        raise StoreError(
            f"Cannot use the PostgreSQL database {redact_url(url)}: {_first_line(exc, url)}"
        ) from exc


def _first_line(exc: BaseException, url: str) -> str:
    """The first line of a driver message, with the URL's password taken out."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.replace(url, redact_url(url)).rstrip(".")


def escape_nul(text: str) -> str:
    """``text`` without NUL characters, reversibly (:func:`unescape_nul` undoes it)."""
    if NUL_ESCAPE in text:
        text = text.replace(NUL_ESCAPE, NUL_ESCAPE * 2)
    if "\x00" in text:
        text = text.replace("\x00", NUL_ESCAPE + "0")
    return text


def unescape_nul(text: str) -> str:
    if NUL_ESCAPE not in text:
        return text
    return _ESCAPED.sub(lambda m: "\x00" if m.group(1) == "0" else m.group(1), text)


def keep_nul_characters(db: Any) -> None:
    """Make ``db`` write every ``str`` through :func:`escape_nul` and read every text
    column through :func:`unescape_nul`, so any text round-trips as written."""
    from psycopg.types.string import (
        StrBinaryDumper,
        StrDumperUnknown,
        TextBinaryLoader,
        TextLoader,
    )

    class NulSafeDumper(StrDumperUnknown):
        def dump(self, obj: str) -> Any:
            return super().dump(escape_nul(obj))

    class NulSafeBinaryDumper(StrBinaryDumper):
        def dump(self, obj: str) -> Any:
            return super().dump(escape_nul(obj))

    class NulSafeLoader(TextLoader):
        def load(self, data: Any) -> Any:
            text = super().load(data)  # bytes on a SQL_ASCII database
            return unescape_nul(text) if isinstance(text, str) else text

    class NulSafeBinaryLoader(TextBinaryLoader):
        def load(self, data: Any) -> Any:
            text = super().load(data)
            return unescape_nul(text) if isinstance(text, str) else text

    # The last one registered is the default: untyped ("unknown"), as psycopg's own, so
    # the server still casts a string to the column's type (a vector, a role...).
    db.adapters.register_dumper(str, NulSafeBinaryDumper)
    db.adapters.register_dumper(str, NulSafeDumper)
    for type_name in ("text", "varchar"):
        db.adapters.register_loader(type_name, NulSafeLoader)
        db.adapters.register_loader(type_name, NulSafeBinaryLoader)
