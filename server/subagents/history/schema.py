"""The SQLite run store's schema, as numbered migrations (the idea comes from simonw/llm's `migrations.py`).

Each migration is a plain function `mNNN_name(conn)`; `MIGRATIONS` lists them in order and NNN is
the schema version it brings the database to. `migrate` applies the ones a database has not
recorded, each in its own transaction, so a crash half way leaves the database at a known version.
Never edit a released migration: add the next one, here and in `postgres_schema.py` under the same
number and name, so both stores stay at the same version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from subagents.history.records import StoreError

__all__ = ["MIGRATIONS", "Migration", "StoreError", "applied_versions", "immediate", "migrate", "version_of"]

Migration = Callable[[sqlite3.Connection], None]


def m001_initial(conn: sqlite3.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            agent TEXT NOT NULL,
            model TEXT NOT NULL,
            status TEXT NOT NULL,
            input_json TEXT NOT NULL,
            report TEXT,
            error TEXT,
            input_tokens INTEGER NOT NULL DEFAULT 0,
            output_tokens INTEGER NOT NULL DEFAULT 0,
            cache_read_input_tokens INTEGER NOT NULL DEFAULT 0,
            cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
            cost_usd REAL,
            turns INTEGER NOT NULL DEFAULT 0,
            stop_reason TEXT,
            created_at TEXT NOT NULL,
            finished_at TEXT,
            parent_id TEXT REFERENCES runs(id) ON DELETE SET NULL,
            client TEXT,
            continued_from TEXT REFERENCES runs(id) ON DELETE SET NULL
        )
        """
    )
    conn.execute(
        """
        CREATE TABLE messages (
            run_id TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
            seq INTEGER NOT NULL,
            role TEXT NOT NULL,
            content_json TEXT NOT NULL,
            PRIMARY KEY (run_id, seq)
        )
        """
    )
    conn.execute("CREATE INDEX runs_created_at ON runs(created_at)")
    conn.execute("CREATE INDEX runs_agent ON runs(agent)")
    conn.execute("CREATE INDEX runs_status ON runs(status)")


def m002_run_owner(conn: sqlite3.Connection) -> None:
    # Which process runs a `running` run, so a new server only marks runs of dead processes interrupted.
    conn.execute("ALTER TABLE runs ADD COLUMN owner TEXT")


def m003_run_diff(conn: sqlite3.Connection) -> None:
    # The unified diff a writing agent (test-writer) produced in its isolated copy.
    conn.execute("ALTER TABLE runs ADD COLUMN diff TEXT")


def m004_run_principal(conn: sqlite3.Connection) -> None:
    # Who asked for the run, so one principal's reads never show another's runs.
    conn.execute("ALTER TABLE runs ADD COLUMN principal TEXT")
    conn.execute("CREATE INDEX runs_principal ON runs(principal, created_at)")


def m005_run_leases(conn: sqlite3.Connection) -> None:
    # The owner renews a lease while it executes the run; another process may ask it to cancel.
    conn.execute("ALTER TABLE runs ADD COLUMN lease_expires_at TEXT")
    conn.execute("ALTER TABLE runs ADD COLUMN cancel_requested_at TEXT")
    conn.execute("CREATE INDEX runs_running_owner ON runs(owner) WHERE status = 'running'")
    conn.execute("CREATE INDEX runs_parent ON runs(parent_id)")


def m006_tasks(conn: sqlite3.Connection) -> None:
    # A queue of independent tasks under a parent run, claimed by workers of any process.
    conn.execute(
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
            lease_expires_at TEXT,
            run_id TEXT REFERENCES runs(id) ON DELETE SET NULL,
            result TEXT,
            error TEXT,
            created_at TEXT NOT NULL,
            claimed_at TEXT,
            finished_at TEXT,
            UNIQUE (parent_id, seq)
        )
        """
    )
    conn.execute("CREATE INDEX tasks_queued ON tasks(parent_id, seq) WHERE status = 'queued'")
    conn.execute("CREATE INDEX tasks_running_owner ON tasks(owner) WHERE status = 'running'")


def m007_run_backend(conn: sqlite3.Connection) -> None:
    # Which backend ran the run (anthropic or claude-code) and who paid for it, in words.
    conn.execute("ALTER TABLE runs ADD COLUMN backend TEXT")
    conn.execute("ALTER TABLE runs ADD COLUMN billed_to TEXT")


MIGRATIONS: tuple[Migration, ...] = (
    m001_initial,
    m002_run_owner,
    m003_run_diff,
    m004_run_principal,
    m005_run_leases,
    m006_tasks,
    m007_run_backend,
)


def version_of(migration: Migration) -> int:
    """`m001_initial` -> 1."""
    return int(migration.__name__.split("_", 1)[0].removeprefix("m"))


def migrate(
    conn: sqlite3.Connection,
    *,
    now: Callable[[], datetime],
    where: str,
    migrations: tuple[Migration, ...] = MIGRATIONS,
) -> list[int]:
    """Bring `conn` (autocommit mode) up to date; return the versions applied now.

    Raises:
        StoreError: the database records a version newer than `migrations` knows.
    """
    with immediate(conn):
        conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER, name TEXT, applied_at TEXT)")
    _refuse_newer(conn, where, migrations)
    applied: list[int] = []
    for migration in migrations:
        version = version_of(migration)
        with immediate(conn):
            # Re-read inside the write lock: another process may have migrated since we looked.
            if conn.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (version,)).fetchone():
                continue
            migration(conn)
            conn.execute(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                (version, migration.__name__, now().astimezone(UTC).isoformat(timespec="seconds")),
            )
            applied.append(version)
    return applied


def applied_versions(conn: sqlite3.Connection) -> list[int] | None:
    """The versions the database records; None when it has no schema table yet."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'")
    if exists.fetchone() is None:
        return None
    return [int(v) for (v,) in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]


def _refuse_newer(conn: sqlite3.Connection, where: str, migrations: tuple[Migration, ...]) -> None:
    found = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
    known = max(version_of(m) for m in migrations)
    if found is not None and int(found) > known:
        raise newer_schema_error(where, int(found), known)


def newer_schema_error(where: str, found: int, known: int) -> StoreError:
    return StoreError(
        f"The run store {where} was created by a newer subagents (schema version {found}; this "
        f"version knows up to {known}). Upgrade subagents, or set SUBAGENTS_STORE to another store."
    )


@contextmanager
def immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction. IMMEDIATE takes the write lock up front, so read-then-write is safe."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
