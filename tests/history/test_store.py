"""The run store: durable runs and transcripts, history queries, crash recovery, migrations."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from subagents.history.store import (
    INTERRUPTED_ERROR,
    RunInput,
    RunNotFoundError,
    RunStatus,
    RunStore,
)
from subagents.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock, Usage
from subagents.processes import process_owner

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def text(role: str, body: str) -> Message:
    return Message.model_validate({"role": role, "content": [{"type": "text", "text": body}]})


def finish(
    store: RunStore,
    run_id: str,
    status: RunStatus = "completed",
    cost: float | None = None,
    usage: Usage | None = None,
    error: str | None = None,
) -> None:
    store.finish(
        run_id,
        status=status,
        report="done",
        error=error,
        usage=usage or Usage(),
        cost_usd=cost,
        turns=1,
        stop_reason="end_turn",
    )


@contextmanager
def raw(path: Path) -> Iterator[sqlite3.Connection]:
    """A second, independent connection: what another process would see."""
    conn = sqlite3.connect(path)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


TRANSCRIPT = (
    text("user", "<task>review auth.py</task>"),
    Message(
        role="assistant",
        content=(
            TextBlock(text="Reading the file."),
            ToolUseBlock(id="tu_1", name="Read", input={"path": "auth.py", "limit": 50, "opts": {"a": [1, None]}}),
        ),
    ),
    Message(role="user", content=(ToolResultBlock(tool_use_id="tu_1", content="def login(): ...", is_error=True),)),
    text("assistant", "No SQL injection found."),
)


def test_a_run_round_trips_through_a_reopened_file(tmp_path: Path) -> None:
    clock, path = Clock(), tmp_path / "runs.db"
    with RunStore(path, now=clock) as store:
        parent = store.create_run(agent="router", model="m", input=RunInput(task="route"))
        run_id = store.create_run(
            agent="security-reviewer",
            model="claude-x",
            parent_id=parent,
            client="claude-code",
            input=RunInput(task="review auth.py", context="ctx", files=("auth.py",)),
        )
        store.append_messages(run_id, TRANSCRIPT[:1])
        store.append_messages(run_id, TRANSCRIPT[1:])
        store.update_progress(run_id, turns=1, usage=Usage(input_tokens=10), cost_usd=0.01)
        clock.advance(2.5)
        usage = Usage(input_tokens=100, output_tokens=20, cache_read_input_tokens=5, cache_creation_input_tokens=7)
        store.finish(
            run_id,
            status="completed",
            report="No SQL injection found.",
            error=None,
            usage=usage,
            cost_usd=0.42,
            turns=2,
            stop_reason="end_turn",
        )

    with RunStore(path) as store:
        record = store.get(run_id)
    assert record.transcript == TRANSCRIPT
    assert [type(b) for b in record.transcript[1].content] == [TextBlock, ToolUseBlock]
    assert isinstance(record.transcript[2].content[0], ToolResultBlock)
    assert record.input == RunInput(task="review auth.py", context="ctx", files=("auth.py",))
    assert (record.agent, record.model, record.status, record.report, record.error) == (
        "security-reviewer",
        "claude-x",
        "completed",
        "No SQL injection found.",
        None,
    )
    assert (record.usage, record.cost_usd, record.turns, record.stop_reason) == (usage, 0.42, 2, "end_turn")
    assert (record.parent_id, record.client, record.continued_from) == (parent, "claude-code", None)
    assert record.created_at == T0 and record.created_at.utcoffset() == timedelta(0)
    assert record.finished_at == T0 + timedelta(seconds=2.5)
    assert record.duration_s == 2.5


def test_run_ids_are_run_underscore_twelve_hex_and_unique() -> None:
    with RunStore(":memory:") as store:
        ids = {store.create_run(agent="a", model="m", input=RunInput(task="t")) for _ in range(50)}
    assert len(ids) == 50
    assert all(re.fullmatch(r"run_[0-9a-f]{12}", i) for i in ids)


def test_a_running_run_has_no_finish_time_and_an_empty_transcript() -> None:
    with RunStore(":memory:") as store:
        record = store.get(store.create_run(agent="a", model="m", input=RunInput(task="t")))
    assert (record.status, record.finished_at, record.duration_s, record.transcript) == (
        "running",
        None,
        None,
        (),
    )


def test_continued_from_and_parent_must_name_existing_runs() -> None:
    with RunStore(":memory:") as store:
        first = store.create_run(agent="a", model="m", input=RunInput(task="t"))
        second = store.create_run(agent="a", model="m", input=RunInput(task="more"), continued_from=first)
        assert store.get(second).continued_from == first
        with pytest.raises(RunNotFoundError, match="run_nope"):
            store.create_run(agent="a", model="m", input=RunInput(task="t"), parent_id="run_nope")
        assert len(store.list()) == 2


def test_unknown_run_ids_raise_a_helpful_error() -> None:
    with RunStore(":memory:") as store:
        with pytest.raises(RunNotFoundError) as caught:
            store.get("run_0123456789ab")
        message = str(caught.value)
        assert "run_0123456789ab" in message and "subagents runs list" in message
        with pytest.raises(RunNotFoundError):
            store.append_messages("run_missing", [text("user", "x")])
        with pytest.raises(RunNotFoundError):
            store.update_progress("run_missing", turns=1, usage=Usage(), cost_usd=None)
        with pytest.raises(RunNotFoundError):
            finish(store, "run_missing")


def test_finish_refuses_running_as_a_final_status() -> None:
    with RunStore(":memory:") as store:
        run_id = store.create_run(agent="a", model="m", input=RunInput(task="t"))
        with pytest.raises(ValueError, match="final status"):
            finish(store, run_id, status="running")
        assert store.get(run_id).finished_at is None


def test_list_is_newest_first_and_filters_pages() -> None:
    clock = Clock()
    with RunStore(":memory:", now=clock) as store:
        ids = []
        for i, agent in enumerate(["a", "b", "a", "b", "a"]):
            ids.append(store.create_run(agent=agent, model="m", input=RunInput(task=f"task {i}")))
            clock.advance(1)
        finish(store, ids[0])
        finish(store, ids[4], status="failed", error="boom")
        assert [s.id for s in store.list()] == ids[::-1]
        assert [s.id for s in store.list(agent="a")] == [ids[4], ids[2], ids[0]]
        assert [s.id for s in store.list(status="running")] == [ids[3], ids[2], ids[1]]
        assert [s.id for s in store.list(agent="a", status="completed")] == [ids[0]]
        assert [s.id for s in store.list(limit=2, offset=1)] == [ids[3], ids[2]]
        assert [s.task for s in store.list(limit=1)] == ["task 4"]
        assert store.list(limit=1)[0].error == "boom"


def test_list_orders_runs_created_in_the_same_instant_by_insertion() -> None:
    with RunStore(":memory:", now=Clock()) as store:
        ids = [store.create_run(agent="a", model="m", input=RunInput(task="t")) for _ in range(5)]
        assert [s.id for s in store.list()] == ids[::-1]
        assert [s.id for s in store.list(agent="a")] == ids[::-1]
        assert [s.id for s in store.list(status="running", limit=3)] == ids[:1:-1]


def test_list_cuts_task_and_error_to_200_characters() -> None:
    with RunStore(":memory:") as store:
        run_id = store.create_run(agent="a", model="m", input=RunInput(task="é" * 500))
        finish(store, run_id, status="failed", error="x" * 300)
        summary = store.list()[0]
    assert summary.task == "é" * 200
    assert summary.error == "x" * 200


def test_list_rejects_an_unknown_status() -> None:
    with RunStore(":memory:") as store, pytest.raises(ValueError, match="completed"):
        store.list(status="complete")


def test_stats_sum_per_agent_and_model_and_count_unknown_costs() -> None:
    clock = Clock()
    with RunStore(":memory:", now=clock) as store:
        old = store.create_run(agent="a", model="m1", input=RunInput(task="old"))
        finish(store, old, cost=5.0, usage=Usage(input_tokens=1000))
        clock.advance(3600)
        runs = [
            store.create_run(agent=a, model=m, input=RunInput(task="t"))
            for a, m in [("a", "m1"), ("a", "m1"), ("a", "m1"), ("a", "m2"), ("b", "m1")]
        ]
        finish(store, runs[0], cost=0.5, usage=Usage(input_tokens=10, output_tokens=1, cache_read_input_tokens=3))
        finish(
            store,
            runs[1],
            status="failed",
            cost=None,
            usage=Usage(input_tokens=20, cache_creation_input_tokens=4),
        )
        store.update_progress(runs[2], turns=1, usage=Usage(output_tokens=2), cost_usd=0.25)
        finish(store, runs[3], status="budget_exceeded", cost=None)
        finish(store, runs[4], cost=None)

        since = {(s.agent, s.model): s for s in store.stats(since=T0 + timedelta(minutes=1))}
        everything = {(s.agent, s.model): s for s in store.stats()}

    a1 = since["a", "m1"]
    assert (a1.calls, a1.completed, a1.failed) == (3, 1, 1)
    assert (
        a1.input_tokens,
        a1.output_tokens,
        a1.cache_read_input_tokens,
        a1.cache_creation_input_tokens,
    ) == (30, 3, 3, 4)
    assert (a1.cost_usd, a1.cost_unknown_runs) == (0.75, 1)
    assert (since["a", "m2"].cost_usd, since["a", "m2"].cost_unknown_runs, since["a", "m2"].failed) == (
        None,
        1,
        0,
    )
    assert (since["b", "m1"].cost_usd, since["b", "m1"].cost_unknown_runs) == (None, 1)
    assert list(since) == [("a", "m1"), ("a", "m2"), ("b", "m1")]
    assert (everything["a", "m1"].calls, everything["a", "m1"].cost_usd) == (4, 5.75)
    assert everything["a", "m1"].input_tokens == 1030


def test_cost_since_sums_known_costs_of_runs_created_since_including_running_ones() -> None:
    clock = Clock()
    with RunStore(":memory:", now=clock) as store:
        assert store.cost_since(T0) == 0.0
        finish(store, store.create_run(agent="a", model="m", input=RunInput(task="t")), cost=1.0)
        clock.advance(60)
        finish(store, store.create_run(agent="a", model="m", input=RunInput(task="t")), cost=0.5)
        finish(store, store.create_run(agent="b", model="m", input=RunInput(task="t")), cost=None)
        running = store.create_run(agent="b", model="m", input=RunInput(task="t"))
        store.update_progress(running, turns=1, usage=Usage(), cost_usd=0.125)
        assert store.cost_since(T0 + timedelta(seconds=30)) == 0.625
        assert store.cost_since(T0) == 1.625


def test_naive_datetimes_are_refused() -> None:
    with RunStore(":memory:") as store, pytest.raises(ValueError, match="timezone-aware"):
        store.cost_since(datetime(2026, 1, 1))


def test_a_run_left_running_by_a_dead_process_is_marked_interrupted(tmp_path: Path) -> None:
    path, clock = tmp_path / "runs.db", Clock()
    store = RunStore(path, now=clock)
    running = store.create_run(agent="a", model="m", input=RunInput(task="t"))
    store.append_messages(running, TRANSCRIPT[:2])
    done = store.create_run(agent="a", model="m", input=RunInput(task="t"))
    finish(store, done)
    live = store.create_run(agent="a", model="m", input=RunInput(task="t"))  # owned by this live process
    store.close()
    # The process that ran `running` dies: no finish(), and its pid is gone.
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE runs SET owner = ? WHERE id = ?", (process_owner(int(dead.stdout)), running))

    clock.advance(10)
    with RunStore(path, now=clock) as restarted:
        assert restarted.mark_interrupted() == 1
        record = restarted.get(running)
        assert (record.status, record.error, record.finished_at) == (
            "interrupted",
            INTERRUPTED_ERROR,
            clock.now,
        )
        assert record.transcript == TRANSCRIPT[:2]
        assert restarted.get(done).status == "completed"
        assert restarted.get(live).status == "running"  # another live server's run is left alone
        assert restarted.mark_interrupted() == 0


def test_finish_overwrites_interrupted_when_the_run_was_still_alive() -> None:
    with RunStore(":memory:") as store:
        run_id = store.create_run(agent="a", model="m", input=RunInput(task="t"))
        store.mark_interrupted()  # e.g. a second server process started on the same file
        finish(store, run_id)
        record = store.get(run_id)
    assert (record.status, record.error) == ("completed", None)


def test_the_file_store_uses_wal_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "runs.db"
    RunStore(path).close()
    with raw(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert path.stat().st_mode & 0o777 == 0o600


def test_concurrent_appends_from_threads_and_two_connections_all_land_gapless(tmp_path: Path) -> None:
    path = tmp_path / "runs.db"
    first, second = RunStore(path), RunStore(path)  # two connections stand in for two processes
    run_id = first.create_run(agent="a", model="m", input=RunInput(task="t"))
    threads_n, appends = 8, 50

    def work(t: int) -> None:
        store = first if t % 2 else second
        for i in range(appends):
            store.append_messages(run_id, [text("user", f"{t}:{i}")])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    transcript = first.get(run_id).transcript
    first.close()
    second.close()

    with raw(path) as conn:
        seqs = [s for (s,) in conn.execute("SELECT seq FROM messages WHERE run_id = ? ORDER BY seq", (run_id,))]
    assert seqs == list(range(threads_n * appends))
    bodies = [m.text for m in transcript]
    assert sorted(bodies) == sorted(f"{t}:{i}" for t in range(threads_n) for i in range(appends))
    for t in range(threads_n):  # each writer's messages keep their order
        assert [b for b in bodies if b.startswith(f"{t}:")] == [f"{t}:{i}" for i in range(appends)]


def test_a_closed_store_refuses_work() -> None:
    with RunStore(":memory:") as store:
        pass
    with pytest.raises(sqlite3.ProgrammingError):
        store.list()


def test_default_path_prefers_subagents_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("SUBAGENTS_STORE", str(tmp_path / "mine.db"))
    assert RunStore.default_path() == tmp_path / "mine.db"


def test_default_path_uses_xdg_data_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SUBAGENTS_STORE", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert RunStore.default_path() == tmp_path / "xdg" / "subagents" / "runs.db"


@pytest.mark.parametrize("xdg", [None, "", "relative/dir"])
def test_default_path_falls_back_to_local_share(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, xdg: str | None
) -> None:
    monkeypatch.delenv("SUBAGENTS_STORE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_DATA_HOME", xdg)
    assert RunStore.default_path() == tmp_path / ".local" / "share" / "subagents" / "runs.db"
