"""The run store in one SQLite file (the embedded default), or `:memory:` for tests.

One connection, one writer: every statement runs in the writer's batches, so a batch of writes is one
`BEGIN IMMEDIATE` transaction with a savepoint per job (one job's failure does not undo another's).
Reads go through the same queue, so they see every write this store took before them. Other processes
on the same file take turns through SQLite's own file locks (WAL: readers never wait for the writer).

Where a batch runs: a batch of a run's own small writes (its start, a turn, its end) commits on the
event loop, as long as it needs no waiting: a hop to a worker thread and back costs more CPU than such
a write (two GIL hand-offs and a loop wake-up), and per agent call those hops were most of what the
store added. If another process holds the file's write lock, that batch goes to the store's worker
thread (a capacity of one), as do reads, larger writes and everything else. WAL checkpoints, which
fsync, run in a thread of their own on a second connection, never in a commit on the loop.
"""

from __future__ import annotations

import builtins
import logging
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Literal, Self, TypeVar, cast

import anyio
from anyio.abc import TaskGroup

from subagents.history import sqlite_ops as ops
from subagents.history.base import (
    LEASE_TTL_S,
    aware,
    check_final_status,
    check_status_filter,
    check_task_end,
    check_tasks,
    new_run_id,
    new_task_id,
    utc_now,
)
from subagents.history.records import (
    AgentStats,
    RunInput,
    RunRecord,
    RunStatus,
    RunSummary,
    SchemaStatus,
    StoreError,
    TaskCounts,
    TaskRecord,
    TaskSpec,
)
from subagents.history.rows import encode_messages, usage_values
from subagents.history.schema import MIGRATIONS, applied_versions, migrate, version_of
from subagents.history.writer import BatchWriter, Job, JobKind
from subagents.messages import Message, Usage
from subagents.processes import process_owner

log = logging.getLogger(__name__)
MEMORY = ":memory:"
R = TypeVar("R")
Work = Callable[[sqlite3.Connection], object]
QUICK_BYTES = 64 * 1024  # a run's write carrying more transcript than this goes to the thread
QUICK_BATCH = 16  # and a batch of more jobs (many runs at once): at most ~1 MiB written on the loop
CHECKPOINT_EVERY = 200  # batches between WAL checkpoints (SQLite's own default is ~1,000 pages)


