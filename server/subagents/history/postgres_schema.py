"""The PostgreSQL run store's schema: the same numbered migrations as the SQLite store's (`schema.py`),
in PostgreSQL's dialect, applied in one transaction under an advisory lock, so two replicas starting
at once do not race: the second waits, then finds nothing left to do.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import TupleRow, tuple_row

from subagents.history.schema import newer_schema_error

PgMigration = tuple[str, str]  # (name, SQL); the number in the name is the version
# Any fixed 64-bit number works; this one spells "subagent" in ASCII.
MIGRATION_LOCK = 0x7375626167656E74

PG_MIGRATIONS: tuple[PgMigration, ...] = (
    (
        "m001_initial",
        """
        CREATE TABLE runs (
            seq BIGINT GENERATED ALWAYS AS IDENTITY,  -- insertion order, to break created_at ties
            id TEXT PRIMARY KEY,
            agent TEXT NOT NULL,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            input_json TEXT NOT NULL,  -- text, not jsonb: jsonb refuses the \\u0000 a task may hold
            task TEXT NOT NULL DEFAULT '',  -- the input's task, for listings
            report TEXT,
            error TEXT,
            input_tokens BIGINT NOT NULL DEFAULT 0,
            output_tokens BIGINT NOT NULL DEFAULT 0,
            cache_read_input_tokens BIGINT NOT NULL DEFAULT 0,
            cache_creation_input_tokens BIGINT NOT NULL DEFAULT 0,
            cost_usd DOUBLE PRECISION,
            turns INTEGER NOT NULL DEFAULT 0,
            stop_reason TEXT,
            created_at TIMESTAMPTZ NOT NULL,
            finished_at TIMESTAMPTZ,
            parent_id TEXT REFERENCES runs(id) ON DELETE SET NULL,
            client TEXT,
            continued_from TEXT REFERENCES runs(id) ON DELETE SET NULL
        );
        CREATE TABLE messages (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL,
            content_json TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
        );
        CREATE INDEX runs_created_at ON runs(created_at, seq);
        CREATE INDEX runs_agent ON runs(agent);
        CREATE INDEX runs_status ON runs(status);
        """,
    ),
    ("m002_run_owner", "ALTER TABLE runs ADD COLUMN owner TEXT"),
    ("m003_run_diff", "ALTER TABLE runs ADD COLUMN diff TEXT"),
    (
        "m004_run_principal",
        """
        ALTER TABLE runs ADD COLUMN principal TEXT;
        CREATE INDEX runs_principal ON runs(principal, created_at);
        """,
    ),
    (
        "m005_run_leases",
        """
        ALTER TABLE runs ADD COLUMN lease_expires_at TIMESTAMPTZ;
        ALTER TABLE runs ADD COLUMN cancel_requested_at TIMESTAMPTZ;
        CREATE INDEX runs_running_owner ON runs(owner) WHERE status = 'running';
        CREATE INDEX runs_parent ON runs(parent_id);
        """,
    ),
    (
        "m006_tasks",
        """
        CREATE TABLE tasks (
            id TEXT PRIMARY KEY,
            parent_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            agent TEXT NOT NULL,
            input_json TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            max_attempts INTEGER NOT NULL,
            owner TEXT,
            lease_expires_at TIMESTAMPTZ,
            run_id TEXT REFERENCES runs(id) ON DELETE SET NULL,
            result TEXT,
            error TEXT,
            created_at TIMESTAMPTZ NOT NULL,
            claimed_at TIMESTAMPTZ,
            finished_at TIMESTAMPTZ,
            UNIQUE (parent_id, seq)
        );
        CREATE INDEX tasks_queued ON tasks(parent_id, seq) WHERE status = 'queued';
        CREATE INDEX tasks_running_owner ON tasks(owner) WHERE status = 'running';
        """,
    ),
    (
        "m007_run_backend",
        """
        ALTER TABLE runs ADD COLUMN backend TEXT;
        ALTER TABLE runs ADD COLUMN billed_to TEXT;
        """,
    ),
)


def pg_version_of(migration: PgMigration) -> int:
    return int(migration[0].split("_", 1)[0].removeprefix("m"))


async def pg_migrate(
    conn: AsyncConnection[TupleRow],
    *,
    now: Callable[[], datetime],
    where: str,
    migrations: tuple[PgMigration, ...] = PG_MIGRATIONS,
) -> list[int]:
    """Bring the database up to date in one transaction; return the versions applied now.

    Raises:
        StoreError: the database records a version newer than `migrations` knows.
    """
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL)"
        )
        found = set(await pg_applied_versions(conn) or ())
        known = max(pg_version_of(m) for m in migrations)
        if found and max(found) > known:
            raise newer_schema_error(where, max(found), known)
        for migration in migrations:
            version = pg_version_of(migration)
            if version in found:
                continue
            await conn.execute(migration[1].encode())  # bytes: a script of several statements, no parameters
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (%s, %s, %s)",
                (version, migration[0], now().replace(microsecond=0)),
            )
            applied.append(version)
    return applied


async def pg_applied_versions(conn: AsyncConnection[Any]) -> list[int] | None:
    """The versions the database records; None when it has no schema table yet."""
    cursor = conn.cursor(row_factory=tuple_row)
    await cursor.execute("SELECT to_regclass('schema_migrations') IS NOT NULL")
    row = await cursor.fetchone()
    if row is None or not row[0]:
        return None
    await cursor.execute("SELECT version FROM schema_migrations ORDER BY version")
    return [int(v) for (v,) in await cursor.fetchall()]
