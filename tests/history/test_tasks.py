"""The task queue, against both stores: tasks under a parent run, claimed exactly once by any number of
workers in any number of processes, reclaimed when a claimer dies, retried once."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from subagents.history.store import (
    LEASE_TTL_S,
    TASK_INTERRUPTED_ERROR,
    RunInput,
    RunNotFoundError,
    RunStore,
    TaskCounts,
    TaskNotFoundError,
    TaskRecord,
    TaskSpec,
)
from tests.history.helpers import OTHER_HOST, Clock, finish, new_run, opened

pytestmark = pytest.mark.anyio


def specs(n: int, agent: str = "reviewer") -> list[TaskSpec]:
    return [
        TaskSpec(agent=agent, input=RunInput(task=f"task {i}", context="ctx" if i == 0 else None)) for i in range(n)
    ]


async def test_tasks_are_queued_in_order_and_claimed_in_order(store_location: str) -> None:
    clock = Clock()
    async with opened(store_location, clock) as store:
        parent = await new_run(store, "team")
        queued = await store.enqueue_tasks(parent, specs(3))
        more = await store.enqueue_tasks(parent, specs(1, agent="tester"))
        assert [t.seq for t in queued + more] == [0, 1, 2, 3]
        assert [(t.status, t.attempts, t.max_attempts, t.owner, t.run_id) for t in queued] == [
            ("queued", 0, 2, None, None)
        ] * 3
        assert queued[0].input == RunInput(task="task 0", context="ctx") and more[0].agent == "tester"
        assert queued[0].created_at == clock.now

        clock.advance(1)
        first = await store.claim_task(parent)
        assert first is not None and first.id == queued[0].id
        assert (first.status, first.attempts, first.owner, first.claimed_at) == ("running", 1, store.owner, clock.now)
        second = await store.claim_task(parent)
        assert second is not None and second.id == queued[1].id
        assert await store.task_counts(parent) == TaskCounts(queued=2, running=2)
        assert [t.id for t in await store.list_tasks(parent)] == [t.id for t in queued + more]


async def test_finishing_a_task_records_its_result_and_run(store_location: str) -> None:
    clock = Clock()
    async with opened(store_location, clock) as store:
        parent = await new_run(store, "team")
        await store.enqueue_tasks(parent, specs(3))
        claims = [await store.claim_task(parent) for _ in range(3)]
        ok, bad, last = (c for c in claims if c is not None)
        child = await new_run(store, "reviewer", parent_id=parent)
        assert await store.attach_task_run(ok.id, attempt=ok.attempts, run_id=child)
        clock.advance(5)
        assert await store.finish_task(ok.id, attempt=1, status="completed", result="all good")
        assert await store.finish_task(bad.id, attempt=1, status="failed", error="model down")
        done, failed, running = await store.list_tasks(parent)
        assert (done.status, done.result, done.run_id, done.finished_at, done.owner) == (
            "completed",
            "all good",
            child,
            clock.now,
            None,
        )
        assert (failed.status, failed.error, failed.result) == ("failed", "model down", None)
        assert running.status == "running"
        counts = await store.task_counts(parent)
        assert counts == TaskCounts(completed=1, failed=1, running=1) and counts.summary() == (
            "2/3 done, 1 running, 1 failed"
        )
        assert await store.claim_task(parent) is None  # nothing queued
        assert [s.id for s in await store.list(parent_id=parent)] == [child]  # children of the pattern's run
        with pytest.raises(ValueError, match="completed"):
            await store.finish_task(last.id, attempt=1, status="cancelled")


async def test_many_workers_in_several_processes_claim_each_task_exactly_once(store_location: str) -> None:
    tasks_n, processes_n, workers_n = 60, 3, 8
    async with opened(store_location) as setup:
        parent = await new_run(setup, "team")
        await setup.enqueue_tasks(parent, specs(tasks_n))
    claimed: list[tuple[int, str]] = []

    async def worker(process: int, store: RunStore) -> None:
        while (task := await store.claim_task(parent)) is not None:
            claimed.append((process, task.id))
            await anyio.lowlevel.checkpoint()
            assert await store.finish_task(task.id, attempt=task.attempts, status="completed", result=str(process))

    # Each store instance has its own connection(s), like a separate process; the owner names differ.
    stores = [opened(store_location, owner=f"{OTHER_HOST}{p}") for p in range(processes_n)]
    async with stores[0], stores[1], stores[2], anyio.create_task_group() as tg:
        for p, store in enumerate(stores):
            for _ in range(workers_n):
                tg.start_soon(worker, p, store)
    async with opened(store_location) as check:
        tasks = await check.list_tasks(parent)
        counts = await check.task_counts(parent)
    ids = [task_id for _, task_id in claimed]
    assert len(ids) == tasks_n and len(set(ids)) == tasks_n  # every task once, none twice
    assert counts == TaskCounts(completed=tasks_n)
    assert all(t.attempts == 1 for t in tasks)
    # Several processes shared the queue (SQLite's lock promises no fairness: one of three may get none).
    assert len({t.result for t in tasks}) >= 2


async def test_a_dead_claimers_task_is_retried_once_then_failed(store_location: str) -> None:
    clock = Clock()
    async with opened(store_location, clock, owner=OTHER_HOST) as doomed, opened(store_location, clock) as survivor:
        parent = await new_run(survivor, "team")
        [queued] = await survivor.enqueue_tasks(parent, specs(1))
        first = await doomed.claim_task(parent)
        assert first is not None and first.attempts == 1
        child = await new_run(doomed, "reviewer", parent_id=parent)
        await doomed.attach_task_run(first.id, attempt=1, run_id=child)

        clock.advance(LEASE_TTL_S - 1)
        assert await survivor.reclaim_tasks() == 0  # the lease still holds
        clock.advance(2)  # the claimer died: no renewal
        assert await survivor.reclaim_tasks() == 1
        [requeued] = await survivor.list_tasks(parent)
        assert (requeued.status, requeued.owner, requeued.attempts, requeued.run_id) == ("queued", None, 1, child)
        assert await survivor.parents_with_queued_tasks() == [parent]

        # The old claimer wakes up late: its result is refused, the task is not finished twice.
        assert not await doomed.finish_task(first.id, attempt=1, status="completed", result="late")
        assert not await doomed.attach_task_run(first.id, attempt=1, run_id=child)

        retry = await doomed.claim_task(parent)
        assert retry is not None and (retry.id, retry.attempts) == (queued.id, 2)
        clock.advance(LEASE_TTL_S + 1)  # and it dies again
        assert await survivor.reclaim_tasks() == 1
        [failed] = await survivor.list_tasks(parent)
        assert (failed.status, failed.error, failed.finished_at) == ("failed", TASK_INTERRUPTED_ERROR, clock.now)
        assert await survivor.claim_task(parent) is None and await survivor.parents_with_queued_tasks() == []


async def test_a_stores_own_claims_are_not_reclaimed_by_itself(store_location: str) -> None:
    clock = Clock()
    async with opened(store_location, clock) as store:
        parent = await new_run(store, "team")
        await store.enqueue_tasks(parent, specs(1))
        task: TaskRecord | None = await store.claim_task(parent)
        clock.advance(LEASE_TTL_S * 3)
        assert task is not None and await store.reclaim_tasks() == 0


async def test_queue_errors_are_clear(store_location: str) -> None:
    async with opened(store_location) as store:
        with pytest.raises(RunNotFoundError):
            await store.enqueue_tasks("run_nope", specs(1))
        parent = await new_run(store, "team")
        with pytest.raises(ValueError, match="between 1 and"):
            await store.enqueue_tasks(parent, [])
        with pytest.raises(ValueError, match="max_attempts"):
            await store.enqueue_tasks(parent, specs(1), max_attempts=0)
        with pytest.raises(TaskNotFoundError):
            await store.finish_task("task_nope", attempt=1, status="completed")
        assert await store.task_counts(parent) == TaskCounts() and await store.list_tasks(parent) == []
        assert await store.claim_task(parent) is None


async def test_an_interrupted_run_is_adopted_by_one_process_only(store_location: str) -> None:
    """A team whose server died: the first process to adopt its run owns it (running, leased); no other can."""
    clock = Clock()
    async with (
        opened(store_location, clock, owner=OTHER_HOST) as doomed,
        opened(store_location, clock) as first,
        opened(store_location, clock, owner=f"{OTHER_HOST}0") as second,
    ):
        parent = await new_run(doomed, "team")
        assert not await first.adopt_run(parent)  # running, and its owner's lease holds
        clock.advance(LEASE_TTL_S + 1)
        assert await first.mark_interrupted() == 1
        assert await first.adopt_run(parent)
        assert not await second.adopt_run(parent)
        record = await first.get(parent)
        assert (record.status, record.error, record.finished_at) == ("running", None, None)
        clock.advance(LEASE_TTL_S - 1)
        await first.renew_leases()
        clock.advance(LEASE_TTL_S - 1)
        assert await second.mark_interrupted() == 0  # the adopter's lease holds it now
        await finish(first, parent)
        assert not await second.adopt_run(parent) and (await second.get(parent)).status == "completed"
