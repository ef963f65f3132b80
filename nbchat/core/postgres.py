"""The boundary to PostgreSQL: connecting, and turning psycopg's errors into ours.

psycopg is optional (the ``nbchat[postgres]`` extra), so it is imported inside
:func:`connect`; a missing install or an unreachable server becomes a
:class:`~nbchat.core.errors.StoreError` that names the fix. A URL may carry a password:
:func:`redact_url` is what any message shows instead.
"""

from __future__ import annotations

import re
from typing import Any

from nbchat.core.errors import StoreError

__all__ = ["POSTGRES_SCHEMES", "connect", "is_postgres_url", "redact_url", "INSTALL_HINT"]

POSTGRES_SCHEMES = ("postgresql://", "postgres://")
INSTALL_HINT = 'pip install "nbchat[postgres]"'
CONNECT_TIMEOUT_S = 10
_PASSWORD = re.compile(r"^(?P<head>[a-z]+://[^:/@?#]*):[^@/?#]*@", re.IGNORECASE)
_PASSWORD_PARAM = re.compile(r"(?P<key>[?&]password=)[^&#]*", re.IGNORECASE)


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
