"""A task queue shared by two replicas on one store (PostgreSQL, as a team deploys them, and a SQLite file, as
local servers share one), as real processes: 20 tasks, 3 workers on each replica, every task run to its end
exactly once; and when one replica is killed halfway, the other reclaims the tasks it held once its lease
runs out, runs each of them once more, and marks the dead replica's runs interrupted. The workers are
`tests/queue_replica.py`: real apps claiming from the store (on PostgreSQL, `SELECT … FOR UPDATE SKIP
LOCKED`) and running each task as a child agent run on the fake model."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from subagents.history.store import INTERRUPTED_ERROR, RunInput, RunStore, TaskSpec, store_for
from subagents.processes import process_owner
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text
from tests.conftest import model_env, write_agent
from tests.helpers import child_env

pytestmark = pytest.mark.anyio
REPO = Path(__file__).resolve().parent.parent
TASKS = [f"task number {n:02d}" for n in range(20)]
LEASE_S = 4.0  # renewed every second: a replica stalled that long on 2 loaded cores is not taken for dead


def answer(request: RecordedRequest) -> Reply:
    return text(f"done: {request.last_user_text}", latency=0.4)


@contextmanager
def replica(store: str, parent: str, agents: Path, fake: FakeMessagesServer) -> Iterator[subprocess.Popen[str]]:
    command = [
        sys.executable,
        "-m",
        "tests.queue_replica",
        "--store",
        store,
        "--parent",
        parent,
        "--agents-dir",
        str(agents),
    ]
    proc = subprocess.Popen(
        [*command, "--workers", "3", "--lease-ttl", str(LEASE_S)],
        cwd=REPO,
        env=child_env(model_env(fake)),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)


def events(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 or proc.returncode == -signal.SIGKILL, err
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


async def team(store: RunStore) -> str:
    """A parent run of alice's; its tasks are queued once both replicas are ready (`enqueue`)."""
    return await store.create_run(agent="team", model="pattern", input=RunInput(task="the team"), principal="alice")


async def enqueue(store: RunStore, parent: str, *replicas: subprocess.Popen[str]) -> list[str]:
    """Queue the 20 tasks once every replica is ready; returns each replica's owner, as its claims record it."""
    owners = [await owner_of(proc) for proc in replicas]
    await store.enqueue_tasks(parent, [TaskSpec(agent="worker", input=RunInput(task=t)) for t in TASKS])
    return owners


async def owner_of(proc: subprocess.Popen[str]) -> str:
    """The owner a replica's store records on its claims, from its `ready` line."""
    assert proc.stdout is not None
    with anyio.fail_after(60):
        line = await anyio.to_thread.run_sync(proc.stdout.readline)
    ready = json.loads(line)
    assert ready["event"] == "ready" and ready["owner"] == process_owner(proc.pid)
    return str(ready["owner"])


def asked(fake: FakeMessagesServer) -> Counter[str]:
    """How many model calls each task got."""
    return Counter(next(t for t in TASKS if t in r.last_user_text) for r in fake.requests)


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    write_agent(tmp_path / "agents", "worker.md", "name: worker\ndescription: Does one queued task.\ntools: Read")
    return tmp_path / "agents"


async def finished(store: RunStore, parent: str) -> None:
    with anyio.fail_after(90):
        while (counts := await store.task_counts(parent)).done < len(TASKS):
            await anyio.sleep(0.1)
    assert counts.completed == len(TASKS), counts


async def test_two_replicas_with_three_workers_each_run_every_task_exactly_once(
    store_location: str, fake_model: FakeMessagesServer, agents: Path
) -> None:
    fake_model.set_script(answer)
    # The parent's own lease outlasts the test: this process does not renew it.
    async with store_for(store_location, lease_ttl_s=3600) as store:
        parent = await team(store)
        with (
            replica(store_location, parent, agents, fake_model) as a,
            replica(store_location, parent, agents, fake_model) as b,
        ):
            await enqueue(store, parent, a, b)
            await finished(store, parent)
            seen = events(a) + events(b)
        tasks = await store.list_tasks(parent)
        runs = await store.list(parent_id=parent, limit=100)
    finishes = [e for e in seen if e["event"] == "finished"]
    assert [t.status for t in tasks] == ["completed"] * 20
    assert [t.attempts for t in tasks] == [1] * 20  # no task was claimed twice
    assert sorted(e["task"] for e in finishes) == sorted(t.id for t in tasks)  # each finished once, and kept
    assert all(e["kept"] for e in finishes)
    assert {e["pid"] for e in finishes} == {a.pid, b.pid}  # both replicas did work
    assert asked(fake_model) == Counter(dict.fromkeys(TASKS, 1))  # the model saw each task once
    assert sorted((r.status, r.principal) for r in runs) == [("completed", "alice")] * 20
    assert {t.run_id for t in tasks} == {r.id for r in runs}


async def test_when_one_replica_is_killed_halfway_the_other_finishes_every_task_once(
    store_location: str, fake_model: FakeMessagesServer, agents: Path
) -> None:
    fake_model.set_script(answer)
    async with store_for(store_location, lease_ttl_s=3600) as store:
        parent = await team(store)
        with (
            replica(store_location, parent, agents, fake_model) as a,
            replica(store_location, parent, agents, fake_model) as b,
        ):
            owner_a, _ = await enqueue(store, parent, a, b)
            with anyio.fail_after(60):  # halfway, while A holds tasks it is running
                while True:
                    tasks = await store.list_tasks(parent)
                    # held with its run started: a claim whose run is not recorded yet leaves no run to interrupt
                    held = [t.id for t in tasks if t.status == "running" and t.owner == owner_a and t.run_id]
                    if held and sum(t.status == "completed" for t in tasks) >= 6:
                        break
                    await anyio.sleep(0.02)
            a.send_signal(signal.SIGKILL)
            await finished(store, parent)
            seen = events(a) + events(b)
        tasks = await store.list_tasks(parent)
        runs = await store.list(parent_id=parent, limit=100)
        interrupted = [await store.get(r.id) for r in runs if r.status == "interrupted"]
    retried = {t.input.task for t in tasks if t.attempts == 2}
    statuses = {r.id: r.status for r in runs}
    kept = Counter(e["task"] for e in seen if e["event"] == "finished" and e["kept"])
    second_claims = [e for e in seen if e["event"] == "claimed" and e["attempt"] == 2]
    assert [t.status for t in tasks] == ["completed"] * 20
    assert {t.input.task for t in tasks if t.id in held} <= retried  # what A held when it died ran again
    assert second_claims and {e["pid"] for e in second_claims} == {b.pid}  # by B, once A's lease ran out
    assert max(kept.values()) == 1  # no task's end was recorded twice
    assert all(statuses[t.run_id] == "completed" for t in tasks if t.run_id)  # each task names its completed run
    completed = Counter(r.task for r in runs if r.status == "completed")
    assert completed == Counter(dict.fromkeys(TASKS, 1))  # one completed child run per task
    assert interrupted and {r.input.task for r in interrupted} <= retried  # A's runs cut off by its death
    assert {(r.error, r.principal) for r in interrupted} == {(INTERRUPTED_ERROR, "alice")}  # marked by B's reaper
    model_calls = asked(fake_model)
    assert {t for t, n in model_calls.items() if n != 1} <= retried  # only a retried task was asked twice
    assert set(model_calls) == set(TASKS) and max(model_calls.values()) <= 2
