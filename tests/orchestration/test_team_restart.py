"""`team` across a crash, with real processes: `subagents serve` over HTTP starts a background team of 8 tasks on
3 workers, is killed with SIGKILL (or stopped with SIGTERM) halfway, and a new server on the same SQLite store
finishes it. Every task
completes exactly once; the ones whose claims the kill interrupted run once more (never a third time), the
model sees every other task once, and the team's run ends with a recorded status and result that `get_run`
returns to a client of the new server."""

from __future__ import annotations

import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import anyio
import pytest
from mcp import Client

from subagents.history.store import RunStore, SQLiteRunStore, TaskCounts
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text
from tests.conftest import model_env
from tests.helpers import SUBAGENTS, child_env, free_port, wait_for_port
from tests.orchestration.helpers import plain_agents

pytestmark = pytest.mark.anyio
TASKS = [f"task number {n:02d}" for n in range(8)]


def answer(request: RecordedRequest) -> Reply:
    return text(f"done: {task_of(request)}", latency=1.0)


def task_of(request: RecordedRequest) -> str | None:
    return next((t for t in TASKS if t in request.last_user_text), None)


@contextmanager
def server(project: Path, agents: Path, env: dict[str, str], log: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    command = [*SUBAGENTS, "serve", "--transport", "http", "--port", str(port), "--root", str(project)]
    command += ["--agents-dir", str(agents), "--no-bundled", "--patterns", "team"]
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            command, env=child_env(env), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, text=True
        )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}/mcp", proc
    finally:
        if proc.poll() is None:
            proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


async def counts_when(store: RunStore, run_id: str, done: int, running: int) -> TaskCounts:
    with anyio.fail_after(60):
        while True:
            counts = await store.task_counts(run_id)
            if counts.done >= done and counts.running >= running:
                return counts
            await anyio.sleep(0.05)


@pytest.mark.parametrize(
    ("stop", "left", "cut_off"),
    [
        (signal.SIGKILL, "running", "interrupted"),  # no chance to record anything: the next server's sweep does
        (signal.SIGTERM, "interrupted", "cancelled"),  # a graceful stop leaves the team to the next server itself
    ],
)
async def test_a_team_stopped_halfway_is_finished_by_the_next_server_each_task_once(
    stop: signal.Signals, left: str, cut_off: str, fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    fake_model.set_script(answer)
    agents = plain_agents(tmp_path / "agents", ["reviewer", "tester"])
    db = tmp_path / "runs.db"
    env = model_env(fake_model) | {"SUBAGENTS_STORE": str(db)}
    tasks = [{"agent": ("reviewer", "tester")[i % 2], "task": t} for i, t in enumerate(TASKS)]
    async with SQLiteRunStore(db) as store:
        with server(project, agents, env, tmp_path / "first.log") as (url, first):
            async with Client(url) as client:
                started = await client.call_tool("team", {"tasks": tasks, "workers": 3, "background": True})
            assert started.structured_content is not None
            run_id = started.structured_content["run_id"]
            at_kill = await counts_when(store, run_id, done=3, running=1)
            first.send_signal(stop)
            first.wait(timeout=20)
        assert (await store.get(run_id)).status == left

        with server(project, agents, env, tmp_path / "second.log") as (url, second):
            with anyio.fail_after(90):
                while (record := await store.get(run_id)).status in ("running", "interrupted"):
                    await anyio.sleep(0.1)
            async with Client(url) as client:
                got = (await client.call_tool("get_run", {"run_id": run_id})).structured_content
        queue = await store.list_tasks(run_id)
        runs = await store.list(parent_id=run_id, limit=100)
    assert second.returncode is not None and "resumed 1 team run(s)" in (tmp_path / "second.log").read_text()

    assert record.status == "completed" and record.report is not None
    assert record.report.startswith("8 of 8 tasks completed")
    assert [t.status for t in queue] == ["completed"] * 8
    retried = [t for t in queue if t.attempts == 2]
    assert 1 <= len(retried) <= 3 and len(retried) <= at_kill.running + 1  # the claims the kill cut off
    assert all(t.attempts in (1, 2) for t in queue)
    asked = Counter(task_of(r) for r in fake_model.requests)
    assert None not in asked, "a model request without a task"
    for task in queue:  # the model saw each task once, and an interrupted one at most once more
        seen = asked[task.input.task]
        assert seen == 1 if task.attempts == 1 else seen in (1, 2), (task.input.task, seen, task.attempts)
    completed = Counter(r.task for r in runs if r.status == "completed")
    assert completed == Counter(dict.fromkeys(TASKS, 1))  # every task completed exactly once
    assert sorted(r.status for r in runs if r.status != "completed") == [cut_off] * (len(runs) - 8)
    assert got is not None and got["status"] == "completed" and got["pattern"] == "team"
    assert [t["status"] for t in got["result"]["tasks"]] == ["completed"] * 8
    roles = Counter(c["role"] for c in got["children"])
    assert all(roles[f"task {n}"] == 1 for n in range(1, 9)), got["children"]  # the whole team
    assert sum(n for role, n in roles.items() if role.endswith("(interrupted try)")) == len(runs) - 8
