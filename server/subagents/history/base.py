"""The run store's interface, shared by the SQLite and the PostgreSQL store, and what both rely on.

Writes come in two kinds. Queued writes (`append_messages`, `record_turn`) return once the store has
taken them: one writer per store applies them in order, batching whatever is waiting into one
transaction, so the request path never waits on the database. Every other write returns once it is
committed: `create_run` (its checks must hold), `finish` (a run's end must be durable before its
caller sees the result), and the task queue. A commit is in order, so once `finish` returns, every
turn queued before it is durable too. Reads see every write this store instance took before them.

Several processes may share one store (local stdio servers on one SQLite file, replicas on one
PostgreSQL database). The process that executes a run owns it and renews a lease on it; a run whose
lease expired (or, on SQLite, whose process on this host is gone) is marked `interrupted` by
whichever process looks next.
"""

from __future__ import annotations

import builtins
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Protocol, Self

from subagents.history.records import (
    STATUSES,
    AgentStats,
    RunInput,
    RunRecord,
    RunStatus,
    RunSummary,
    SchemaStatus,
    TaskCounts,
    TaskRecord,
    TaskSpec,
)
from subagents.messages import Message, Usage

INTERRUPTED_ERROR = "server stopped while the run was in progress"
TASK_INTERRUPTED_ERROR = "the process running this task stopped, and it was already retried"
PREVIEW_CHARS = 200
# A process renews its leases every LEASE_RENEW_S; one that misses them for LEASE_TTL_S is taken for dead.
LEASE_RENEW_S = 5.0
LEASE_TTL_S = 20.0
CANCEL_POLL_S = 0.25  # how often an executing process looks for cancel requests of its own runs
MAX_TASKS_PER_ENQUEUE = 1000


