"""Picking a store by location, and keeping PostgreSQL's driver out of processes that do not use it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from subagents.history.store import SQLiteRunStore, StoreError, store_for


def test_a_path_is_sqlite_and_a_postgresql_url_is_postgres(tmp_path: Path) -> None:
    assert isinstance(store_for(f"{tmp_path}/runs.db"), SQLiteRunStore)
    store = store_for("postgresql://user:secret@db.internal:5432/runs")
    assert type(store).__name__ == "PostgresRunStore"
    assert store.where == "postgresql://user:***@db.internal:5432/runs"  # no password in messages
    assert type(store_for("postgres://db.internal/runs")).__name__ == "PostgresRunStore"


def test_an_unknown_scheme_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match=r"Unknown run store URL scheme 'mysql'.*postgresql://") as caught:
        store_for("mysql://root:pw@db/runs")
    assert "pw" not in str(caught.value)


def test_the_sqlite_store_does_not_import_psycopg() -> None:
    code = (
        "import sys, anyio\n"
        "from subagents.history.store import store_for\n"
        "from subagents.app import Subagents\n"
        "async def main():\n"
        "    async with store_for(':memory:') as s: await s.list()\n"
        "anyio.run(main)\n"
        "print(sorted(m for m in sys.modules if m.startswith('psycopg')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
