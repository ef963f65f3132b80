"""A real PostgreSQL 16 + pgvector server for the tests, from the ``pgserver`` wheel.

One server per test session (it starts in about a second), reached over a Unix socket
only, in a folder of its own under the system temp folder (the one pytest's base
folder is in, since the test run points ``TMPDIR`` inside that) that the session removes
at its end. Not under pytest's base folder: the server runs as another user, who must be
able to traverse the folders above its data, and every pytest start (of any run, on a
shared machine) makes ``/tmp/pytest-of-<user>`` private again: the server would then
lose its own files mid-run. Its roles are those of a team on JupyterHub: the
superuser plays the DBA (it creates databases and the ``vector`` extension),
``nbchat_admin`` owns the tables (``nbchat db init``), ``alice`` and ``bob`` are users
(members of ``nbchat_user``), and ``team`` is a group role with ``bob`` in it.

Run as root, pgserver makes a ``pgserver`` system user and runs the server as that
user: it gives the data folder to that user and opens the folders above it for
traversal (``o+rx``). pgserver keeps a lock file in ``$XDG_RUNTIME_DIR``, read once on
import, so the import happens with that variable pointing into this session's folder.
At the end the server is stopped and the whole folder removed.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ADMIN = "nbchat_admin"
USERS = ("alice", "bob")
GROUP = "team"
TEMPLATE = "nbchat_template"


class PgCluster:
    """The running server and its roles; databases are made per test from a template."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        runtime = folder / "run"
        runtime.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o700)  # platformdirs ignores a runtime folder others can read
        with _environment(XDG_RUNTIME_DIR=str(runtime)):
            import pgserver

            self._server = pgserver.get_server(folder / "data", cleanup_mode="delete")
        self.socket_dir = self._server.get_postmaster_info().socket_dir
        self.data_dir = folder / "data"

    def url(self, role: str = "postgres", database: str = "postgres") -> str:
        return f"postgresql://{role}@/{database}?host={self.socket_dir}"

    def superuser(self, database: str = "postgres") -> Any:
        import psycopg

        return psycopg.connect(self.url("postgres", database), autocommit=True)

    def create_roles(self) -> None:
        with self.superuser() as db:
            db.execute(f"CREATE ROLE {ADMIN} LOGIN CREATEROLE")
            for user in USERS:
                db.execute(f"CREATE ROLE {user} LOGIN")
            db.execute(f"CREATE ROLE {GROUP} NOLOGIN")
            db.execute(f"GRANT {GROUP} TO bob")

    def create_database(self, *, template: str | None = None) -> str:
        """A new database owned by the admin, with ``vector`` installed by the superuser."""
        name = "t_" + uuid.uuid4().hex[:12]
        with self.superuser() as db:
            source = f" TEMPLATE {template}" if template else ""
            db.execute(f"CREATE DATABASE {name} OWNER {ADMIN}{source}")
        if template is None:
            with self.superuser(name) as db:
                db.execute("CREATE EXTENSION vector")
        return name

    def drop_database(self, name: str) -> None:
        with self.superuser() as db:
            db.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def make_template(self) -> None:
        """The initialised database every test's database is copied from."""
        from nbchat.core.postgres_migrations import USER_ROLE, init_database

        with self.superuser() as db:
            db.execute(f"CREATE DATABASE {TEMPLATE} OWNER {ADMIN}")
        with self.superuser(TEMPLATE) as db:
            db.execute("CREATE EXTENSION vector")
        init_database(self.url(ADMIN, TEMPLATE), report=lambda _: None)
        import psycopg

        with psycopg.connect(self.url(ADMIN, TEMPLATE), autocommit=True) as db:
            for user in USERS:
                db.execute(f"GRANT {USER_ROLE} TO {user}")

    def restart(self) -> None:
        """Stop the server (cutting every connection) and start it again."""
        from pgserver._commands import pg_ctl

        pg_ctl(["-w", "-m", "fast", "restart"], pgdata=self.data_dir,
               user=self._server.system_user)

    def stop(self) -> None:
        """Stop the server and remove its folder. pgserver's ``pg_ctl`` wrapper writes
        temporary files; the run's temp folder (under pytest's base folder) may be gone
        by now, removed by another pytest start on a shared machine, so they go here."""
        import tempfile

        saved = tempfile.tempdir
        tempfile.tempdir = str(self.folder)
        try:
            self._server.cleanup()
        finally:
            tempfile.tempdir = saved
            shutil.rmtree(self.folder, ignore_errors=True)


@contextmanager
def _environment(**values: str) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def start_cluster(parent: Path) -> PgCluster:
    """Start a server in a new folder under ``parent`` (removed by :meth:`PgCluster.stop`)."""
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="nbchat-pg-", dir=parent))
    try:
        cluster = PgCluster(folder)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    try:
        cluster.create_roles()
        cluster.make_template()
    except BaseException:
        cluster.stop()
        raise
    return cluster
