"""The progress reporter's heartbeat: it ends without leaving garbage, and never holds up a call's end."""

from __future__ import annotations

import gc

import anyio
import anyio.lowlevel
import pytest

from subagents.mcp.progress import reporting

pytestmark = pytest.mark.anyio


async def _quiet_send(progress: float, total: float | None, message: str) -> None:
    """A client that reads every notification."""


async def test_a_call_with_progress_leaves_no_cycles_for_the_collector() -> None:
    # A cancelled heartbeat left its CancelledError, traceback and frames in a cycle: ~150 objects a
    # call that only a collection frees. 64 calls at once made that a full collection every ~2 s.
    await _report_once()  # anything created once (interned strings, caches) is made here
    gc.collect()
    gc.disable()
    try:
        for _ in range(20):
            await _report_once()
        unreachable = gc.collect()
    finally:
        gc.enable()
    assert unreachable < 20, f"{unreachable} objects in cycles after 20 calls"


async def _report_once() -> None:
    async with reporting(_quiet_send, heartbeat_s=30):
        await anyio.lowlevel.checkpoint()


async def test_the_heartbeat_still_beats_and_stops_at_the_end() -> None:
    beats: list[str] = []

    async def send(progress: float, total: float | None, message: str) -> None:
        beats.append(message)

    async with reporting(send, heartbeat_s=0.1):
        await anyio.sleep(0.35)
    count = len(beats)
    await anyio.sleep(0.25)
    assert count >= 2 and all("still working" in m for m in beats), beats
    assert len(beats) == count, "a heartbeat was sent after the call ended"


async def test_a_heartbeat_stuck_on_a_client_that_does_not_read_does_not_hold_up_the_call() -> None:
    stuck = anyio.Event()

    async def send(progress: float, total: float | None, message: str) -> None:
        stuck.set()
        await anyio.sleep_forever()  # the client's receive buffer is full

    with anyio.fail_after(3):
        async with reporting(send, heartbeat_s=0.05) as reporter:
            await stuck.wait()
            assert reporter.sending
    assert not reporter.sending
