"""``nbchat db``: set up the team store on PostgreSQL (see docs/team.md).

``nbchat db init --admin URL`` creates or upgrades the nbchat tables as the admin role
that owns them; users' kernels never do. It is safe to run again. ``nbchat db copy SRC
DST`` copies a user's history between a SQLite file and the team store (either way).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from nbchat.core.errors import NbChatError

__all__ = ["add_db_parser"]


def _db_init(args: argparse.Namespace) -> int:
    from nbchat.core.postgres import is_postgres_url, redact_url
    from nbchat.core.postgres_migrations import MIGRATIONS, USER_ROLE, init_database

    if not is_postgres_url(args.admin):
        raise NbChatError(
            f"--admin takes a postgresql:// URL of the admin role, not {args.admin!r} "
            "(a SQLite file needs no init: it is set up when first opened)."
        )
    applied = init_database(
        args.admin,
        extra_vector_dims=args.embedding_dim or (),
        report=lambda line: print(line, file=sys.stderr),
    )
    state = f"{applied} step(s) applied" if applied else "already up to date"
    print(
        f"nbchat: the tables in {redact_url(args.admin)} are at version {len(MIGRATIONS)} "
        f"({state}). Give each user row access with `GRANT {USER_ROLE} TO <role>;`.",
        file=sys.stderr,
    )
    return 0


def _db_copy(args: argparse.Namespace) -> int:
    from nbchat.core.history_copy import copy_history
    from nbchat.core.settings import database_location

    counts = copy_history(
        database_location(args.source), database_location(args.target),
        report=lambda line: print(line, file=sys.stderr),
    )
    print(
        f"nbchat: copied {counts.sessions} session(s) ({counts.new_sessions} new), "
        f"{counts.messages} message(s), {counts.files} stored file(s), "
        f"{counts.cache_entries} cache entries and {counts.vectors} vector(s); the source "
        "is unchanged.",
        file=sys.stderr,
    )
    return 0


def add_db_parser(commands: Any) -> None:
    """Add ``db`` and its actions to the ``nbchat`` command's subparsers."""
    db = commands.add_parser(
        "db",
        help="set up the team store on PostgreSQL",
        description="The team store: one PostgreSQL database with pgvector, one role per "
        "user. See docs/team.md.",
    )
    actions = db.add_subparsers(dest="action", required=True, metavar="ACTION")
    init = actions.add_parser(
        "init",
        help="create or upgrade the nbchat tables (as the admin role)",
        description="Create or upgrade the nbchat tables in schema `nbchat`, as the "
        "admin role that owns them, and grant row access to the group role nbchat_user. "
        "Safe to run again. The pgvector extension must be installed in the database "
        "(a superuser runs `CREATE EXTENSION vector;` if this role cannot).",
    )
    init.add_argument(
        "--admin", required=True, metavar="URL",
        help="postgresql:// URL connecting as the admin role (never a user's role)",
    )
    init.add_argument(
        "--embedding-dim", type=int, action="append", metavar="N",
        help="also index vectors of N dimensions (repeatable; common sizes have an "
        "index already)",
    )
    init.set_defaults(run=_db_init)
    copy = actions.add_parser(
        "copy",
        help="copy your history from one database to another (SQLite <-> team store)",
        description="Copy every session, message, attachment record, stored file, cache "
        "entry and embedding vector of SRC into DST, each a SQLite file or a postgresql:// "
        "URL (on the team store, your own rows: connect as your role). SRC is only read. "
        "Running it again adds nothing twice.",
    )
    copy.add_argument("source", metavar="SRC", help="the database to copy from")
    copy.add_argument("target", metavar="DST", help="the database to copy into")
    copy.set_defaults(run=_db_copy)
