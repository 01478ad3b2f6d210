"""The run store's records: what a run (and a queued task) is, as the store gives it back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from subagents.errors import SubagentsError
from subagents.messages import Message, Usage

RunStatus = Literal["running", "completed", "failed", "cancelled", "interrupted", "budget_exceeded"]
STATUSES: tuple[str, ...] = get_args(RunStatus)
TaskStatus = Literal["queued", "running", "completed", "failed"]
TASK_STATUSES: tuple[str, ...] = get_args(TaskStatus)


class StoreError(SubagentsError):
    """The run store cannot be used: not a database, unreachable, or written by a newer subagents."""


class RunNotFoundError(SubagentsError):
    """No run with that id in the store (or none the asking principal may see: the answer is the same)."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"No run with id {run_id!r} in the run store. See recent runs with `subagents runs list`.")
        self.run_id = run_id


class TaskNotFoundError(SubagentsError):
    """No queued task with that id in the store."""

    def __init__(self, task_id: str) -> None:
        super().__init__(f"No task with id {task_id!r} in the run store's task queue.")
        self.task_id = task_id


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class RunInput(_Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid")

    task: str
    context: str | None = None
    files: tuple[str, ...] = ()


class RunRecord(_Frozen):
    id: str
    agent: str
    model: str
    status: RunStatus
    input: RunInput
    transcript: tuple[Message, ...]
    report: str | None
    diff: str | None = None  # what a writing agent changed in its isolated copy, as a unified diff
    error: str | None
    usage: Usage
    cost_usd: float | None
    turns: int
    stop_reason: str | None
    created_at: datetime
    finished_at: datetime | None
    parent_id: str | None
    client: str | None
    continued_from: str | None
    principal: str | None = None  # who asked for the run (an HTTP client's identity); None on stdio
    cancel_requested: bool = False  # someone asked, through the store, for this run to stop
    backend: str | None = None  # anthropic or claude-code; None for runs recorded before it was kept
    billed_to: str | None = None  # who paid, in words: "the API key in ANTHROPIC_API_KEY", a Claude Code login

    @property
    def duration_s(self) -> float | None:
        """Wall time from creation to finish; None while the run has not finished."""
        if self.finished_at is None:
            return None
        return (self.finished_at - self.created_at).total_seconds()


class RunSummary(_Frozen):
    id: str
    agent: str
    model: str
    status: RunStatus
    task: str
    created_at: datetime
    finished_at: datetime | None
    turns: int
    usage: Usage
    cost_usd: float | None
    error: str | None
    parent_id: str | None = None
    principal: str | None = None


class AgentStats(_Frozen):
    agent: str
    model: str
    calls: int
    completed: int
    failed: int
    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int
    cache_creation_input_tokens: int
    cost_usd: float | None  # sum of the known costs; None when no run's cost is known
    cost_unknown_runs: int


class TaskSpec(_Frozen):
    """One task to queue: which agent, on what."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    agent: str
    input: RunInput


class TaskRecord(_Frozen):
    """A queued task. `attempts` counts claims: a task whose claimer died is queued again while
    attempts < max_attempts (so an interrupted task is retried once by default)."""

    id: str
    parent_id: str
    seq: int  # order within its parent, from 0
    agent: str
    input: RunInput
    status: TaskStatus
    attempts: int
    max_attempts: int
    owner: str | None  # the claiming process, while running
    run_id: str | None  # the child run that executes (or executed) it
    result: str | None
    error: str | None
    created_at: datetime
    claimed_at: datetime | None
    finished_at: datetime | None


class TaskCounts(_Frozen):
    queued: int = 0
    running: int = 0
    completed: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.queued + self.running + self.completed + self.failed

    @property
    def done(self) -> int:
        return self.completed + self.failed

    def summary(self) -> str:
        """`7/12 done, 3 running` (`, 1 failed` when some did), for progress messages."""
        text = f"{self.done}/{self.total} done, {self.running} running"
        return text + (f", {self.failed} failed" if self.failed else "")


class SchemaStatus(_Frozen):
    """What `subagents store check` reports: where the store is and how far its schema is migrated."""

    where: str
    backend: Literal["sqlite", "postgresql"]
    exists: bool
    version: int | None  # None: no schema yet
    latest: int
    pending: tuple[str, ...]  # names of the migrations not applied yet

    @property
    def newer(self) -> bool:
        return self.version is not None and self.version > self.latest
