"""`team`: independent tasks in a queue in the run store, worked by up to `workers` agents at once.

The queue lives under the pattern's own run. Each worker claims the next task atomically (one transaction
re-checks its status, so no task is held twice), runs it as a child agent run and records its end; a failed
task does not sink the rest. A server that dies mid-team leaves the run interrupted and its claims lapsed:
the next server on the store adopts the run and finishes it (`resume.py`), and a task whose claim was
interrupted is retried once (its second claim is its last). So does a server that stops gracefully while the
team runs in the background. Cancelling the team cancels its children and fails the tasks not done, so
nothing is left queued."""

from __future__ import annotations

import logging
from typing import Any

import anyio

from subagents.app import RunOutcome, RunStatus
from subagents.history.base import RunStore
from subagents.history.records import RunInput, TaskCounts, TaskRecord, TaskSpec
from subagents.orchestration.args import TeamArgs
from subagents.orchestration.base import Body, ChildRun, PatternRun, PatternStatus
from subagents.orchestration.runner import PatternDef

log = logging.getLogger(__name__)

TASK_ATTEMPTS = 2  # a task whose claim was interrupted runs once more, never a third time
RESULT_CHARS = 4_000  # a task's result as its queue row keeps it; the whole report is in its run
POLL_S = 0.25  # how often an idle worker looks again while claims of a stopped server await reclaiming
CANCELLED_RUNNING = "The team was cancelled while this task ran; its partial work is in its run."
CANCELLED_QUEUED = "The team was cancelled before this task started."
ENDED: tuple[RunStatus, ...] = ("completed", "failed", "cancelled", "budget_exceeded")


async def team(run: PatternRun, args: TeamArgs) -> Body:
    store = run.app.store
    assert store is not None  # PatternDef.needs_store: checked before the run starts
    tasks = await store.list_tasks(run.run_id)
    if tasks:  # resumed after a restart: the queue is there, and so are the children that ran before
        await _earlier_children(run, store, tasks)
    else:
        specs = [
            TaskSpec(agent=t.agent, input=RunInput(task=t.task, context=args.context, files=args.files))
            for t in args.tasks
        ]
        tasks = await store.enqueue_tasks(run.run_id, specs, max_attempts=TASK_ATTEMPTS)
    queue = _Queue(run, store, tasks)
    run.headline = queue.summary
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(min(args.workers, len(tasks))):
                tg.start_soon(queue.worker)
    except BaseException:
        if not run.app.jobs.stopping:  # a stopping server leaves the queue as it is, for the next one
            with anyio.CancelScope(shield=True):
                await queue.drain()
        raise
    return _body(await store.list_tasks(run.run_id))


