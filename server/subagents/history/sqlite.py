"""The run store in one SQLite file (the embedded default), or `:memory:` for tests.

One connection, one writer: every statement runs in the writer's batches, in a worker thread of its
own (a capacity of one), so a batch of writes is one `BEGIN IMMEDIATE` transaction with a savepoint
per job (one job's failure does not undo another's). Reads go through the same queue, so they see
every write this store took before them. Other processes on the same file take turns through
SQLite's own file locks (WAL: readers never wait for the writer).
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

    def _connect(self) -> sqlite3.Connection:
        conn = ops.connect(self.path)
        try:
            if self._migrate:
                self.applied = migrate(conn, now=self._now, where=self.where)
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
        return await self._call(lambda c: ops.create_run(c, values))

    async def append_messages(self, run_id: str, messages: Sequence[Message]) -> None:
        encoded = encode_messages(messages)
        if encoded:
            self._submit(lambda c: ops.append(c, run_id, encoded), f"append messages to run {run_id}")

    async def record_turn(
        self, run_id: str, messages: Sequence[Message], *, turns: int, usage: Usage, cost_usd: float | None
    ) -> None:
        encoded, progress = encode_messages(messages), (turns, *usage_values(usage), cost_usd)
        self._submit(lambda c: ops.record_turn(c, run_id, encoded, progress), f"record a turn of run {run_id}")

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
        await self._call(lambda c: ops.finish(c, run_id, outcome))

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

    def _submit(self, work: Work, label: str) -> None:
        self._check_open()
        self._writer.submit(Job(work, label))

    async def _call(self, work: Callable[[sqlite3.Connection], R], *, kind: JobKind = "write") -> R:
        self._check_open()
        return cast(R, await self._writer.call(Job(work, getattr(work, "__name__", "work"), kind=kind)))

    def _check_open(self) -> None:
        if self._tg is None:
            raise StoreError(f"The run store {self.where} is not open (use `async with store:`).")

    async def _execute(self, batch: builtins.list[Job[Work]]) -> None:
        await anyio.to_thread.run_sync(self._apply, batch, limiter=self._thread)

    def _apply(self, batch: builtins.list[Job[Work]]) -> None:
        """In the writer's thread: consecutive writes share one transaction; each read has its own."""
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


def _write(conn: sqlite3.Connection, jobs: Sequence[Job[Work]]) -> None:
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        for job in jobs:
            job.error = _store_error(exc)
        return
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
        for job in jobs:
            job.error = job.error or _store_error(exc)


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


def _iso(moment: datetime) -> str:
    """Fixed-width UTC ISO text, so text order is time order."""
    return aware(moment).isoformat(timespec="microseconds")
