"""The run store's records: what a run is, as the store gives it back."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict

from subagents.errors import SubagentsError
from subagents.messages import Message, Usage

RunStatus = Literal["running", "completed", "failed", "cancelled", "interrupted", "budget_exceeded"]
STATUSES: tuple[str, ...] = get_args(RunStatus)


class RunNotFoundError(SubagentsError):
    """No run with that id in the store."""

    def __init__(self, run_id: str) -> None:
        super().__init__(f"No run with id {run_id!r} in the run store. See recent runs with `subagents runs list`.")
        self.run_id = run_id


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