class _Queue:
    """The workers of one team: claims from the store, each task a child run, and what they hold now."""

    def __init__(self, run: PatternRun, store: RunStore, tasks: list[TaskRecord]) -> None:
        self.run = run
        self.store = store
        self.held: dict[str, TaskRecord] = {}  # claims this process holds and has not finished
        self.total = len(tasks)
        self.done = sum(t.status in ("completed", "failed") for t in tasks)
        self.failed = sum(t.status == "failed" for t in tasks)

    def summary(self) -> str:
        """`7/12 done, 3 running` (`, 1 failed`): this process is the team's only executor, so it knows."""
        running = len(self.held)
        queued = self.total - self.done - running
        return TaskCounts(
            queued=queued, running=running, completed=self.done - self.failed, failed=self.failed
        ).summary()

    async def worker(self) -> None:
        while True:
            task = await self.store.claim_task(self.run.run_id)
            if task is not None:
                await self._do(task)
                continue
            counts = await self.store.task_counts(self.run.run_id)
            if counts.queued == 0 and counts.running <= len(self.held):
                return  # nothing queued, and every running claim is one of ours
            await anyio.sleep(POLL_S)  # a stopped server's claims: queued again once the lease sweep sees them

    async def _do(self, task: TaskRecord) -> None:
        self.held[task.id] = task

        async def attach(run_id: str) -> None:
            await self.store.attach_task_run(task.id, attempt=task.attempts, run_id=run_id)

        role = f"task {task.seq + 1}"
        i = task.input
        outcome = await self.run.child(task.agent, role, i.task, context=i.context, files=i.files, on_start=attach)
        status = "completed" if outcome.status == "completed" else "failed"
        with anyio.CancelScope(shield=True):  # the child ended: its end is recorded, even if we are cancelled now
            kept = await self.store.finish_task(
                task.id,
                attempt=task.attempts,
                status=status,
                result=outcome.report[:RESULT_CHARS],
                error=outcome.error,
                run_id=outcome.run_id or None,
            )
            del self.held[task.id]
            if kept:
                self.done += 1
                self.failed += status == "failed"
        if not kept:
            log.warning("team %s: %s finished after its claim lapsed; its result was not kept", self.run.run_id, role)
        await self.run.say(f"team: {self.summary()} ({role}, {task.agent}: {outcome.status})")

    async def drain(self) -> None:
        """The team is cancelled or broke: fail the tasks it holds and those still queued (each child recorded
        its own end), so none is left for a later server to pick up."""
        try:
            for held in list(self.held.values()):
                await self.store.finish_task(held.id, attempt=held.attempts, status="failed", error=CANCELLED_RUNNING)
            while (queued := await self.store.claim_task(self.run.run_id)) is not None:
                await self.store.finish_task(
                    queued.id, attempt=queued.attempts, status="failed", error=CANCELLED_QUEUED
                )
        except Exception:
            log.exception("team %s: could not record the end of its unfinished tasks", self.run.run_id)


async def _earlier_children(run: PatternRun, store: RunStore, tasks: list[TaskRecord]) -> None:
    """The children a stopped server ran for this team, as this run's own, so its summary, totals and tree
    cover the whole team. A child whose task was retried keeps its role, marked as the interrupted try."""
    current = {t.run_id: t for t in tasks if t.run_id}
    for child in reversed(await store.list(parent_id=run.run_id, limit=10 * len(tasks))):
        task = current.get(child.id) or next(
            (t for t in tasks if t.agent == child.agent and t.input.task.startswith(child.task)), None
        )
        ran_it = task is not None and task.run_id == child.id and task.status in ("completed", "failed")
        role = "task ?" if task is None else f"task {task.seq + 1}"
        role += "" if ran_it else " (interrupted try)"  # its task is queued again, or another child ran it
        report = (task.result or "") if task is not None and ran_it else ""
        outcome = RunOutcome(
            run_id=child.id,
            agent=child.agent,
            model=child.model,
            status=child.status if child.status in ENDED else "failed",  # interrupted: its server stopped
            report=report,
            turns=child.turns,
            usage=child.usage,
            cost_usd=child.cost_usd,
            error=child.error,
            parent_id=run.run_id,
        )
        run.children.append(ChildRun(role=role, outcome=outcome))


def _body(tasks: list[TaskRecord]) -> Body:
    views: list[dict[str, Any]] = [
        {
            "task": t.seq + 1,
            "agent": t.agent,
            "status": t.status,
            "run_id": t.run_id,
            "attempts": t.attempts,
            **({"error": t.error} if t.error else {}),
        }
        for t in tasks
    ]
    completed = sum(t.status == "completed" for t in tasks)
    failed = [v for v in views if v["status"] != "completed"]
    lines = [f"{completed} of {len(tasks)} tasks completed; each task's report is in children[].report."]
    lines += [f"- task {v['task']}: {v['agent']} {v['status']} ({v['run_id'] or 'not started'})" for v in views]
    status: PatternStatus = "completed" if completed else "failed"
    error = None if completed else "Every task failed."
    return Body(status, "\n".join(lines), {"tasks": views, "failed": failed}, error=error)


def _agents(args: TeamArgs) -> list[str]:
    return list(dict.fromkeys(t.agent for t in args.tasks))


DEFINITION = PatternDef(
    name="team",
    args=TeamArgs,
    body=team,
    planned=lambda args: len(args.tasks),
    agents=_agents,
    width=lambda args: min(args.workers, len(args.tasks)),
    needs_store=True,
    resumable=True,
)
