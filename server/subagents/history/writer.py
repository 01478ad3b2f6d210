"""One writer per store: a task that takes queued work in order and applies it in batches.

The request path hands work over without waiting (`submit`) or, where it must know the outcome,
waits for its own piece only (`call`). Whatever is waiting when the writer wakes goes into one batch,
so under load many runs' turns share one transaction, and no lock or thread is held per run.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

import anyio
from anyio.abc import TaskStatus

log = logging.getLogger(__name__)

F = TypeVar("F")
JobKind = Literal["write", "read", "barrier"]
MAX_BATCH = 256
CLOSE_TIMEOUT_S = 30.0


@dataclass(eq=False)
class Job(Generic[F]):
    """One piece of work. `run` is the store's own function (sync for SQLite, async for PostgreSQL)."""

    run: F | None
    label: str
    kind: JobKind = "write"
    quick: bool = False  # small and of the hot path: the store may apply it without leaving the event loop
    done: anyio.Event | None = None  # set once applied, for callers that wait
    result: object = None
    error: BaseException | None = None


@dataclass(eq=False)
class _Stop:
    done: anyio.Event = field(default_factory=anyio.Event)


class BatchWriter(Generic[F]):
    """Applies jobs in the order submitted; `execute` applies one batch and sets each job's result or error."""

    def __init__(self, execute: Callable[[list[Job[F]]], Awaitable[None]], *, where: str) -> None:
        self._execute = execute
        self._where = where
        self._send, self._receive = anyio.create_memory_object_stream[Job[F] | _Stop](math.inf)
        self.pending = 0  # jobs taken and not yet applied

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """The writer task. Shielded: only `close` stops it, after everything queued is applied."""
        with anyio.CancelScope(shield=True):
            task_status.started()
            async with self._receive:
                while True:
                    batch, stop = await self._next_batch()
                    if batch:
                        await self._apply(batch)
                    if stop is not None:
                        stop.done.set()
                        return

    def submit(self, job: Job[F]) -> None:
        """Queue a job and return at once; a failure is logged with the job's label."""
        self.pending += 1
        self._send.send_nowait(job)

    async def call(self, job: Job[F]) -> object:
        """Queue a job and wait until it is applied (committed, for a write); raise what it raised."""
        job.done = anyio.Event()
        self.submit(job)
        await job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    async def flush(self) -> None:
        """Wait until every job submitted before this call has been applied."""
        if self.pending:
            await self.call(Job(None, "flush", kind="barrier"))

    async def close(self) -> None:
        """Apply what is queued, then stop the writer task."""
        stop = _Stop()
        self._send.send_nowait(stop)
        self._send.close()
        with anyio.CancelScope(shield=True), anyio.move_on_after(CLOSE_TIMEOUT_S):
            await stop.done.wait()
        if not stop.done.is_set():
            log.error("the run store %s did not finish %d queued writes within %g s", self._where, self.pending, 30)

    async def _next_batch(self) -> tuple[list[Job[F]], _Stop | None]:
        first = await self._receive.receive()
        if isinstance(first, _Stop):
            return [], first
        batch = [first]
        while len(batch) < MAX_BATCH:
            try:
                item = self._receive.receive_nowait()
            except anyio.WouldBlock:
                break
            if isinstance(item, _Stop):
                return batch, item
            batch.append(item)
        return batch, None

    async def _apply(self, batch: list[Job[F]]) -> None:
        try:
            await self._execute(batch)
        except Exception as exc:  # the store's own error handling failed: every job hears of it
            log.exception("the run store %s failed a batch of %d writes", self._where, len(batch))
            for job in batch:
                job.error = job.error or exc
        finally:
            self.pending -= len(batch)
            for job in batch:
                if job.done is not None:
                    job.done.set()
                elif job.error is not None:
                    log.error("the run store %s could not %s: %s", self._where, job.label, job.error)
