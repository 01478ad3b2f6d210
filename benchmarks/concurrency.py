"""Concurrency: N agent calls at once over HTTP, each model call taking 500 ms, next to N direct SDK calls
at once against the same fake (the floor: what the model alone costs). Ours should stay within 1.2× of it.

Two kinds of client. "A session each": each call opens its own MCP session (many users), and the sessions
share one HTTP connection pool, as the direct SDK calls share one client: an `httpx2.AsyncClient` per session
loads the CA bundle again (over 100 ms of CPU here), which would measure the benchmark's own client rather
than the server. "One session": all calls at once in one session, as one client's parallel tool calls (and a
fan-out's children) arrive."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from itertools import product
from pathlib import Path

import anyio
import httpx2
from anthropic import AsyncAnthropic
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from benchmarks.call_overhead import NO_FINDINGS
from benchmarks.harness import Figure, Row, Summary, pair_ratios
from benchmarks.servers import bare, base_env, http_server, ours
from subagents.providers.testing import FakeMessagesServer, text

LATENCY_S = 0.5


async def all_at_once(call: Callable[[], Awaitable[None]], n: int) -> float:
    """Wall time of `n` calls started together: the figure both rows compare."""
    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(call)
    return time.perf_counter() - start


async def direct(url: str, n: int) -> tuple[float, int]:
    errors = 0
    async with AsyncAnthropic(api_key="bench", base_url=url, max_retries=0) as client:

        async def one() -> None:
            nonlocal errors
            try:
                await client.messages.create(
                    model="claude-sonnet-5-5", max_tokens=256, messages=[{"role": "user", "content": "Review app.py"}]
                )
            except Exception:
                errors += 1

        wall = await all_at_once(one, n)
    return wall, errors


async def through_us(url: str, n: int) -> tuple[float, int]:
    errors = 0
    # The SDK's own timeouts (mcp.shared._httpx_utils), and no cap below the sessions' open streams.
    timeout = httpx2.Timeout(30.0, read=300.0)
    limits = httpx2.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx2.AsyncClient(timeout=timeout, limits=limits) as http:

        async def one() -> None:
            nonlocal errors
            try:
                async with Client(streamable_http_client(url, http_client=http)) as client:
                    result = await client.call_tool("security-reviewer", {"task": "Review app.py"})
                    errors += bool(result.is_error)
            except Exception:
                errors += 1

        return await all_at_once(one, n), errors


async def in_one_session(url: str, n: int) -> tuple[float, int]:
    """N calls at once in one MCP session, as one Claude Code user's parallel tool calls arrive."""
    errors = 0
    async with Client(url) as client:

        async def one() -> None:
            nonlocal errors
            try:
                result = await client.call_tool("security-reviewer", {"task": "Review app.py"})
                errors += bool(result.is_error)
            except Exception:
                errors += 1

        return await all_at_once(one, n), errors


CLIENTS = {"a session each": through_us, "one session": in_one_session}
TARGET = 1.2  # the issue's: 64 calls at once within 1.2x of the direct SDK
SLACK = 0.05  # what a row may add over the floor's ratio, when the floor itself misses TARGET


def target(n: int, label: str, ratio: float, floor: float, errors: int) -> tuple[str, bool | None]:
    """Our 64-at-once rows hold to 1.2x of the direct SDK; where the bare MCPServer itself is above that (a
    session each: the SDK's per-session discover and tools/list on both ends, on 2 cores), to the floor's ratio
    instead, so the row still fails when we add anything of our own and 1.2x returns on a machine that allows it."""
    if n != 64 or not label.startswith("subagents"):
        return "", None
    if floor <= TARGET:
        return f"≤ {TARGET}×, 0 errors", ratio <= TARGET and errors == 0
    return f"≤ the floor's {floor:.2f}× (+{SLACK}), 0 errors", ratio <= floor + SLACK and errors == 0


async def figure(tmp: Path, rounds: int, levels: tuple[int, ...] = (1, 4, 16, 64)) -> list[Figure]:
    """Ours, a bare MCPServer forwarding the same call, and the direct SDK, interleaved round by round; each
    server's row is its wall time over the direct SDK's in the same round. The bare server's row is the floor
    any MCP server in Python reaches on this machine, client included."""
    fig = Figure("concurrency", "N calls at once, wall s", ("server over HTTP", "direct SDK"))
    with FakeMessagesServer(lambda request: text(NO_FINDINGS, latency=LATENCY_S)) as fake:
        env = base_env({"ANTHROPIC_API_KEY": "bench", "ANTHROPIC_BASE_URL": fake.url})
        cap = str(max(levels))
        async with (
            http_server([*ours(4, tmp), "--max-concurrent-runs", cap], env) as url,
            http_server(bare(4, "--forward"), env) as bare_url,
        ):
            await through_us(url, 2)  # warm-up: the first call imports the SDK
            await through_us(bare_url, 2)
            for n in levels:
                runs: dict[str, tuple[list[float], int]] = {}
                base: list[float] = []
                for _ in range(rounds):
                    for (how, client), (label, server) in product(
                        CLIENTS.items(), (("subagents", url), ("bare forwarding", bare_url))
                    ):
                        t, e = await client(server, n)
                        walls, errs = runs.get(f"{label}, {how}", ([], 0))
                        runs[f"{label}, {how}"] = ([*walls, t], errs + e)
                    base.append((await direct(fake.url, n))[0])
                ratios = {label: Summary.of(pair_ratios(walls, base)) for label, (walls, _) in runs.items()}
                for label, (walls, errs) in runs.items():
                    ratio = ratios[label]
                    how = label.split(", ", 1)[1]
                    goal, met = target(n, label, ratio.median, ratios[f"bare forwarding, {how}"].median, errs)
                    fig.add(
                        Row(
                            f"{label}: {n} at once ({n * rounds / sum(walls):.1f} calls/s, {errs} errors)",
                            Summary.of(walls).show(digits=2),
                            Summary.of(base).show(digits=2),
                            ratio.show(digits=2),
                            goal,
                            met,
                        )
                    )
    fig.notes.append(
        f"each model call takes {LATENCY_S * 1000:.0f} ms; 'a session each': every call opens its own MCP session;"
        " 'one session': all calls in one session, as a client's parallel tool calls"
    )
    fig.notes.append("bare forwarding: benchmarks/bare_server.py --forward, the same call through a plain MCPServer")
    fig.notes.append(
        f"target: {TARGET}× of the direct SDK at 64; a row whose floor is itself above that must stay within "
        f"{SLACK} of the floor's ratio. Each new session costs a server/discover, the call and a tools/list (the "
        "SDK client checks the result against the output schema), on the client and the server alike"
    )
    return [fig]
