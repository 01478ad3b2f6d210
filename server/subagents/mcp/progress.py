"""Progress notifications for one tool call: run events plus a heartbeat while the model thinks."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio

from subagents.events import RunEvent

Send = Callable[[float, float | None, str], Awaitable[None]]
MAX_MESSAGE = 200


class ProgressReporter:
    """Sends `turn 3/12: Grep "password"` lines, and repeats the last one with the elapsed time at least
    every `heartbeat_s` so clients that reset their idle timer on progress keep the call open.

    Progress values only ever increase, as the MCP spec requires: the value is the current turn, plus
    0.001 for each further notification within that turn."""

    def __init__(self, send: Send, heartbeat_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._send = send
        self._heartbeat_s = heartbeat_s
        self._clock = clock
        self._started = clock()
        self._last_sent = self._started
        self._value = 0.0
        self._total: float | None = None
        self._message = "starting"
        self.sending = False  # a heartbeat is being written

    async def event(self, event: RunEvent) -> None:
        self._total = float(event.max_turns)
        self._message = event.message
        await self._emit(float(event.turn), event.message)

    async def heartbeat(self, stop: anyio.Event) -> None:
        """Until `stop` is set. It ends by returning, not by being cancelled: a cancelled task leaves its
        exception, traceback and frames in a cycle, about 150 objects a call for the collector to find."""
        while not stop.is_set():
            with anyio.move_on_after(max(self._heartbeat_s - (self._clock() - self._last_sent), 0.05)):
                await stop.wait()
            if not stop.is_set() and self._clock() - self._last_sent >= self._heartbeat_s * 0.95:
                elapsed = int(self._clock() - self._started)
                self.sending = True
                try:
                    await self._emit(self._value, f"{self._message} (still working, {elapsed} s)")
                finally:
                    self.sending = False

    async def _emit(self, floor: float, message: str) -> None:
        self._value = max(floor, round(self._value + 0.001, 3))
        self._last_sent = self._clock()
        await self._send(self._value, self._total, message[:MAX_MESSAGE])


@asynccontextmanager
async def reporting(send: Send, heartbeat_s: float) -> AsyncIterator[ProgressReporter]:
    reporter = ProgressReporter(send, heartbeat_s)
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(reporter.heartbeat, stop)
        try:
            yield reporter
        finally:
            stop.set()
            if reporter.sending:  # a heartbeat stuck on a client that does not read: not waited for
                tg.cancel_scope.cancel()
