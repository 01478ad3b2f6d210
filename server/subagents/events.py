"""Events a run emits while it works, for progress notifications, logs and the run store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from subagents.messages import Usage


class RunEvent(BaseModel):
    model_config = ConfigDict(frozen=True)

    kind: Literal["started", "model_call", "tool_call", "tool_result", "finished"]
    turn: int
    max_turns: int
    message: str  # short, human-readable: 'turn 3/12: Grep "password" in src/'
    usage: Usage | None = None  # what the run has used so far, when the sender knows
    cost_usd: float | None = None  # what it has cost so far (None: unknown or not told)


EventSink = Callable[[RunEvent], Awaitable[None]]


async def discard(_event: RunEvent) -> None:
    """The default sink: nobody is listening."""