class RunStore(Protocol):
    """Runs, their transcripts, and task queues, durable across restarts and shared across processes.

    Open it with `async with store:` (which applies migrations) before any other call.
    `principal` on a read: None reads every run (the operator, a single-user stdio server); a name
    reads only that principal's runs, and another principal's run answers like an unknown id.
    """

    where: str  # where the store lives, for messages (a path, or a URL without its password)
    owner: str  # this process, as recorded on the runs it executes and the tasks it claims
    applied: builtins.list[int]  # the migrations this store applied when it opened

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

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
        """Record a new `running` run owned (and leased) by this process; return its id once committed.
        `backend` (anthropic, claude-code) and `billed_to` (who pays, in words) say how it ran; `messages`,
        the conversation it starts from, goes into the same transaction.

        Raises RunNotFoundError when parent_id or continued_from names no run."""
        ...

    async def append_messages(self, run_id: str, messages: Sequence[Message]) -> None:
        """Queue messages for the run's transcript (seq numbers continue without gaps)."""
        ...

    async def record_turn(
        self, run_id: str, messages: Sequence[Message], *, turns: int, usage: Usage, cost_usd: float | None
    ) -> None:
        """Queue one model turn: its messages and the run's turns, usage and cost so far, as one write."""
        ...

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
        """Record the outcome and finished_at; durable (with every write queued before it) on return.

        Overwrites `interrupted`, which another process may have set while the run was still going."""
        ...

    async def flush(self) -> None:
        """Return once every write this store took before the call is committed (or failed and logged)."""
        ...

    # --- runs: leases and cancellation across processes ---

    async def request_cancel(self, run_id: str, *, principal: str | None = None) -> RunStatus:
        """Ask the process executing the run to stop it; return the run's status (a no-op unless running)."""
        ...

    async def cancel_requests(self) -> builtins.list[str]:
        """Ids of this process's running runs that someone asked to stop."""
        ...

    async def wait_for_cancel_requests(self, timeout_s: float) -> None:
        """Sleep up to timeout_s; PostgreSQL wakes early when a cancel request arrives (NOTIFY)."""
        ...

    async def renew_leases(self) -> None:
        """Push out the lease on every run and task claim this process holds."""
        ...

    async def mark_interrupted(self) -> int:
        """Mark `interrupted` the running runs whose owner is gone: lease expired (or, on SQLite, its
        process on this host has died). Returns how many."""
        ...

    async def adopt_run(self, run_id: str) -> bool:
        """Take over an `interrupted` run to finish it (a team whose server died): `running` again, owned and
        leased by this process. False when it is not interrupted (ended, or another process took it first)."""
        ...

    # --- runs: reads ---

    async def get(self, run_id: str, *, principal: str | None = None) -> RunRecord:
        """The whole run, transcript included. Raises RunNotFoundError."""
        ...

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
        """Runs, newest first, optionally only one agent's, status's, parent's or principal's."""
        ...

    async def match_ids(self, prefix: str, *, limit: int = 10) -> builtins.list[str]:
        """Ids of runs that start with `prefix`, newest first (for `runs show` with a short id)."""
        ...

    async def stats(self, *, since: datetime | None = None) -> builtins.list[AgentStats]:
        """Calls, outcomes, tokens and cost per (agent, model), optionally only runs created since."""
        ...

    async def cost_since(self, since: datetime, *, principal: str | None = None) -> float:
        """Known cost of every run created since `since`, running ones included, across all processes, in one
        sum (optionally only one principal's runs)."""
        ...

    async def schema_status(self) -> SchemaStatus:
        """The schema version found and the migrations still to apply."""
        ...

    # --- task queue: independent tasks under a parent run (the team pattern) ---

    async def enqueue_tasks(
        self, parent_id: str, tasks: Sequence[TaskSpec], *, max_attempts: int = 2
    ) -> builtins.list[TaskRecord]:
        """Queue tasks under a parent run, in order; returns them as recorded."""
        ...

    async def claim_task(self, parent_id: str) -> TaskRecord | None:
        """Atomically claim the parent's next queued task for this process (status `running`, attempts
        + 1, leased); None when none is queued. No task is ever held by two claimers."""
        ...

    async def attach_task_run(self, task_id: str, *, attempt: int, run_id: str) -> bool:
        """Record which run executes the claimed task; False if this claim was lost (see finish_task)."""
        ...

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
        """Record a claimed task's end (`completed` or `failed`). False, and nothing written, when this
        claim (`attempt`) is no longer the task's live claim: its lease expired and it was reclaimed."""
        ...

    async def list_tasks(self, parent_id: str) -> builtins.list[TaskRecord]:
        """The parent's tasks in queue order."""
        ...

    async def task_counts(self, parent_id: str) -> TaskCounts:
        """How many of the parent's tasks are queued, running, completed and failed."""
        ...

    async def reclaim_tasks(self) -> int:
        """Claims whose lease expired: queued again while attempts remain, else failed. Returns how many."""
        ...

    async def parents_with_queued_tasks(self) -> builtins.list[str]:
        """Parent runs that still have queued tasks (to resume them after a restart)."""
        ...


def new_run_id() -> str:
    return f"run_{uuid.uuid4().hex[:12]}"


def new_task_id() -> str:
    return f"task_{uuid.uuid4().hex[:12]}"


def utc_now() -> datetime:
    return datetime.now(UTC)


def aware(moment: datetime) -> datetime:
    """The moment in UTC; naive datetimes are refused, since stores compare times across processes."""
    if moment.utcoffset() is None:
        raise ValueError(f"Timestamps must be timezone-aware; got naive {moment!r}.")
    return moment.astimezone(UTC)


def check_final_status(status: str) -> None:
    if status == "running" or status not in STATUSES:
        raise ValueError(f"finish() needs a final status, one of {STATUSES[1:]}; got {status!r}")


def check_status_filter(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise ValueError(f"Unknown run status {status!r}; use one of {', '.join(STATUSES)}.")


def check_task_end(status: str) -> None:
    if status not in ("completed", "failed"):
        raise ValueError(f"finish_task() needs status 'completed' or 'failed'; got {status!r}")


def check_tasks(tasks: Sequence[TaskSpec], max_attempts: int) -> None:
    if not 1 <= len(tasks) <= MAX_TASKS_PER_ENQUEUE:
        raise ValueError(f"Queue between 1 and {MAX_TASKS_PER_ENQUEUE} tasks at once; got {len(tasks)}.")
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1; got {max_attempts}.")
