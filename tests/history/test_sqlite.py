"""What only the SQLite store does: a private WAL file, refusing a file that is not a store, where the
file lives by default, and several processes appending to one file."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from subagents.history.store import RunInput, SQLiteRunStore, StoreError, default_location
from tests.history.helpers import text

pytestmark = pytest.mark.anyio


async def test_the_file_store_uses_wal_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "runs.db"
    async with SQLiteRunStore(path):
        pass
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        conn.close()
    assert path.stat().st_mode & 0o777 == 0o600


async def test_a_file_that_is_not_a_database_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    path.write_bytes(b"not sqlite " * 200)
    with pytest.raises(StoreError, match="not a subagents run store"):
        async with SQLiteRunStore(path):
            pass


async def test_the_memory_store_works_for_tests() -> None:
    async with SQLiteRunStore(":memory:") as store:
        run_id = await store.create_run(agent="a", model="m", input=RunInput(task="t"))
        assert (await store.get(run_id)).status == "running"


async def test_appends_from_several_processes_to_one_run_land_gapless_and_in_order(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    writers, appends = 4, 40
    async with SQLiteRunStore(path) as first:
        run_id = await first.create_run(agent="a", model="m", input=RunInput(task="t"))

        async def work(store: SQLiteRunStore, w: int) -> None:
            for i in range(appends):
                await store.append_messages(run_id, [text("user", f"{w}:{i}")])
                await anyio.lowlevel.checkpoint()
            await store.flush()

        # Separate store instances: separate connections and writers, as separate processes have.
        others = [SQLiteRunStore(path) for _ in range(writers)]
        async with others[0], others[1], others[2], others[3], anyio.create_task_group() as tg:
            for w, store in enumerate(others):
                tg.start_soon(work, store, w)
        bodies = [m.text for m in (await first.get(run_id)).transcript]
    conn = sqlite3.connect(path)
    try:
        seqs = [s for (s,) in conn.execute("SELECT seq FROM messages WHERE run_id = ? ORDER BY seq", (run_id,))]
    finally:
        conn.close()
    assert seqs == list(range(writers * appends))
    for w in range(writers):  # each writer's messages keep their order
        assert [b for b in bodies if b.startswith(f"{w}:")] == [f"{w}:{i}" for i in range(appends)]


def test_default_location_prefers_subagents_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("SUBAGENTS_STORE", str(tmp_path / "mine.db"))
    assert default_location() == str(tmp_path / "mine.db")
    monkeypatch.setenv("SUBAGENTS_STORE", "postgresql://db.internal/runs")
    assert default_location() == "postgresql://db.internal/runs"


def test_default_location_uses_xdg_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_location() == str(tmp_path / "xdg" / "subagents" / "runs.db")


@pytest.mark.parametrize("xdg", [None, "", "relative/dir"])
def test_default_location_falls_back_to_local_share(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xdg: str | None
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_DATA_HOME", xdg)
    assert default_location() == str(tmp_path / ".local" / "share" / "subagents" / "runs.db")
