"""Records runs in the store from async code, and keeps this process's claim on the runs it executes:
it renews their leases, marks runs of dead processes interrupted, and stops a run when another
process asks (cancel_run through the store). With the store off, runs still get ids; nothing is kept.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, time

import anyio

from subagents.errors import SubagentsError
from subagents.history.base import CANCEL_POLL_S, LEASE_RENEW_S, RunStore, new_run_id
from subagents.history.records import RunInput, RunRecord, RunStatus, RunSummary
from subagents.messages import Message, Usage

log = logging.getLogger(__name__)
CANCEL_WAIT_S = 5.0


class HistoryOffError(SubagentsError):
    """The run store is disabled, so past runs cannot be read."""


class RunRecorder:
    def __init__(
        self, store: RunStore | None, *, renew_s: float = LEASE_RENEW_S, cancel_poll_s: float = CANCEL_POLL_S
    ) -> None:
        self.store = store
        self._renew_s = renew_s
        self._cancel_poll_s = cancel_poll_s
        self._executing: dict[str, anyio.CancelScope] = {}  # runs this recorder's process is executing
        self._busy = anyio.Event()  # set while any run is executing

    # --- one run ---

    async def start(
        self,
        *,
        agent: str,
        model: str,
        input: RunInput,
        continued_from: str | None,
        client: str | None,
        principal: str | None = None,
        parent_id: str | None = None,
        backend: str | None = None,
        billed_to: str | None = None,
        messages: Sequence[Message] = (),
    ) -> str:
        """A new run's id, once the store has it and the conversation it starts from (a child of
        `parent_id` when a pattern runs it)."""
        if self.store is None:
            return new_run_id()
        return await self.store.create_run(
            agent=agent,
            model=model,
            input=input,
            continued_from=continued_from,
            client=client,
            principal=principal,
            parent_id=parent_id,
            backend=backend,
            billed_to=billed_to,
            messages=messages,
        )

    async def messages(self, run_id: str, messages: Sequence[Message]) -> None:
        """Queue messages for the transcript (the conversation a run starts from)."""
        if self.store is not None and messages:
            await self.store.append_messages(run_id, messages)

    async def record_turn(
        self, run_id: str, messages: Sequence[Message], *, turns: int, usage: Usage, cost_usd: float | None
    ) -> None:
        """Queue one model turn: its messages and the spend so far, one write; the run does not wait."""
        if self.store is not None:
            await self.store.record_turn(run_id, messages, turns=turns, usage=usage, cost_usd=cost_usd)

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
        """Record the outcome; durable on return. Shielded: a cancelled run must still be recorded."""
        if self.store is None:
            return
        with anyio.CancelScope(shield=True):
            await self.store.finish(
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

    @contextmanager
    def cancellable(self, run_id: str) -> Iterator[anyio.CancelScope]:
        """A scope around a run's work that a cancel request through the store cancels."""
        with anyio.CancelScope() as scope:
            self._executing[run_id] = scope
            self._busy.set()
            try:
                yield scope
            finally:
                del self._executing[run_id]
                if not self._executing:
                    self._busy = anyio.Event()

    # --- reads ---

    async def get(self, run_id: str, *, principal: str | None = None) -> RunRecord:
        return await self._store().get(run_id, principal=principal)

    async def list(self, *, limit: int = 20, principal: str | None = None) -> builtins.list[RunSummary]:
        if self.store is None:
            return []
        return await self.store.list(limit=limit, principal=principal)

    async def spent_today(self, *, principal: str | None = None) -> float:
        """Known cost of today's (UTC) runs in the whole store, every process and replica, in one sum;
        with `principal`, of that principal's runs only."""
        if self.store is None:
            return 0.0
        midnight = datetime.combine(datetime.now(UTC).date(), time(), tzinfo=UTC)
        return await self.store.cost_since(midnight, principal=principal)

    # --- across processes ---

    async def request_cancel(
        self, run_id: str, *, principal: str | None = None, wait_s: float = CANCEL_WAIT_S
    ) -> tuple[bool, RunRecord]:
        """Ask whichever process executes the run to stop it, and wait up to wait_s for it to end.

        Returns whether it was running, and the run as the store has it then."""
        store = self._store()
        was_running = await store.request_cancel(run_id, principal=principal) == "running"
        record = await store.get(run_id, principal=principal)
        with anyio.move_on_after(wait_s):
            while record.status == "running" and was_running:
                await anyio.sleep(0.05)
                record = await store.get(run_id, principal=principal)
        return was_running, record

    async def recover(self) -> int:
        """At start: runs (and task claims) left by processes that are gone become interrupted."""
        if self.store is None:
            return 0
        interrupted = await self.store.mark_interrupted()
        if interrupted:
            log.warning("%d runs were left running by a server that stopped; marked interrupted", interrupted)
        await self._reclaim()
        return interrupted

    async def supervise(self) -> None:
        """For the server's lifetime: renew leases, reap dead processes' runs, watch for cancel requests."""
        if self.store is None:
            return
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._keep_leases, self.store)
            tg.start_soon(self._watch_cancels, self.store)

    async def _keep_leases(self, store: RunStore) -> None:
        while True:
            await anyio.sleep(self._renew_s)
            try:
                await store.renew_leases()
                if interrupted := await store.mark_interrupted():
                    log.warning("%d runs lost their server (lease expired); marked interrupted", interrupted)
                await self._reclaim()
            except Exception as exc:  # the store is down for a moment: try again at the next round
                log.warning("could not renew run leases in %s: %s", store.where, exc)

    async def _reclaim(self) -> None:
        assert self.store is not None
        if reclaimed := await self.store.reclaim_tasks():
            log.warning("%d queued tasks lost their worker; queued again or failed", reclaimed)

    async def _watch_cancels(self, store: RunStore) -> None:
        while True:
            await self._busy.wait()
            await store.wait_for_cancel_requests(self._cancel_poll_s)
            if not self._executing:
                continue
            try:
                wanted = await store.cancel_requests()
            except Exception as exc:
                log.warning("could not look for cancel requests in %s: %s", store.where, exc)
                continue
            for run_id in wanted:
                if (scope := self._executing.get(run_id)) is not None and not scope.cancel_called:
                    log.info("run %s: cancel requested through the run store; stopping it", run_id)
                    scope.cancel()

    def _store(self) -> RunStore:
        if self.store is None:
            raise HistoryOffError(
                "Run history is off on this server (--no-store), so past runs cannot be read "
                "or continued. Restart it without --no-store."
            )
        return self.store
