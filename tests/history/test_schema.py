"""The run store's schema: numbered migrations, applied once each, and refusing what it cannot read."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from subagents.history.schema import MIGRATIONS, StoreError, migrate, version_of
from subagents.history.store import RunInput, RunStore


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


def test_migrations_are_recorded_once_and_reopening_is_idempotent(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    with RunStore(path, now=fixed_clock) as store:
        run_id = store.create_run(agent="a", model="m", input=RunInput(task="t"))
    RunStore(path).close()
    RunStore(path).close()
    with raw(path) as conn:
        rows = conn.execute("SELECT version, name, applied_at FROM schema_migrations").fetchall()
    assert rows == [(version_of(m), m.__name__, "2026-03-01T12:00:00+00:00") for m in MIGRATIONS]
    assert rows[0][:2] == (1, "m001_initial")
    with RunStore(path) as store:
        assert store.get(run_id).input.task == "t"


def test_migration_versions_follow_their_order() -> None:
    assert [version_of(m) for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_reopening_applies_only_the_new_migrations(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    RunStore(path).close()
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


def test_a_store_from_a_newer_subagents_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    RunStore(path).close()
    with raw(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'm099_future', '2030-01-01')")
    with pytest.raises(StoreError, match=r"newer subagents \(schema version 99.*Upgrade subagents"):
        RunStore(path)


def test_a_file_that_is_not_a_database_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(b"not sqlite " * 200)
    with pytest.raises(StoreError, match="not a subagents run store"):
        RunStore(path)
