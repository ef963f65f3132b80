"""`nbchat db init --admin URL`: the only way the team store's tables are made or upgraded."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import psycopg
import pytest

from nbchat.core.errors import StoreError
from nbchat.core.postgres import connect, redact_url
from nbchat.core.postgres_migrations import (
    HNSW_EF_CONSTRUCTION,
    HNSW_M,
    MIGRATIONS,
    check_schema,
    schema_version,
)
from pg_cluster import ADMIN


def run_nbchat(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nbchat", *args], capture_output=True, text=True, timeout=120
    )


def tables(cluster: Any, database: str) -> set[str]:
    with cluster.superuser(database) as db:
        rows = db.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'nbchat'"
        ).fetchall()
    return {r[0] for r in rows}


def test_db_init_makes_the_tables_on_a_fresh_database(
    pg_cluster: Any, pg_empty_database: str
) -> None:
    done = run_nbchat("db", "init", "--admin", pg_cluster.url(ADMIN, pg_empty_database))
    assert done.returncode == 0, done.stderr
    assert f"at version {len(MIGRATIONS)} ({len(MIGRATIONS)} step(s) applied)" in done.stderr
    assert {"sessions", "messages", "files", "attachments", "extracts", "path_hashes",
            "token_counts", "embeddings", "session_shares", "file_chunks", "sent_chunks",
            "chunk_vectors",
            "schema_version"} == tables(
        pg_cluster, pg_empty_database
    )
    with pg_cluster.superuser(pg_empty_database) as db:
        forced = db.execute(
            "SELECT relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE nspname = 'nbchat' AND relkind = 'r' AND relforcerowsecurity"
        ).fetchall()
        owners = db.execute(
            "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'nbchat'"
        ).fetchall()
        index_options = db.execute(
            "SELECT reloptions FROM pg_class WHERE relname = 'embeddings_hnsw_640'"
        ).fetchall()
    assert {r[0] for r in forced} == tables(pg_cluster, pg_empty_database) - {"schema_version"}
    assert owners == [(ADMIN,)]
    # The default model's vectors get the HNSW index with the benchmarked parameters.
    assert index_options == [([f"m={HNSW_M}", f"ef_construction={HNSW_EF_CONSTRUCTION}"],)]


def test_db_init_again_changes_nothing(pg_cluster: Any, pg_empty_database: str) -> None:
    url = pg_cluster.url(ADMIN, pg_empty_database)
    assert run_nbchat("db", "init", "--admin", url).returncode == 0
    with pg_cluster.superuser(pg_empty_database) as db:
        db.execute(
            "INSERT INTO nbchat.sessions (id, owner, title, created, updated) "
            "VALUES ('kept', 'alice', 'kept', 1, 1)"
        )
    again = run_nbchat("db", "init", "--admin", url)
    assert again.returncode == 0, again.stderr
    assert "already up to date" in again.stderr
    with pg_cluster.superuser(pg_empty_database) as db:
        assert db.execute("SELECT title FROM nbchat.sessions").fetchall() == [("kept",)]
        assert db.execute("SELECT version FROM nbchat.schema_version").fetchall() == [
            (len(MIGRATIONS),)
        ]


def test_db_init_refuses_a_users_role(pg_cluster: Any, pg_empty_database: str) -> None:
    done = run_nbchat("db", "init", "--admin", pg_cluster.url("alice", pg_empty_database))
    assert done.returncode == 2
    assert "cannot create tables" in done.stderr and "admin role" in done.stderr
    assert tables(pg_cluster, pg_empty_database) == set()


def test_db_init_refuses_a_user_role_on_an_initialised_database(
    pg_cluster: Any, pg_database: str
) -> None:
    done = run_nbchat("db", "init", "--admin", pg_cluster.url("alice", pg_database))
    assert done.returncode == 2
    assert "does not own the nbchat tables" in done.stderr and ADMIN in done.stderr


def test_db_init_names_the_missing_vector_extension(pg_cluster: Any) -> None:
    name = pg_cluster.create_database()
    try:
        with pg_cluster.superuser(name) as db:
            db.execute("DROP EXTENSION vector")
        done = run_nbchat("db", "init", "--admin", pg_cluster.url(ADMIN, name))
        assert done.returncode == 2
        assert "CREATE EXTENSION vector" in done.stderr and "superuser" in done.stderr
        assert tables(pg_cluster, name) == set()
    finally:
        pg_cluster.drop_database(name)


def test_db_init_takes_only_a_postgres_url(tmp_path: Any) -> None:
    done = run_nbchat("db", "init", "--admin", str(tmp_path / "x.sqlite"))
    assert done.returncode == 2 and "postgresql:// URL" in done.stderr


def test_a_users_kernel_on_an_uninitialised_database_is_told_to_run_db_init(
    pg_cluster: Any, pg_empty_database: str
) -> None:
    url = pg_cluster.url("alice", pg_empty_database)
    with connect(url) as db, pytest.raises(StoreError, match="no nbchat tables yet") as caught:
        check_schema(db, url)
    assert "nbchat db init --admin URL" in str(caught.value)
    assert tables(pg_cluster, pg_empty_database) == set()


def test_a_users_kernel_on_an_older_schema_is_told_to_run_db_init(
    pg_cluster: Any, pg_database: str
) -> None:
    with pg_cluster.superuser(pg_database) as db:
        db.execute("UPDATE nbchat.schema_version SET version = 1")
    url = pg_cluster.url("alice", pg_database)
    with connect(url) as db:
        assert schema_version(db) == 1
        with pytest.raises(StoreError, match="older than this nbchat needs") as caught:
            check_schema(db, url)
    assert "nbchat db init --admin URL" in str(caught.value)


def test_a_newer_schema_asks_to_upgrade_nbchat(pg_cluster: Any, pg_database: str) -> None:
    with pg_cluster.superuser(pg_database) as db:
        db.execute("UPDATE nbchat.schema_version SET version = 99")
    url = pg_cluster.url("alice", pg_database)
    with connect(url) as db, pytest.raises(StoreError, match="upgrade nbchat"):
        check_schema(db, url)


def test_an_unreachable_server_is_named_without_the_password(tmp_path: Any) -> None:
    url = f"postgresql://alice:s3cret@/nbchat?host={tmp_path}"
    with pytest.raises(StoreError) as caught:
        connect(url)
    text = str(caught.value)
    assert "Cannot reach the PostgreSQL server" in text and "nothing was stored" in text
    assert "s3cret" not in text and "alice@" in text


def test_urls_are_shown_without_their_password() -> None:
    assert redact_url("postgresql://bob:pw@db.example:5432/team") == (
        "postgresql://bob@db.example:5432/team"
    )
    assert "pw" not in redact_url("postgresql://bob@db/team?sslmode=require&password=pw")
    assert redact_url("postgresql://db/team") == "postgresql://db/team"
