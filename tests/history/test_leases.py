"""Who executes a run, across processes: leases, interrupted runs, and cancel requests, on both stores."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from subagents.history.store import INTERRUPTED_ERROR, LEASE_TTL_S
from subagents.messages import Usage
from subagents.processes import process_owner
from tests.history.helpers import OTHER_HOST, TRANSCRIPT, Clock, finish, new_run, opened
from tests.stores import postgres_schema

pytestmark = pytest.mark.anyio


def dead_local_owner() -> str:
    """The owner string of a process on this host that has exited."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return process_owner(int(done.stdout))


async def test_a_replicas_runs_are_interrupted_once_its_lease_expires(store_location: str) -> None:
    clock = Clock()
    async with opened(store_location, clock, owner=OTHER_HOST) as replica, opened(store_location, clock) as me:
        running = await new_run(replica)
        await replica.record_turn(running, TRANSCRIPT[:2], turns=1, usage=Usage(), cost_usd=None)
        done = await new_run(replica)
        await finish(replica, done)
        mine = await new_run(me)

        clock.advance(LEASE_TTL_S - 5)
        await replica.renew_leases()  # alive: pushes its lease out to now + TTL
        clock.advance(10)
        assert await me.mark_interrupted() == 0  # past the first lease, within the renewed one
        clock.advance(LEASE_TTL_S)  # the replica stops renewing (it died)
        assert await me.mark_interrupted() == 1

        record = await me.get(running)
        assert (record.status, record.error, record.finished_at) == ("interrupted", INTERRUPTED_ERROR, clock.now)
        assert record.transcript == TRANSCRIPT[:2]  # what it did is kept
        assert (await me.get(done)).status == "completed"
        assert (await me.get(mine)).status == "running"  # a store never interrupts its own runs
        assert await me.mark_interrupted() == 0


async def test_finish_overwrites_interrupted_when_the_run_was_alive_after_all(store_location: str) -> None:
    clock = Clock()
    async with opened(store_location, clock, owner=OTHER_HOST) as slow, opened(store_location, clock) as other:
        run_id = await new_run(slow)
        clock.advance(LEASE_TTL_S + 1)  # e.g. a long pause: its lease ran out
        assert await other.mark_interrupted() == 1
        await finish(slow, run_id)
        record = await other.get(run_id)
    assert (record.status, record.error) == ("completed", None)


async def test_a_dead_local_servers_runs_are_interrupted_at_once_on_sqlite(store_location: str, backend: str) -> None:
    """Local stdio servers share one SQLite file: the next one to start need not wait for a lease.
    Replicas on PostgreSQL may run in containers that share a host name, so there only leases count."""
    clock = Clock()
    async with opened(store_location, clock, owner=dead_local_owner()) as dead, opened(store_location, clock) as me:
        run_id = await new_run(dead)
        interrupted = await me.mark_interrupted()
        if backend == "sqlite":
            assert interrupted == 1 and (await me.get(run_id)).status == "interrupted"
        else:
            assert interrupted == 0 and (await me.get(run_id)).status == "running"
            clock.advance(LEASE_TTL_S + 1)
            assert await me.mark_interrupted() == 1


async def test_runs_recorded_before_leases_fall_back_to_the_process_check(tmp_path: Path) -> None:
    path = f"{tmp_path}/runs.db"
    async with opened(path) as store:
        gone, alive = await new_run(store), await new_run(store)
    with sqlite3.connect(path) as conn:  # rows as an older subagents wrote them: no lease
        conn.execute("UPDATE runs SET lease_expires_at = NULL, owner = ? WHERE id = ?", (dead_local_owner(), gone))
        conn.execute("UPDATE runs SET lease_expires_at = NULL, owner = ? WHERE id = ?", (process_owner(), alive))
    async with opened(path, owner=OTHER_HOST) as restarted:
        assert await restarted.mark_interrupted() == 1
        assert [(await restarted.get(i)).status for i in (gone, alive)] == ["interrupted", "running"]


async def test_a_cancel_request_reaches_only_the_owner_of_a_running_run(store_location: str) -> None:
    async with opened(store_location, owner=OTHER_HOST) as executor, opened(store_location) as asker:
        running = await new_run(executor)
        finished = await new_run(executor)
        await finish(executor, finished)
        assert await executor.cancel_requests() == []

        assert await asker.request_cancel(running) == "running"
        assert await asker.request_cancel(running) == "running"  # asking twice is harmless
        assert await asker.request_cancel(finished) == "completed"  # nothing to stop
        assert await executor.cancel_requests() == [running]
        assert await asker.cancel_requests() == []  # not its run
        assert (await asker.get(running)).cancel_requested and not (await asker.get(finished)).cancel_requested

        await executor.finish(
            running,
            status="cancelled",
            report=None,
            error="The run was cancelled.",
            usage=Usage(),
            cost_usd=None,
            turns=0,
            stop_reason="cancelled",
        )
        assert await executor.cancel_requests() == []


async def test_postgres_wakes_the_owner_at_once_with_notify() -> None:
    with postgres_schema() as url:
        async with opened(url, owner=OTHER_HOST) as executor, opened(url) as asker:
            running = await new_run(executor)
            await executor.wait_for_cancel_requests(timeout_s=0.01)  # the first wait starts the listener
            await anyio.sleep(1)  # its connection is up and listening
            async with anyio.create_task_group() as tg:
                woke = anyio.Event()

                async def wait() -> None:
                    await executor.wait_for_cancel_requests(timeout_s=60)
                    woke.set()

                tg.start_soon(wait)
                await asker.request_cancel(running)
                with anyio.fail_after(10):  # far below the 60 s it would otherwise sleep
                    await woke.wait()
            assert await executor.cancel_requests() == [running]


async def test_renewing_leases_covers_task_claims_too(store_location: str) -> None:
    from subagents.history.store import RunInput, TaskSpec

    clock = Clock()
    async with opened(store_location, clock, owner=OTHER_HOST) as worker, opened(store_location, clock) as other:
        parent = await new_run(worker)
        await worker.enqueue_tasks(parent, [TaskSpec(agent="a", input=RunInput(task="t"))])
        assert await worker.claim_task(parent) is not None
        for _ in range(3):
            clock.advance(LEASE_TTL_S - 1)
            await worker.renew_leases()
            assert await other.reclaim_tasks() == 0
            assert await other.mark_interrupted() == 0
        assert (await other.task_counts(parent)).running == 1
