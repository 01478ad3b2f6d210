"""Shared pieces of the store suite: a hand-moved clock, messages, and opening a store on a location."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from subagents.history.store import RunInput, RunStatus, RunStore, store_for
from subagents.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock, Usage

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
OTHER_HOST = "another-host:4242:99"  # a replica elsewhere: only its lease tells whether it lives


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def text(role: str, body: str) -> Message:
    return Message.model_validate({"role": role, "content": [{"type": "text", "text": body}]})


def opened(location: str, clock: Clock | None = None, **options: object) -> RunStore:
    return store_for(location, now=clock or Clock(), **options)  # type: ignore[arg-type]


async def new_run(store: RunStore, agent: str = "a", task: str = "t", **fields: object) -> str:
    return await store.create_run(agent=agent, model="m", input=RunInput(task=task), **fields)  # type: ignore[arg-type]


async def finish(
    store: RunStore,
    run_id: str,
    status: RunStatus = "completed",
    cost: float | None = None,
    usage: Usage | None = None,
    error: str | None = None,
) -> None:
    await store.finish(
        run_id,
        status=status,
        report="done",
        error=error,
        usage=usage or Usage(),
        cost_usd=cost,
        turns=1,
        stop_reason="end_turn",
    )


TRANSCRIPT = (
    text("user", "<task>review auth.py</task>"),
    Message(
        role="assistant",
        content=(
            TextBlock(text="Reading the file."),
            ToolUseBlock(id="tu_1", name="Read", input={"path": "auth.py", "limit": 50, "opts": {"a": [1, None]}}),
        ),
    ),
    Message(role="user", content=(ToolResultBlock(tool_use_id="tu_1", content="def login(): ...", is_error=True),)),
    text("assistant", "No SQL injection found."),
)
