"""What only the SQLite store does: a private WAL file, refusing a file that is not a store, where the
file lives by default, several processes appending to one file, and where a batch runs: a run's small
writes on the event loop, anything that would wait for another process's lock in the store's thread,
and WAL checkpoints off the loop."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import anyio
import pytest

from subagents.history import sqlite as sqlite_store
from subagents.history.store import RunInput, SQLiteRunStore, StoreError, default_location
from subagents.messages import Usage
from tests.history.helpers import text
from tests.test_imports import ticking

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


async def test_a_runs_small_writes_commit_on_the_event_loop_and_a_large_turn_in_the_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_thread: list[str] = []
    apply_in_thread = SQLiteRunStore._apply

    def spy(self: SQLiteRunStore, batch: list[sqlite_store.Job[sqlite_store.Work]]) -> None:
        in_thread.extend(job.label for job in batch)
        apply_in_thread(self, batch)

    monkeypatch.setattr(SQLiteRunStore, "_apply", spy)
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        run_id = await store.create_run(agent="a", model="m", input=RunInput(task="t"), messages=[text("user", "t")])
        await store.record_turn(run_id, [text("assistant", "done")], turns=1, usage=Usage(), cost_usd=None)
        await store.finish(
            run_id, status="completed", report="done", error=None, usage=Usage(), cost_usd=None, turns=1,
            stop_reason="end_turn",
        )  # fmt: skip
        assert in_thread == []  # start, turn and end: no hop to the thread
        big = await store.create_run(agent="a", model="m", input=RunInput(task="t"))
        await store.record_turn(
            big, [text("assistant", "x" * (sqlite_store.QUICK_BYTES + 1))], turns=1, usage=Usage(), cost_usd=None
        )
        await store.flush()
        assert [label for label in in_thread if label.startswith("record a turn")] == [f"record a turn of run {big}"]
        record = await store.get(run_id)
    assert [m.text for m in record.transcript] == ["t", "done"]  # the start's conversation, in its transaction
    assert record.status == "completed"


async def test_a_write_that_meets_another_processs_lock_waits_in_the_thread_while_the_loop_serves(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runs.db"
    created: list[str] = []
    async with SQLiteRunStore(path) as store:
        other = sqlite3.connect(path, isolation_level=None)  # another process, in the middle of a write
        other.execute("BEGIN IMMEDIATE")

        async def create() -> None:
            created.append(await store.create_run(agent="a", model="m", input=RunInput(task="t")))

        async with ticking() as ticks, anyio.create_task_group() as tg:
            tg.start_soon(create)
            await anyio.sleep(0.5)
            assert created == []  # it waits for the lock (on the loop it would have failed at once) ...
            assert ticks[0] >= 10  # ... and the loop kept running meanwhile (blocked, it would count ~0)
            other.execute("COMMIT")
            other.close()
        assert (await store.get(created[0])).status == "running"


async def test_the_wal_is_checkpointed_as_runs_are_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "CHECKPOINT_EVERY", 10)
    path = tmp_path / "runs.db"
    async with SQLiteRunStore(path) as store:
        size = path.stat().st_size
        for _ in range(30):
            await store.create_run(agent="a", model="m", input=RunInput(task="t"), messages=[text("user", "x" * 4000)])
        with anyio.fail_after(10):  # the checkpoint copies the WAL's pages into the file, in its own thread
            while path.stat().st_size <= size:
                await anyio.sleep(0.05)


async def test_a_batch_of_many_runs_writes_goes_to_the_thread_however_small_each_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    batches: list[int] = []
    apply_in_thread = SQLiteRunStore._apply

    def spy(self: SQLiteRunStore, batch: list[sqlite_store.Job[sqlite_store.Work]]) -> None:
        batches.append(len(batch))
        apply_in_thread(self, batch)

    monkeypatch.setattr(SQLiteRunStore, "_apply", spy)
    async with SQLiteRunStore(tmp_path / "runs.db") as store:
        run_id = await store.create_run(agent="a", model="m", input=RunInput(task="t"))
        for turn in range(sqlite_store.QUICK_BATCH + 1):  # queued without a yield: the writer takes them at once
            await store.record_turn(run_id, [text("assistant", f"{turn}")], turns=turn, usage=Usage(), cost_usd=None)
        await store.flush()
        assert len(batches) == 1 and batches[0] > sqlite_store.QUICK_BATCH  # the loop never writes an unbounded batch
        assert len((await store.get(run_id)).transcript) == sqlite_store.QUICK_BATCH + 1
