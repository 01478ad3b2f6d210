"""Live reload: from writing a new agent file to the client's notice (`notifications/tools/list_changed`,
or the 2026-07-28 listen event) and to the agent in tools/list, against the baseline a user has without
it: restarting the server (spawn → tools/list). Over stdio, `subagents serve`, interleaved in one run."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters
from mcp.types import ToolListChangedNotification

from benchmarks.harness import Figure, Row, Summary, pair_ratios
from benchmarks.servers import AGENT, agents_dir, base_env, ours

KEY = {"ANTHROPIC_API_KEY": "sk-bench-dummy", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}
TARGET_MS = 2000.0  # the bound: a new agent is in tools/list within 2 s


class Notices:
    def __init__(self) -> None:
        self.event = anyio.Event()

    async def handler(self, message: Any) -> None:
        if isinstance(message, ToolListChangedNotification):
            self.event.set()

    async def listen(self, client: Client) -> None:
        async with client.listen(tools_list_changed=True) as sub:
            async for _event in sub:
                self.event.set()


async def one_reload(client: Client, notices: Notices, folder: Path, name: str) -> tuple[float, float]:
    """(ms from the write to the notice, ms from the write to the agent in tools/list)."""
    notices.event = anyio.Event()
    start = time.perf_counter()
    (folder / f"{name}.md").write_text(AGENT.format(name=name, topic=name))
    with anyio.fail_after(10):
        await notices.event.wait()
        noticed = time.perf_counter()
        if not await listed_now(client, name):  # the server swaps the tools before it sends the notice
            raise RuntimeError(f"{name} was not in tools/list after the notice")
    listed = time.perf_counter()
    return (noticed - start) * 1000, (listed - start) * 1000


async def listed_now(client: Client, name: str) -> bool:
    return name in {t.name for t in (await client.list_tools(cache_mode="bypass")).tools}


async def one_restart(params: StdioServerParameters) -> float:
    start = time.perf_counter()
    async with Client(params) as client:
        await client.list_tools()
    return (time.perf_counter() - start) * 1000


async def era(tmp: Path, runs: int, mode: str, count: int) -> list[Row]:
    folder = agents_dir(tmp / mode, count)  # the folder `ours` serves (never the bundled four: count != 4)
    command = ours(count, tmp / mode, "--catalog-mode", "off")
    params = StdioServerParameters(command=command[0], args=command[1:], env=base_env(KEY))
    notices = Notices()
    reloads: list[tuple[float, float]] = []
    restarts: list[float] = []
    async with Client(params, mode=mode, message_handler=notices.handler) as client, anyio.create_task_group() as tg:
        if mode == "auto":
            tg.start_soon(notices.listen, client)
        await client.list_tools()
        await anyio.sleep(1.5)  # the watch is in place (its first look comes within a second)
        for i in range(runs + 1):  # the first pair warms up
            sample = await one_reload(client, notices, folder, f"added-{i:03d}")
            base = await one_restart(params)
            if i:
                reloads.append(sample)
                restarts.append(base)
        tg.cancel_scope.cancel()
    label = "2026-07-28, listen event" if mode == "auto" else "handshake era, list_changed"
    listed = [r[1] for r in reloads]
    ratio = Summary.of(pair_ratios(listed, restarts))
    median_listed = Summary.of(listed).median
    return [
        Row(f"{count} agents, {label}: write → notice", Summary.of([r[0] for r in reloads]).show(), ""),
        Row(
            f"{count} agents, {label}: write → in tools/list",
            Summary.of(listed).show(),
            Summary.of(restarts).show(),
            ratio.show(digits=2),
            f"≤ {TARGET_MS:.0f} ms",
            median_listed <= TARGET_MS,
        ),
    ]


async def figure(tmp: Path, runs: int, counts: tuple[int, ...] = (10, 200)) -> list[Figure]:
    fig = Figure(
        "live reload",
        "a new agent file (ms), min / median / max; baseline: restart the server (spawn → tools/list)",
        columns=("live reload", "restart"),
    )
    for count in counts:
        for mode in ("legacy", "auto"):
            for row in await era(tmp, runs, mode, count):
                fig.add(row)
    fig.notes.append("a burst is folded for 100 ms of quiet (at most 800 ms) before the folders are read again")
    return [fig]
