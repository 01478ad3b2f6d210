"""Runs started in the background (`start_agent`), for clients that cut long calls short."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from subagents.errors import SubagentsError
from subagents.events import RunEvent
from subagents.principals import LOCAL, Principal

log = logging.getLogger(__name__)

StartedSink = Callable[[str], Awaitable[None]]


@dataclass
class Job:
    run_id: str
    agent: str
    principal: Principal = LOCAL  # who started it: only they see it through the job
    started_at: float = field(default_factory=time.monotonic)
    scope: anyio.CancelScope = field(default_factory=anyio.CancelScope)
    done: anyio.Event = field(default_factory=anyio.Event)
    outcome: Any = None  # the RunOutcome once finished
    progress: str = "starting"
    turn: int = 0
    max_turns: int = 0

    async def on_event(self, event: RunEvent) -> None:
        self.progress, self.turn, self.max_turns = event.message, event.turn, event.max_turns

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started_at


class JobManager:
    """Owns a task group for the server's lifetime; each job runs in its own cancel scope."""

    def __init__(self) -> None:
        self._tg: TaskGroup | None = None
        self._jobs: dict[str, Job] = {}
        self.stopping = False  # set once the server stops: jobs cancelled now were not cancelled by a caller

    @asynccontextmanager
    async def running(self) -> AsyncIterator[JobManager]:
        async with anyio.create_task_group() as tg:
            self._tg = tg
            try:
                yield self
            finally:
                self._tg = None
                self.stopping = True
                tg.cancel_scope.cancel()

    async def start(
        self, agent: str, run: Callable[[Job, StartedSink], Awaitable[Any]], *, principal: Principal = LOCAL
    ) -> Job:
        """Start `run` in the background for `principal` and return its job once the run has an id."""
        if self._tg is None:
            raise SubagentsError("Background runs are not available: the server is shutting down.")
        job: Job = await self._tg.start(self._run, Job(run_id="", agent=agent, principal=principal), run)
        return job

    async def _run(
        self, job: Job, run: Callable[[Job, StartedSink], Awaitable[Any]], task_status: TaskStatus[Job]
    ) -> None:

        async def started(run_id: str) -> None:
            job.run_id = run_id
            self._jobs[run_id] = job
            task_status.started(job)

        with job.scope:
            try:
                job.outcome = await run(job, started)
            except Exception:
                if not job.run_id:
                    raise  # failed before it had an id (say, refused at the run cap): start() reports it
                log.exception("background run %s failed", job.run_id)
        job.done.set()

    def cancel_all(self) -> None:
        """The server stops: every background job is cancelled (a resumable one is left to the next server)."""
        self.stopping = True
        for job in self.active():
            job.scope.cancel()

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Background housekeeping that lives as long as the server (and dies with it)."""
        if self._tg is not None:
            self._tg.start_soon(fn)

    def get(self, run_id: str, principal: Principal | None = None) -> Job | None:
        """The job, if any; with `principal`, only a job that principal may see (the local user sees all)."""
        job = self._jobs.get(run_id)
        if job is None or principal is None or principal.local or job.principal == principal:
            return job
        return None

    def active(self) -> Sequence[Job]:
        return [j for j in self._jobs.values() if not j.done.is_set()]

    async def cancel(self, run_id: str, principal: Principal | None = None, wait_s: float = 5.0) -> Job | None:
        """Cancel the job (one `principal` may see) and wait up to wait_s for it to end; None if no such job."""
        job = self.get(run_id, principal)
        if job is None:
            return None
        job.scope.cancel()
        with anyio.move_on_after(wait_s):
            await job.done.wait()
        return job
