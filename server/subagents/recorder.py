"""Writes runs to the store from async code. With the store off, runs still get ids and nothing is kept."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, time

import anyio

from subagents.errors import SubagentsError
from subagents.history.records import RunInput, RunRecord, RunStatus
from subagents.history.store import RunStore
from subagents.messages import Message, Usage


class HistoryOffError(SubagentsError):
    """The run store is disabled, so past runs cannot be read."""


class RunRecorder:
    def __init__(self, store: RunStore | None) -> None:
        self.store = store

    async def start(
        self,
        *,
        agent: str,
        model: str,
        input: RunInput,
        continued_from: str | None,
        client: str | None,
        parent_id: str | None = None,
    ) -> str:
        if self.store is None:
            return f"run_{uuid.uuid4().hex[:12]}"
        store = self.store
        return await anyio.to_thread.run_sync(
            lambda: store.create_run(
                agent=agent, model=model, input=input, continued_from=continued_from, client=client, parent_id=parent_id
            )
        )

    async def messages(self, run_id: str, messages: Sequence[Message]) -> None:
        if self.store is not None and messages:
            await anyio.to_thread.run_sync(self.store.append_messages, run_id, list(messages))

    async def progress(self, run_id: str, *, turns: int, usage: Usage, cost_usd: float | None) -> None:
        if self.store is not None:
            store = self.store
            await anyio.to_thread.run_sync(
                lambda: store.update_progress(run_id, turns=turns, usage=usage, cost_usd=cost_usd)
            )

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
        if self.store is None:
            return
        store = self.store
        # Shielded: a cancelled run must still be recorded as cancelled.
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(
                lambda: store.finish(
                    run_id,
                    status=status,
                    report=report,
                    error=error,
                    usage=usage,
                    cost_usd=cost_usd,
                    turns=turns,
                    stop_reason=stop_reason,
                    diff=diff,
                )
            )

    async def get(self, run_id: str) -> RunRecord:
        if self.store is None:
            raise HistoryOffError(
                "Run history is off on this server (--no-store), so past runs cannot be read "
                "or continued. Restart it without --no-store."
            )
        return await anyio.to_thread.run_sync(self.store.get, run_id)

    async def spent_today(self) -> float:
        if self.store is None:
            return 0.0
        midnight = datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)
        return await anyio.to_thread.run_sync(self.store.cost_since, midnight)
