"""The run store's schema: numbered migrations, the same on both stores, applied once each (also when
several processes open a new store at once), and refusing a schema from a newer subagents."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import anyio
import psycopg
import pytest

from subagents.history.postgres_schema import PG_MIGRATIONS, pg_version_of
from subagents.history.schema import MIGRATIONS, StoreError, migrate, version_of
from subagents.history.store import RunInput, store_for
from tests.stores import postgres_schema

pytestmark = pytest.mark.anyio
LATEST = version_of(MIGRATIONS[-1])


def fixed_clock() -> datetime:
    return datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A second, independent connection: what another process would see."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


def recorded(location: str) -> list[tuple[int, str]]:
    if location.startswith("postgresql://"):
        with psycopg.connect(location) as conn:
            return conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    with raw(Path(location)) as conn:
        return conn.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()


def test_both_stores_know_the_same_migrations_in_order() -> None:
    assert [version_of(m) for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))
    assert [m.__name__ for m in MIGRATIONS] == [name for name, _ in PG_MIGRATIONS]
    assert [pg_version_of(m) for m in PG_MIGRATIONS] == [version_of(m) for m in MIGRATIONS]


async def test_migrations_are_recorded_once_and_reopening_is_idempotent(store_location: str) -> None:
    async with store_for(store_location, now=fixed_clock) as store:
        assert store.applied == list(range(1, LATEST + 1))  # type: ignore[attr-defined]
        run_id = await store.create_run(agent="a", model="m", input=RunInput(task="t"))
    for _ in range(2):
        async with store_for(store_location) as store:
            assert store.applied == []  # type: ignore[attr-defined]
    assert recorded(store_location) == [(version_of(m), m.__name__) for m in MIGRATIONS]
    async with store_for(store_location) as store:
        assert (await store.get(run_id)).input.task == "t"
        status = await store.schema_status()
    assert (status.exists, status.version, status.latest, status.pending, status.newer) == (
        True,
        LATEST,
        LATEST,
        (),
        False,
    )


async def test_several_processes_opening_a_new_store_at_once_migrate_it_once(store_location: str) -> None:
    opened: list[list[int]] = []

    async def open_one() -> None:
        store = store_for(store_location)
        async with store:
            opened.append(store.applied)  # type: ignore[attr-defined]

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(open_one)
    # Each version applied by exactly one of them (SQLite: one transaction per migration, so the work may
    # be shared; PostgreSQL: all in one transaction under the advisory lock).
    assert sorted(v for applied in opened for v in applied) == list(range(1, LATEST + 1))
    assert recorded(store_location) == [(version_of(m), m.__name__) for m in MIGRATIONS]


async def test_a_store_not_yet_migrated_reports_what_is_pending(store_location: str) -> None:
    async with store_for(store_location, migrate=False) as store:
        status = await store.schema_status()
    assert (status.exists, status.version) == (False, None)
    assert status.pending == tuple(m.__name__ for m in MIGRATIONS)


def test_sqlite_reopening_applies_only_the_new_migrations(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    anyio.run(lambda: _open_and_close(path))
    calls: list[int] = []
    new = len(MIGRATIONS) + 1

    def add_note(conn: sqlite3.Connection) -> None:
        calls.append(new)
        conn.execute("ALTER TABLE runs ADD COLUMN note TEXT")

    add_note.__name__ = f"m{new:03d}_add_note"  # the number in the name is the version
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        assert migrate(conn, now=fixed_clock, where="test", migrations=(*MIGRATIONS, add_note)) == [new]
        assert migrate(conn, now=fixed_clock, where="test", migrations=(*MIGRATIONS, add_note)) == []
        versions = conn.execute("SELECT version FROM schema_migrations ORDER BY version").fetchall()
    finally:
        conn.close()
    assert calls == [new]
    assert versions == [(v,) for v in range(1, new + 1)]


async def _open_and_close(location: str | Path) -> None:
    async with store_for(location):
        pass


async def test_a_store_from_a_newer_subagents_is_refused_clearly(store_location: str) -> None:
    await _open_and_close(store_location)
    if store_location.startswith("postgresql://"):
        with psycopg.connect(store_location, autocommit=True) as conn:
            conn.execute("INSERT INTO schema_migrations VALUES (99, 'm099_future', now())")
    else:
        with raw(Path(store_location)) as conn:
            conn.execute("INSERT INTO schema_migrations VALUES (99, 'm099_future', '2030-01-01')")
    with pytest.raises(StoreError, match=r"newer subagents \(schema version 99.*Upgrade subagents"):
        await _open_and_close(store_location)
    async with store_for(store_location, migrate=False) as store:
        assert (await store.schema_status()).newer


async def test_an_unreachable_postgres_is_one_clear_error() -> None:
    with pytest.raises(
        StoreError, match=r"Cannot connect to the PostgreSQL run store postgresql://u:\*\*\*@127\.0\.0\.1:1/db"
    ):
        await _open_and_close("postgresql://u:secret@127.0.0.1:1/db?connect_timeout=2")


async def test_a_postgres_migration_that_fails_leaves_the_schema_as_it_was() -> None:
    from subagents.history.postgres_schema import pg_migrate

    with postgres_schema() as url:
        broken = (*PG_MIGRATIONS[:2], ("m003_broken", "ALTER TABLE runs ADD COLUMN diff TEXT; SELECT 1/0"))
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
            with pytest.raises(psycopg.errors.DivisionByZero):
                await pg_migrate(conn, now=fixed_clock, where=url, migrations=broken)
            cursor = await conn.execute("SELECT to_regclass('runs'), to_regclass('schema_migrations')")
            assert await cursor.fetchone() == (None, None)  # one transaction: nothing half-done
