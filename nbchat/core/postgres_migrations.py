"""The PostgreSQL schema: an append-only list of small functions, applied by an admin.

The tables mirror the SQLite ones (:mod:`nbchat.core.migrations`) in schema ``nbchat``,
with an ``owner`` column on every row (``DEFAULT current_user``) and row-level security
forced on, so each user's kernel, connected as its own role, sees and changes only its
own rows, caches included. A session can be shared read-only with a group role
(``session_shares``): its messages, attachments and stored files are then readable by
the group's members, never writable.

Only an admin role (the tables' owner) runs :func:`init_database`, through
``nbchat db init --admin URL``; a user's kernel only checks the version
(:func:`check_schema`) and is told to ask for that command when the database is not
ready. ``nbchat.schema_version`` holds the number of steps applied; each step runs with
its version bump in one transaction, under an advisory lock so two inits cannot race.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from nbchat.core.errors import StoreError
from nbchat.core.postgres import connect, redact_url

__all__ = [
    "MIGRATIONS",
    "SCHEMA",
    "USER_ROLE",
    "VECTOR_INDEX_DIMS",
    "check_schema",
    "init_database",
    "schema_version",
]

SCHEMA = "nbchat"
USER_ROLE = "nbchat_user"  # the group role that holds row access; each user is a member
# Embedding sizes that get an HNSW index at init (an index needs a fixed size): common
# embedding models' sizes, 640 being the default model's. Vectors of another size are
# still searched, exactly, without an index; `nbchat db init --embedding-dim N` adds one.
VECTOR_INDEX_DIMS = (384, 512, 640, 768, 1024, 1536)
# HNSW graph parameters, chosen with bench/bench_pgvector.py (docs/performance.md, 10):
# at 1M clustered 640-d vectors, ef_construction 128 gives recall@10 0.993 at
# ef_search 400 (64 gave 0.876) for 1.5x the build time. A database initialised before
# keeps its indexes; docs/team.md says how to rebuild them.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 128
_LOCK_KEY = 0x6E6263686174  # "nbchat": serialises concurrent inits

# Tables holding user content: every one has an owner and a policy scoping it to them.
OWNED_TABLES = (
    "sessions", "messages", "files", "attachments", "extracts", "path_hashes",
    "token_counts", "embeddings", "session_shares",
)

Connection = Any  # a psycopg.Connection (psycopg is optional, so not imported here)


def m001_core(db: Connection) -> None:
    """Sessions, messages, stored files, attachments and the caches, each row owned."""
    _run(db, """
        CREATE TABLE sessions (
            id TEXT PRIMARY KEY,
            owner NAME NOT NULL DEFAULT current_user,
            title TEXT NOT NULL DEFAULT '',
            notebook TEXT,
            system_prompt TEXT NOT NULL DEFAULT '',
            model TEXT,
            backend TEXT,
            parent_id TEXT REFERENCES sessions(id) ON DELETE SET NULL,
            history_start_seq INTEGER NOT NULL DEFAULT 0,
            carried_files TEXT NOT NULL DEFAULT '',
            compactions INTEGER NOT NULL DEFAULT 0,
            created DOUBLE PRECISION NOT NULL,
            updated DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX sessions_owner_notebook ON sessions(owner, notebook, updated);
        CREATE INDEX sessions_owner_updated ON sessions(owner, updated);

        CREATE TABLE messages (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            owner NAME NOT NULL DEFAULT current_user,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
            content TEXT NOT NULL,
            rendered TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'complete'
                CHECK (status IN ('complete', 'partial', 'error')),
            error_kind TEXT,
            error_message TEXT,
            importance DOUBLE PRECISION NOT NULL DEFAULT 0.5,
            tokens INTEGER,
            usage TEXT,
            timings TEXT,
            model TEXT,
            created DOUBLE PRECISION NOT NULL,
            UNIQUE (session_id, seq)
        );
        CREATE INDEX messages_owner_created ON messages(owner, created);

        CREATE TABLE files (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            owner NAME NOT NULL DEFAULT current_user,
            name TEXT NOT NULL,
            data BYTEA NOT NULL,
            sha256 TEXT NOT NULL,
            size_bytes BIGINT NOT NULL,
            mime TEXT NOT NULL DEFAULT 'application/octet-stream',
            created DOUBLE PRECISION NOT NULL,
            UNIQUE (owner, name)
        );
        CREATE INDEX files_owner_sha256 ON files(owner, sha256);

        CREATE TABLE attachments (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            owner NAME NOT NULL DEFAULT current_user,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            message_id BIGINT REFERENCES messages(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,
            name TEXT NOT NULL,
            path TEXT,
            sha256 TEXT NOT NULL,
            fingerprint TEXT,
            total_tokens INTEGER,
            kept_tokens INTEGER,
            forgotten BOOLEAN NOT NULL DEFAULT FALSE,
            created DOUBLE PRECISION NOT NULL,
            UNIQUE (session_id, kind, name, sha256)
        );
        CREATE INDEX attachments_message ON attachments(message_id);

        CREATE TABLE extracts (
            owner NAME NOT NULL DEFAULT current_user,
            sha256 TEXT NOT NULL,
            extractor_version TEXT NOT NULL,
            kind TEXT NOT NULL,
            text TEXT NOT NULL,
            notes TEXT NOT NULL DEFAULT '[]',
            sections TEXT,  -- located sections, JSON [unit, number, start, end, label]
            PRIMARY KEY (owner, sha256, extractor_version)
        );

        CREATE TABLE path_hashes (
            owner NAME NOT NULL DEFAULT current_user,
            path TEXT NOT NULL,
            size_bytes BIGINT NOT NULL,
            mtime_ns BIGINT NOT NULL,
            sha256 TEXT NOT NULL,
            PRIMARY KEY (owner, path)
        );

        CREATE TABLE token_counts (
            owner NAME NOT NULL DEFAULT current_user,
            sha256 TEXT NOT NULL,
            tokenizer TEXT NOT NULL,
            tokens INTEGER NOT NULL,
            PRIMARY KEY (owner, sha256, tokenizer)
        );
    """)


def m002_memory(db: Connection) -> None:
    """Word search (a stored ``tsvector`` with a GIN index) and the embedding vectors.

    ``embeddings.vector`` has no fixed size, so one model's vectors of any size fit; the
    HNSW indexes (cosine) are partial, one per size, on ``vector::vector(n)``. Its ids
    only grow, as in SQLite.
    """
    _run(db, """
        ALTER TABLE messages ADD COLUMN words tsvector
            GENERATED ALWAYS AS (to_tsvector('english', content)) STORED;
        CREATE INDEX messages_words ON messages USING gin (words);

        CREATE TABLE embeddings (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            owner NAME NOT NULL DEFAULT current_user,
            message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            chunk INTEGER NOT NULL,
            dim INTEGER NOT NULL,
            vector vector NOT NULL,
            created DOUBLE PRECISION NOT NULL,
            UNIQUE (message_id, model, chunk)
        );
        CREATE INDEX embeddings_owner_model ON embeddings(owner, model, id);
    """)
    for dim in VECTOR_INDEX_DIMS:
        create_vector_index(db, dim)


def m003_sharing(db: Connection) -> None:
    """Row-level security on every owned table, and read-only sharing with a group role.

    Each table's ``own`` policy lets its owner do anything to their rows and nothing
    else; rows that belong to a session may only be added to the writer's own sessions.
    ``session_shares`` names (session, group role) pairs; a member of the role may read
    that session, its messages and attachments, and the stored files those attachments
    name. Caches and embeddings are never shared: a cache hit must not reveal another
    user's document. A trigger refuses a share of a session its writer does not own.
    """
    _run(db, """
        CREATE TABLE session_shares (
            owner NAME NOT NULL DEFAULT current_user,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            grantee OID NOT NULL,
            created DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (session_id, grantee)
        );

        CREATE FUNCTION shared_session_ids() RETURNS SETOF TEXT
            LANGUAGE sql STABLE AS $$
                SELECT session_id FROM nbchat.session_shares
                WHERE pg_has_role(current_user, grantee, 'MEMBER')
            $$;

        CREATE FUNCTION check_share() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NOT EXISTS (SELECT 1 FROM nbchat.sessions
                           WHERE id = NEW.session_id AND owner = current_user) THEN
                RAISE EXCEPTION 'session % is not yours to share', NEW.session_id
                    USING ERRCODE = 'insufficient_privilege';
            END IF;
            RETURN NEW;
        END $$;
        CREATE TRIGGER session_shares_check BEFORE INSERT OR UPDATE ON session_shares
            FOR EACH ROW EXECUTE FUNCTION check_share();
    """)
    own_session = "session_id IN (SELECT id FROM sessions WHERE owner = current_user)"
    for table in OWNED_TABLES:
        check = "owner = current_user"
        if table in ("messages", "attachments"):
            check += f" AND {own_session}"
        _run(db, f"""
            ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
            ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
            CREATE POLICY own ON {table}
                USING (owner = current_user) WITH CHECK ({check});
        """)
    # ``= ANY (ARRAY(...))`` rather than ``IN (SELECT ...)``: the shared ids are then
    # computed once per query and the condition can use the (session_id, seq) index.
    shared = "session_id = ANY (ARRAY(SELECT shared_session_ids()))"
    _run(db, f"""
        CREATE POLICY shared ON sessions FOR SELECT
            USING (id = ANY (ARRAY(SELECT shared_session_ids())));
        CREATE POLICY shared ON messages FOR SELECT USING ({shared});
        CREATE POLICY shared ON attachments FOR SELECT USING ({shared});
        CREATE POLICY shared ON files FOR SELECT
            USING (EXISTS (
                SELECT 1 FROM attachments a
                WHERE a.owner = files.owner AND a.sha256 = files.sha256
                  AND a.{shared}
            ));
        CREATE POLICY member ON session_shares FOR SELECT
            USING (pg_has_role(current_user, grantee, 'MEMBER'));
    """)


def m004_word_search(db: Connection) -> None:
    """Word search through the GIN index, for the caller's own messages.

    Row-level security keeps a query's own conditions from using an index unless their
    functions are leakproof, and ``@@`` is not: as a user, a word search would read every
    row the user may see. ``word_hits`` runs as the tables' owner (who may read every
    message, through the ``owner_reads`` policy) and keeps the rows of the connected
    role (``session_user``, which a user cannot change), so the GIN index does the work.
    A message scores the BM25 weight (``idf``, floored at a millionth as in SQLite's FTS5)
    of each query word it holds, so a rare word outweighs any number of words found in
    most messages, as with SQLite's BM25. Recall searches one's
    own history only, never sessions shared by others.
    """
    _run(db, """
        CREATE POLICY owner_reads ON messages FOR SELECT TO CURRENT_USER USING (true);
        CREATE POLICY owner_reads ON sessions FOR SELECT TO CURRENT_USER USING (true);

        CREATE FUNCTION word_hits(
            terms text[], max_rows integer, only_session text, only_notebook text,
            other_than_session text, since double precision, until double precision
        ) RETURNS TABLE (id bigint, rank double precision)
        LANGUAGE sql STABLE SECURITY DEFINER SET search_path = nbchat, pg_catalog AS $$
            WITH mine AS (
                SELECT count(*) AS total FROM nbchat.messages WHERE owner = session_user
            ), weighted AS (
                SELECT t.q, greatest(ln((mine.total - d.n + 0.5) / (d.n + 0.5)), 0.000001) AS idf
                FROM (SELECT plainto_tsquery('english', term) AS q
                      FROM unnest(terms) AS term) t
                CROSS JOIN mine
                CROSS JOIN LATERAL (
                    SELECT count(*) AS n FROM nbchat.messages
                    WHERE words @@ t.q AND owner = session_user
                ) d
                WHERE numnode(t.q) > 0
            )
            SELECT m.id, sum(w.idf)::double precision AS rank
            FROM nbchat.messages m JOIN weighted w ON m.words @@ w.q
            WHERE m.owner = session_user
              AND (only_session IS NULL OR m.session_id = only_session)
              AND (other_than_session IS NULL OR m.session_id <> other_than_session)
              AND (since IS NULL OR m.created >= since)
              AND (until IS NULL OR m.created < until)
              AND (only_notebook IS NULL OR m.session_id IN (
                    SELECT s.id FROM nbchat.sessions s
                    WHERE s.notebook = only_notebook AND s.owner = session_user))
            GROUP BY m.id
            ORDER BY rank DESC, m.id DESC
            LIMIT max_rows
        $$;
        REVOKE EXECUTE ON FUNCTION word_hits FROM PUBLIC;
    """)


def m005_file_chunks(db: Connection) -> None:
    """Large files' chunks with a word index, and which chunks each message sent.

    Like the other caches, ``file_chunks`` is each user's own (a hit must not reveal
    another user's document): ``owner`` plus the ``own`` policy. The chunks of one file
    are found by (owner, sha256, version) first, so ranking them needs no GIN scan under
    row-level security; the GIN index serves any search across files. ``chunk_vectors``
    holds the chunks' embeddings (pgvector, any size), the user's own too.
    """
    _run(db, """
        CREATE TABLE file_chunks (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            owner NAME NOT NULL DEFAULT current_user,
            sha256 TEXT NOT NULL,
            extractor_version TEXT NOT NULL,
            idx INTEGER NOT NULL,
            start INTEGER NOT NULL,
            stop INTEGER NOT NULL,
            label TEXT NOT NULL,
            text TEXT NOT NULL,
            words tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED,
            UNIQUE (owner, sha256, extractor_version, idx)
        );
        CREATE INDEX file_chunks_words ON file_chunks USING gin (words);

        CREATE TABLE sent_chunks (
            owner NAME NOT NULL DEFAULT current_user,
            session_id TEXT NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            message_id BIGINT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
            sha256 TEXT NOT NULL,
            idx INTEGER NOT NULL,
            PRIMARY KEY (message_id, sha256, idx)
        );
        CREATE INDEX sent_chunks_session ON sent_chunks(session_id);

        CREATE TABLE chunk_vectors (
            owner NAME NOT NULL DEFAULT current_user,
            chunk_id BIGINT NOT NULL REFERENCES file_chunks(id) ON DELETE CASCADE,
            model TEXT NOT NULL,
            dim INTEGER NOT NULL,
            vector vector NOT NULL,
            PRIMARY KEY (chunk_id, model)
        );
    """)
    own_session = "session_id IN (SELECT id FROM sessions WHERE owner = current_user)"
    for table, check in (
        ("file_chunks", "owner = current_user"),
        ("chunk_vectors", "owner = current_user"),
        ("sent_chunks", f"owner = current_user AND {own_session}"),
    ):
        _run(db, f"""
            ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
            ALTER TABLE {table} FORCE ROW LEVEL SECURITY;
            CREATE POLICY own ON {table} USING (owner = current_user) WITH CHECK ({check});
        """)


def m006_chunk_text_once(db: Connection) -> None:
    """The chunk index keeps offsets into the extraction, not a second copy of its text.

    A chunk's text is ``extracts.text[start:stop]`` of the same owner's extraction
    (:mod:`nbchat.core.chunk_texts`), so ``file_chunks.text`` doubled what a large file
    costs on disk. ``words`` stops being generated from ``text`` and becomes a plain
    column, which keeps the values it holds (computed from the very slices the store now
    passes at insert time) and its GIN index; then ``text`` goes. Chunks whose owner has
    no such extraction (none should exist) are dropped, to be indexed again with it:
    row-level security is lifted for that one statement, as the admin reads every
    user's rows, and forced again.
    """
    _run(db, """
        ALTER TABLE file_chunks NO FORCE ROW LEVEL SECURITY;
        ALTER TABLE extracts NO FORCE ROW LEVEL SECURITY;
        DELETE FROM file_chunks c WHERE NOT EXISTS (
            SELECT 1 FROM extracts e WHERE e.owner = c.owner AND e.sha256 = c.sha256
            AND e.extractor_version = c.extractor_version
        );
        ALTER TABLE extracts FORCE ROW LEVEL SECURITY;
        ALTER TABLE file_chunks FORCE ROW LEVEL SECURITY;
        ALTER TABLE file_chunks ALTER COLUMN words DROP EXPRESSION;
        ALTER TABLE file_chunks ALTER COLUMN words SET NOT NULL;
        ALTER TABLE file_chunks DROP COLUMN text;
    """)


Migration = Callable[[Connection], None]

MIGRATIONS: list[Migration] = [
    m001_core,
    m002_memory,
    m003_sharing,
    m004_word_search,
    m005_file_chunks,
    m006_chunk_text_once,
]


def create_vector_index(db: Connection, dim: int) -> None:
    """An HNSW cosine index over the vectors of size ``dim`` (kept if it exists)."""
    if not 1 <= dim <= 2000:
        raise StoreError(f"An HNSW index holds vectors of 1 to 2000 dimensions, not {dim}.")
    db.execute(
        f"CREATE INDEX IF NOT EXISTS embeddings_hnsw_{dim} ON embeddings "
        f"USING hnsw ((vector::vector({dim})) vector_cosine_ops) "
        f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION}) WHERE dim = {dim}"
    )


def schema_version(db: Connection) -> int | None:
    """The number of steps applied, or None when ``nbchat`` tables were never made here."""
    exists = db.execute("SELECT to_regclass(%s)", (f"{SCHEMA}.schema_version",)).fetchone()[0]
    if exists is None:
        return None
    row = db.execute(f"SELECT version FROM {SCHEMA}.schema_version").fetchone()
    return int(row[0]) if row else 0


def check_schema(db: Connection, url: str) -> None:
    """Refuse a database a user's kernel cannot use as it is, naming who fixes it how."""
    version = schema_version(db)
    init = f"an admin runs `nbchat db init --admin URL` on {redact_url(url)}"
    if version is None:
        raise StoreError(
            f"The PostgreSQL database {redact_url(url)} has no nbchat tables yet: {init} "
            "(see docs/team.md). A user's kernel never creates them."
        )
    if version < len(MIGRATIONS):
        raise StoreError(
            f"The nbchat tables in {redact_url(url)} are at version {version}, older than "
            f"this nbchat needs ({len(MIGRATIONS)}): {init} to upgrade them."
        )
    if version > len(MIGRATIONS):
        raise StoreError(
            f"The nbchat tables in {redact_url(url)} are at version {version}, newer than "
            f"this nbchat knows ({len(MIGRATIONS)}): upgrade nbchat."
        )


def init_database(
    admin_url: str, *, extra_vector_dims: Iterable[int] = (), report: Callable[[str], None] = print
) -> int:
    """Create or upgrade the nbchat tables as the admin role; return the steps applied.

    Idempotent: a database already at this version only gets its grants re-applied (and
    any new vector index). Refuses a role that cannot own the tables.
    """
    with connect(admin_url) as db:
        _require_admin(db, admin_url)
        _ensure_vector_extension(db, admin_url)
        db.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        db.execute(f"SET search_path TO {SCHEMA}, public")
        applied = 0
        with db.transaction():
            db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
            )
            if db.execute("SELECT count(*) FROM schema_version").fetchone()[0] == 0:
                db.execute("INSERT INTO schema_version VALUES (0)")
        while True:
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
                version = schema_version(db) or 0
                if version > len(MIGRATIONS):
                    raise StoreError(
                        f"The nbchat tables in {redact_url(admin_url)} are at version "
                        f"{version}, newer than this nbchat knows ({len(MIGRATIONS)}): "
                        "upgrade nbchat before running `nbchat db init`."
                    )
                if version == len(MIGRATIONS):
                    break
                step = MIGRATIONS[version]
                report(f"nbchat: applying {step.__name__} ({version + 1}/{len(MIGRATIONS)})")
                step(db)
                db.execute("UPDATE schema_version SET version = %s", (version + 1,))
                applied += 1
        with db.transaction():
            for dim in extra_vector_dims:
                create_vector_index(db, dim)
            _grant_user_role(db, admin_url)
        return applied


def _require_admin(db: Connection, url: str) -> None:
    """The admin must be able to create the schema (or already own it)."""
    row = db.execute(
        "SELECT has_database_privilege(current_database(), 'CREATE'), "
        "(SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = %s), "
        "current_user",
        (SCHEMA,),
    ).fetchone()
    can_create, schema_owner, role = row
    if schema_owner is not None and schema_owner != role and not _is_superuser(db):
        raise StoreError(
            f"The role {role} does not own the nbchat tables in {redact_url(url)} (their "
            f"owner is {schema_owner}): run `nbchat db init --admin URL` with that role's URL."
        )
    if schema_owner is None and not can_create:
        raise StoreError(
            f"The role {role} cannot create tables in {redact_url(url)}: `nbchat db init` "
            "needs an admin role that owns the database or has CREATE on it, not a user's "
            "role (see docs/team.md)."
        )


def _is_superuser(db: Connection) -> bool:
    return bool(db.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
                .fetchone()[0])


def _ensure_vector_extension(db: Connection, url: str) -> None:
    import psycopg

    installed = db.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone()
    if installed:
        return
    try:
        db.execute("CREATE EXTENSION IF NOT EXISTS vector")
    except psycopg.Error as exc:
        raise StoreError(
            f"The pgvector extension is not installed in {redact_url(url)} and this role "
            f"cannot install it ({str(exc).strip().splitlines()[0]}): a superuser runs "
            "`CREATE EXTENSION vector;` in that database (the pgvector package of the "
            "server must be installed), then run `nbchat db init` again."
        ) from exc


def _grant_user_role(db: Connection, url: str) -> None:
    """Row access for the users' group role: read and write rows, never change tables."""
    import psycopg

    exists = db.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (USER_ROLE,)).fetchone()
    if not exists:
        try:
            with db.transaction():
                db.execute(f"CREATE ROLE {USER_ROLE} NOLOGIN")
        except psycopg.Error as exc:
            raise StoreError(
                f"The group role {USER_ROLE} does not exist and this role cannot create it "
                f"({str(exc).strip().splitlines()[0]}): a superuser runs "
                f"`CREATE ROLE {USER_ROLE} NOLOGIN;`, then run `nbchat db init` again."
            ) from exc
    _run(db, f"""
        GRANT USAGE ON SCHEMA {SCHEMA} TO {USER_ROLE};
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {SCHEMA} TO {USER_ROLE};
        REVOKE INSERT, UPDATE, DELETE ON {SCHEMA}.schema_version FROM {USER_ROLE};
        GRANT USAGE ON ALL SEQUENCES IN SCHEMA {SCHEMA} TO {USER_ROLE};
        GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA {SCHEMA} TO {USER_ROLE};
    """)


def _run(db: Connection, script: str) -> None:
    """Run a script of statements, one by one (no statement holds a ``;`` in a string)."""
    for statement in _statements(script):
        db.execute(statement)


def _statements(script: str) -> list[str]:
    """Split on ``;`` at the end of a line, keeping ``$$`` bodies whole."""
    statements: list[str] = []
    buffer: list[str] = []
    in_body = False
    for line in script.splitlines():
        buffer.append(line)
        in_body ^= line.count("$$") % 2 == 1
        if not in_body and line.rstrip().endswith(";"):
            text = "\n".join(buffer).strip().rstrip(";").strip()
            if text:
                statements.append(text)
            buffer = []
    rest = "\n".join(buffer).strip().rstrip(";").strip()
    if rest:
        statements.append(rest)
    return statements