class SQLiteRunStore:
    """Runs, transcripts and task queues in one SQLite file (see `RunStore` for the contract)."""

    backend: Literal["sqlite"] = "sqlite"

    def __init__(
        self,
        path: Path | str,
        *,
        now: Callable[[], datetime] = utc_now,
        owner: str | None = None,
        lease_ttl_s: float = LEASE_TTL_S,
        migrate: bool = True,
    ) -> None:
        self.path: Path | str = path if str(path) == MEMORY else Path(path).expanduser()
        self.where = str(self.path)
        self.owner = owner or process_owner()
        self._now = now
        self._lease = timedelta(seconds=lease_ttl_s)
        self._migrate = migrate
        self._conn: sqlite3.Connection | None = None
        self._thread = anyio.CapacityLimiter(1)
        self._writer: BatchWriter[Work] = BatchWriter(self._execute, where=self.where)
        self._since_checkpoint = 0  # batches applied since the last checkpoint started
        self._checkpointer: sqlite3.Connection | None = None  # opened by the first checkpoint
        self._checkpoint_thread = anyio.CapacityLimiter(1)
        self._tg: TaskGroup | None = None
        self.applied: builtins.list[int] = []  # migrations applied when this store opened

    # --- lifetime ---

    async def __aenter__(self) -> Self:
        self._conn = await anyio.to_thread.run_sync(self._connect, limiter=self._thread)
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        await self._tg.start(self._writer.run)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._tg is None:
            return
        tg, self._tg = self._tg, None
        try:
            await self._writer.close()
        finally:
            if self._conn is not None:
                self._conn.close()
            await tg.__aexit__(None, None, None)
            if self._checkpointer is not None:
                self._checkpointer.close()

    def _connect(self) -> sqlite3.Connection:
        conn = ops.connect(self.path)
        try:
            if self._migrate:
                self.applied = migrate(conn, now=self._now, where=self.where)
            if self.path != MEMORY:
                conn.execute("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint: never inside a commit
            conn.execute("PRAGMA busy_timeout = 0")  # on the loop, never wait for a lock; the thread does
        except BaseException:
            conn.close()
            raise
        return conn

    # --- runs: writes ---

    async def create_run(
        self,
        *,
        agent: str,
        model: str,
        input: RunInput,
        parent_id: str | None = None,
        client: str | None = None,
        continued_from: str | None = None,
        principal: str | None = None,
        run_id: str | None = None,
        backend: str | None = None,
        billed_to: str | None = None,
        messages: Sequence[Message] = (),
    ) -> str:
        now = aware(self._now())
        values: dict[str, object] = {
            "id": run_id or new_run_id(),
            "agent": agent,
            "model": model,
            "status": "running",
            "input_json": input.model_dump_json(),
            "created_at": _iso(now),
            "parent_id": parent_id,
            "client": client,
            "continued_from": continued_from,
            "principal": principal,
            "backend": backend,
            "billed_to": billed_to,
            "owner": self.owner,
            "lease_expires_at": _iso(now + self._lease),
        }
        encoded = encode_messages(messages)
        return await self._call(lambda c: ops.create_run(c, values, encoded), quick=_small(encoded))

    async def append_messages(self, run_id: str, messages: Sequence[Message]) -> None:
        encoded = encode_messages(messages)
        if encoded:
            work: Work = lambda c: ops.append(c, run_id, encoded)  # noqa: E731
            self._submit(work, f"append messages to run {run_id}", quick=_small(encoded))

    async def record_turn(
        self, run_id: str, messages: Sequence[Message], *, turns: int, usage: Usage, cost_usd: float | None
    ) -> None:
        encoded, progress = encode_messages(messages), (turns, *usage_values(usage), cost_usd)
        work: Work = lambda c: ops.record_turn(c, run_id, encoded, progress)  # noqa: E731
        self._submit(work, f"record a turn of run {run_id}", quick=_small(encoded))

    async def finish(
        self,
        run_id: str,
        *,
        status: RunStatus,
        report: str | None,
        error: str | None,
        usage: Usage,
        cost_usd: float | None,
        turns: int,
        stop_reason: str | None,
        diff: str | None = None,
    ) -> None:
        check_final_status(status)
        outcome = (status, report, error, *usage_values(usage), cost_usd, turns, stop_reason, diff, self._iso_now())
        small = len(report or "") + len(error or "") + len(diff or "") <= QUICK_BYTES
        await self._call(lambda c: ops.finish(c, run_id, outcome), quick=small)

    async def flush(self) -> None:
        self._check_open()
        await self._writer.flush()

    # --- runs: leases and cancellation ---

    async def request_cancel(self, run_id: str, *, principal: str | None = None) -> RunStatus:
        now = self._iso_now()
        return cast(RunStatus, await self._call(lambda c: ops.request_cancel(c, run_id, principal, now)))

    async def cancel_requests(self) -> builtins.list[str]:
        return await self._call(lambda c: ops.cancel_requests(c, self.owner), kind="read")

    async def wait_for_cancel_requests(self, timeout_s: float) -> None:
        await anyio.sleep(timeout_s)  # a poll: SQLite has no way to signal another process

    async def renew_leases(self) -> None:
        lease = _iso(aware(self._now()) + self._lease)
        await self._call(lambda c: ops.renew(c, self.owner, lease))

    async def mark_interrupted(self) -> int:
        now = self._iso_now()
        return await self._call(lambda c: ops.mark_interrupted(c, self.owner, now))

    async def adopt_run(self, run_id: str) -> bool:
        lease = _iso(aware(self._now()) + self._lease)
        return await self._call(lambda c: ops.adopt(c, run_id, self.owner, lease))

    # --- runs: reads ---

    async def get(self, run_id: str, *, principal: str | None = None) -> RunRecord:
        return await self._call(lambda c: ops.get(c, run_id, principal), kind="read")

    async def list(
        self,
        *,
        agent: str | None = None,
        status: str | None = None,
        parent_id: str | None = None,
        principal: str | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> builtins.list[RunSummary]:
        check_status_filter(status)
        filters = {"agent": agent, "status": status, "parent_id": parent_id, "principal": principal}
        return await self._call(lambda c: ops.list_runs(c, filters, limit, offset), kind="read")

    async def match_ids(self, prefix: str, *, limit: int = 10) -> builtins.list[str]:
        return await self._call(lambda c: ops.match_ids(c, prefix, limit), kind="read")

    async def stats(self, *, since: datetime | None = None) -> builtins.list[AgentStats]:
        start = None if since is None else _iso(aware(since))
        return await self._call(lambda c: ops.stats(c, start), kind="read")

    async def cost_since(self, since: datetime, *, principal: str | None = None) -> float:
        start = _iso(aware(since))
        return await self._call(lambda c: ops.cost_since(c, start, principal), kind="read")

    async def schema_status(self) -> SchemaStatus:
        versions = await self._call(applied_versions, kind="read")
        return SchemaStatus(
            where=self.where,
            backend="sqlite",
            exists=versions is not None,
            version=max(versions, default=None) if versions else None,
            latest=version_of(MIGRATIONS[-1]),
            pending=tuple(m.__name__ for m in MIGRATIONS if version_of(m) not in (versions or [])),
        )

    # --- task queue ---

    async def enqueue_tasks(
        self, parent_id: str, tasks: Sequence[TaskSpec], *, max_attempts: int = 2
    ) -> builtins.list[TaskRecord]:
        check_tasks(tasks, max_attempts)
        now = self._iso_now()
        rows = [(new_task_id(), t.agent, t.input.model_dump_json(), max_attempts, now) for t in tasks]
        return await self._call(lambda c: ops.enqueue(c, parent_id, rows))

    async def claim_task(self, parent_id: str) -> TaskRecord | None:
        now = aware(self._now())
        lease = _iso(now + self._lease)
        return await self._call(lambda c: ops.claim(c, parent_id, self.owner, _iso(now), lease))

    async def attach_task_run(self, task_id: str, *, attempt: int, run_id: str) -> bool:
        return await self._call(lambda c: ops.attach(c, task_id, attempt, self.owner, run_id))

    async def finish_task(
        self,
        task_id: str,
        *,
        attempt: int,
        status: str,
        result: str | None = None,
        error: str | None = None,
        run_id: str | None = None,
    ) -> bool:
        check_task_end(status)
        outcome = (status, result, error, self._iso_now())
        return await self._call(lambda c: ops.finish_task(c, task_id, attempt, self.owner, outcome, run_id))

    async def list_tasks(self, parent_id: str) -> builtins.list[TaskRecord]:
        return await self._call(lambda c: ops.list_tasks(c, parent_id), kind="read")

    async def task_counts(self, parent_id: str) -> TaskCounts:
        return await self._call(lambda c: ops.task_counts(c, parent_id), kind="read")

    async def reclaim_tasks(self) -> int:
        now = self._iso_now()
        return await self._call(lambda c: ops.reclaim(c, self.owner, now))

    async def parents_with_queued_tasks(self) -> builtins.list[str]:
        return await self._call(ops.parents_with_queued, kind="read")

    # --- the writer ---

    def _submit(self, work: Work, label: str, *, quick: bool = False) -> None:
        self._check_open()
        self._writer.submit(Job(work, label, quick=quick))

    async def _call(
        self, work: Callable[[sqlite3.Connection], R], *, kind: JobKind = "write", quick: bool = False
    ) -> R:
        self._check_open()
        job: Job[Work] = Job(work, getattr(work, "__name__", "work"), kind=kind, quick=quick)
        if quick and kind == "write" and self._writer.pending == 0 and self._apply_quick([job]):
            # Nothing queued ahead of it, and no lock to wait for: committed here, in order, without the
            # round trip through the writer task (two loop iterations).
            self._applied()
            if job.error is not None:
                raise job.error
            return cast(R, job.result)
        return cast(R, await self._writer.call(job))

    def _check_open(self) -> None:
        if self._tg is None:
            raise StoreError(f"The run store {self.where} is not open (use `async with store:`).")

    async def _execute(self, batch: builtins.list[Job[Work]]) -> None:
        quick = len(batch) <= QUICK_BATCH and all(job.quick or job.kind == "barrier" for job in batch)
        if not (quick and self._apply_quick(batch)):
            await anyio.to_thread.run_sync(self._apply, batch, limiter=self._thread)
        self._applied()

    def _applied(self) -> None:
        """Count a batch applied; every CHECKPOINT_EVERY, start a checkpoint."""
        self._since_checkpoint += 1
        if self._since_checkpoint >= CHECKPOINT_EVERY and self.path != MEMORY and self._tg is not None:
            self._since_checkpoint = 0
            self._tg.start_soon(self._checkpoint)

    def _apply_quick(self, batch: builtins.list[Job[Work]]) -> bool:
        """On the event loop, a batch of small writes, without waiting for a lock: False, with nothing
        applied, when another process holds the write lock (the thread then waits for it)."""
        assert self._conn is not None
        writes = [job for job in batch if job.kind == "write"]
        return _write(self._conn, writes, wait=False) if writes else True

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database file (PASSIVE: it never blocks a writer), off the loop: it fsyncs."""
        try:
            await anyio.to_thread.run_sync(self._checkpoint_now, limiter=self._checkpoint_thread)
        except Exception as exc:  # the next one tries again (meanwhile the WAL only grows); the store goes on
            log.warning("could not checkpoint the run store %s: %s", self.where, exc)

    def _checkpoint_now(self) -> None:
        if self._checkpointer is None:
            self._checkpointer = ops.connect(self.path)
        self._checkpointer.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _apply(self, batch: builtins.list[Job[Work]]) -> None:
        """In the writer's thread, waiting for other processes' locks as long as SQLite's busy timeout:
        consecutive writes share one transaction; each read has its own."""
        assert self._conn is not None
        self._conn.execute(f"PRAGMA busy_timeout = {ops.BUSY_TIMEOUT_MS}")
        try:
            self._apply_waiting(batch)
        finally:
            self._conn.execute("PRAGMA busy_timeout = 0")

    def _apply_waiting(self, batch: builtins.list[Job[Work]]) -> None:
        assert self._conn is not None
        start = 0
        while start < len(batch):
            end = start + 1
            if batch[start].kind == "write":
                while end < len(batch) and batch[end].kind == "write":
                    end += 1
                _write(self._conn, batch[start:end])
            elif batch[start].kind == "read":
                _read(self._conn, batch[start])
            start = end

    def _iso_now(self) -> str:
        return _iso(aware(self._now()))


def _write(conn: sqlite3.Connection, jobs: Sequence[Job[Work]], *, wait: bool = True) -> bool:
    """Apply the jobs in one transaction; False, with nothing done, if it could not begin without waiting."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        if not wait:
            return False
        for job in jobs:
            job.error = _store_error(exc)
        return True
    for job in jobs:
        conn.execute("SAVEPOINT job")
        try:
            assert job.run is not None
            job.result = job.run(conn)
            conn.execute("RELEASE job")
        except Exception as exc:
            job.error = exc
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
    try:
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        _rollback(conn)
        if not wait and isinstance(exc, sqlite3.OperationalError):  # a lock met at the end: undone, to retry
            for job in jobs:
                job.result = job.error = None
            return False
        for job in jobs:
            job.error = job.error or _store_error(exc)
    return True


def _read(conn: sqlite3.Connection, job: Job[Work]) -> None:
    # One read transaction, so a multi-statement read sees one snapshot.
    conn.execute("BEGIN")
    try:
        assert job.run is not None
        job.result = job.run(conn)
    except Exception as exc:
        job.error = exc
    finally:
        _rollback(conn)


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        conn.execute("ROLLBACK")


def _store_error(exc: sqlite3.Error) -> Exception:
    return exc if isinstance(exc, sqlite3.IntegrityError) else StoreError(f"The run store could not write: {exc}")


def _small(encoded: Sequence[tuple[str, str]]) -> bool:
    return sum(len(content) for _, content in encoded) <= QUICK_BYTES


def _iso(moment: datetime) -> str:
    """Fixed-width UTC ISO text, so text order is time order."""
    return aware(moment).isoformat(timespec="microseconds")
