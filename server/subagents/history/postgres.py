"""The run store in PostgreSQL, for team deployments: several replicas share one database.

psycopg 3 (async) with a connection pool. Writes go through one writer task per store, batched into
one transaction (a savepoint per job); reads use pooled connections side by side, after the writer
has applied what this store took before them. A listener connection hears cancel requests (NOTIFY),
so a replica stops a run another replica was asked to cancel at once, not at its next poll.
Imported only when a `postgresql://` store is used (the `postgres` extra).
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from types import TracebackType
from typing import Any, Literal, Self, TypeVar, cast
from urllib.parse import urlsplit, urlunsplit

import anyio
import psycopg
from anyio.abc import TaskGroup
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from subagents.history import postgres_ops as ops
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
from subagents.history.postgres_batch import Work, apply_alone, apply_together
from subagents.history.postgres_schema import PG_MIGRATIONS, pg_applied_versions, pg_migrate, pg_version_of
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
from subagents.history.writer import BatchWriter, Job
from subagents.messages import Message, Usage
from subagents.processes import process_owner

log = logging.getLogger(__name__)
R = TypeVar("R")
CONNECT_TIMEOUT_S = 10


class PostgresRunStore:
    """Runs, transcripts and task queues in PostgreSQL (see `RunStore` for the contract)."""

    backend: Literal["postgresql"] = "postgresql"

    def __init__(
        self,
        url: str,
        *,
        now: Callable[[], datetime] = utc_now,
        owner: str | None = None,
        lease_ttl_s: float = LEASE_TTL_S,
        migrate: bool = True,
        pool_size: int = 8,
    ) -> None:
        self.url = url
        self.where = redact(url)
        self.owner = owner or process_owner()
        self._now = now
        self._lease = timedelta(seconds=lease_ttl_s)
        self._migrate = migrate
        self._pool_size = pool_size
        self._pool: AsyncConnectionPool[psycopg.AsyncConnection[Any]] | None = None
        self._writer: BatchWriter[Work] = BatchWriter(self._execute, where=self.where)
        self._tg: TaskGroup | None = None
        self._cancel_signal = anyio.Event()
        self._listener: psycopg.AsyncConnection[Any] | None = None  # started by the first cancel watch
        self._listening = False
        self.applied: builtins.list[int] = []

    # --- lifetime ---

    async def __aenter__(self) -> Self:
        await self._prepare()
        self._pool = AsyncConnectionPool(
            self.url,
            min_size=1,
            max_size=self._pool_size,
            kwargs={"autocommit": True, "row_factory": dict_row},
            timeout=CONNECT_TIMEOUT_S,
            open=False,
            name="subagents-store",
        )
        await self._pool.open(wait=True, timeout=CONNECT_TIMEOUT_S)
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
            self._listening = False
            if self._listener is not None:
                await self._listener.close()  # ends the listener's wait without a cancelled query
            await self._writer.close()
            tg.cancel_scope.cancel()  # a listener between connections; the writer has stopped by now
            await tg.__aexit__(None, None, None)
        finally:
            if self._pool is not None:
                await self._pool.close()

    async def _prepare(self) -> None:
        """Connect once outside the pool, so a wrong URL is one clear error; migrate if asked."""
        try:
            conn = await psycopg.AsyncConnection.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
        except psycopg.Error as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].rstrip(".")
            raise StoreError(
                f"Cannot connect to the PostgreSQL run store {self.where}: {reason}. "
                "Check the URL in --store / SUBAGENTS_STORE, and that the server is up."
            ) from None
        async with conn:
            if self._migrate:
                self.applied = await pg_migrate(conn, now=self._now, where=self.where)

    async def _listen(self) -> None:
        """Wake the cancel watcher when a cancel request for one of our runs arrives."""
        while self._listening:
            try:
                self._listener = await psycopg.AsyncConnection.connect(self.url, autocommit=True)
                async with self._listener:
                    await self._listener.execute(f"LISTEN {ops.CANCEL_CHANNEL}")
                    async for notify in self._listener.notifies():
                        if notify.payload == self.owner:
                            self._cancel_signal.set()
            except psycopg.Error as exc:
                if not self._listening:
                    return  # closed by __aexit__
                log.warning("cancel listener on %s lost its connection (%s); polling until it is back", self.where, exc)
            await anyio.sleep(1)

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
        values: dict[str, Any] = {
            "id": run_id or new_run_id(),
            "agent": agent,
            "model": model,
            "status": "running",
            "input_json": input.model_dump_json(),
            "task": input.task,
            "created_at": now,
            "parent_id": parent_id,
            "client": client,
            "continued_from": continued_from,
            "principal": principal,
            "backend": backend,
            "billed_to": billed_to,
            "owner": self.owner,
            "lease_expires_at": now + self._lease,
        }
        encoded = encode_messages(messages)
        return await self._call(lambda c: ops.create_run(c, values, encoded))

    async def append_messages(self, run_id: str, messages: Sequence[Message]) -> None:
        encoded = encode_messages(messages)
        if encoded:
            self._submit(lambda c, fast: ops.append(c, run_id, encoded, fast=fast), f"append messages to run {run_id}")

    async def record_turn(
        self, run_id: str, messages: Sequence[Message], *, turns: int, usage: Usage, cost_usd: float | None
    ) -> None:
        encoded, progress = encode_messages(messages), (turns, *usage_values(usage), cost_usd)
        label = f"record a turn of run {run_id}"
        self._submit(lambda c, fast: ops.record_turn(c, run_id, encoded, progress, fast=fast), label)

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
        outcome = (status, report, error, *usage_values(usage), cost_usd, turns, stop_reason, diff, aware(self._now()))
        await self._call(lambda c: ops.finish(c, run_id, outcome))

    async def flush(self) -> None:
        self._check_open()
        await self._writer.flush()

    # --- runs: leases and cancellation ---

    async def request_cancel(self, run_id: str, *, principal: str | None = None) -> RunStatus:
        now = aware(self._now())
        return cast(RunStatus, await self._call(lambda c: ops.request_cancel(c, run_id, principal, now)))

    async def cancel_requests(self) -> builtins.list[str]:
        return await self._read(lambda c: ops.cancel_requests(c, self.owner))

    async def wait_for_cancel_requests(self, timeout_s: float) -> None:
        if not self._listening and self._tg is not None:  # only a process that executes runs listens
            self._listening = True
            self._tg.start_soon(self._listen)
        with anyio.move_on_after(timeout_s):
            await self._cancel_signal.wait()
        if self._cancel_signal.is_set():
            self._cancel_signal = anyio.Event()

    async def renew_leases(self) -> None:
        lease = aware(self._now()) + self._lease
        await self._call(lambda c: ops.renew(c, self.owner, lease))

    async def mark_interrupted(self) -> int:
        now = aware(self._now())
        return await self._call(lambda c: ops.mark_interrupted(c, self.owner, now))

    async def adopt_run(self, run_id: str) -> bool:
        lease = aware(self._now()) + self._lease
        return await self._call(lambda c: ops.adopt(c, run_id, self.owner, lease))

    # --- runs: reads ---

    async def get(self, run_id: str, *, principal: str | None = None) -> RunRecord:
        return await self._read(lambda c: ops.get(c, run_id, principal))

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
        return await self._read(lambda c: ops.list_runs(c, filters, limit, offset))

    async def match_ids(self, prefix: str, *, limit: int = 10) -> builtins.list[str]:
        return await self._read(lambda c: ops.match_ids(c, prefix, limit))

    async def stats(self, *, since: datetime | None = None) -> builtins.list[AgentStats]:
        start = None if since is None else aware(since)
        return await self._read(lambda c: ops.stats(c, start))

    async def cost_since(self, since: datetime, *, principal: str | None = None) -> float:
        start = aware(since)
        return await self._read(lambda c: ops.cost_since(c, start, principal))

    async def schema_status(self) -> SchemaStatus:
        found = await self._read(pg_applied_versions)
        return SchemaStatus(
            where=self.where,
            backend="postgresql",
            exists=found is not None,
            version=max(found) if found else None,
            latest=pg_version_of(PG_MIGRATIONS[-1]),
            pending=tuple(name for name, _ in PG_MIGRATIONS if pg_version_of((name, "")) not in (found or [])),
        )

    # --- task queue ---

    async def enqueue_tasks(
        self, parent_id: str, tasks: Sequence[TaskSpec], *, max_attempts: int = 2
    ) -> builtins.list[TaskRecord]:
        check_tasks(tasks, max_attempts)
        now = aware(self._now())
        rows = [(new_task_id(), t.agent, t.input.model_dump_json(), max_attempts, now) for t in tasks]
        return await self._call(lambda c: ops.enqueue(c, parent_id, rows))

    async def claim_task(self, parent_id: str) -> TaskRecord | None:
        now = aware(self._now())
        return await self._call(lambda c: ops.claim(c, parent_id, self.owner, now, now + self._lease))

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
        outcome = (status, result, error, aware(self._now()))
        return await self._call(lambda c: ops.finish_task(c, task_id, attempt, self.owner, outcome, run_id))

    async def list_tasks(self, parent_id: str) -> builtins.list[TaskRecord]:
        return await self._read(lambda c: ops.list_tasks(c, parent_id))

    async def task_counts(self, parent_id: str) -> TaskCounts:
        return await self._read(lambda c: ops.task_counts(c, parent_id))

    async def reclaim_tasks(self) -> int:
        now = aware(self._now())
        return await self._call(lambda c: ops.reclaim(c, self.owner, now))

    async def parents_with_queued_tasks(self) -> builtins.list[str]:
        return await self._read(ops.parents_with_queued)

    # --- the writer and the pool ---

    def _submit(self, work: Work, label: str) -> None:
        self._check_open()
        self._writer.submit(Job(work, label))

    async def _call(self, work: Callable[[ops.Conn], Awaitable[R]]) -> R:
        self._check_open()

        async def run(conn: ops.Conn, fast: bool) -> object:
            return await work(conn)

        return cast(R, await self._writer.call(Job(run, getattr(work, "__name__", "work"))))

    async def _read(self, work: Callable[[ops.Conn], Awaitable[R]]) -> R:
        self._check_open()
        assert self._pool is not None
        await self._writer.flush()  # see this store's own queued writes
        try:
            async with self._pool.connection() as conn:
                return await work(conn)
        except psycopg.Error as exc:
            raise _store_error(self.where, exc) from exc

    def _check_open(self) -> None:
        if self._tg is None:
            raise StoreError(f"The run store {self.where} is not open (use `async with store:`).")

    async def _execute(self, batch: builtins.list[Job[Work]]) -> None:
        writes = [job for job in batch if job.kind == "write"]
        if not writes:
            return
        assert self._pool is not None
        try:
            async with self._pool.connection() as conn:
                if (len(writes) == 1 and writes[0].done is not None) or not await apply_together(conn, writes):
                    for job in writes:
                        await apply_alone(conn, job)
        except (psycopg.Error, OSError) as exc:
            for job in writes:
                job.error = job.error or _store_error(self.where, exc)


def _store_error(where: str, exc: BaseException) -> Exception:
    if isinstance(exc, psycopg.errors.IntegrityError):
        return exc
    return StoreError(f"The PostgreSQL run store {where} failed: {exc}")


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))
