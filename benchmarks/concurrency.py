"""Concurrency: N agent calls at once over HTTP, each model call taking 500 ms, next to N direct SDK calls
at once against the same fake (the floor: what the model alone costs). Ours should stay within 1.2× of it."""

from __future__ import annotations

import time
from pathlib import Path

import anyio
from anthropic import AsyncAnthropic
from mcp import Client

from benchmarks.harness import Figure, Row, Summary
from benchmarks.servers import base_env, http_server, ours
from subagents.providers.testing import FakeMessagesServer, text

LATENCY_S = 0.5


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

        start = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for _ in range(n):
                tg.start_soon(one)
    return time.perf_counter() - start, errors


async def through_us(url: str, n: int) -> tuple[float, int]:
    errors = 0

    async def one() -> None:
        nonlocal errors
        try:
            async with Client(url) as client:
                result = await client.call_tool("security-reviewer", {"task": "Review app.py"})
                errors += bool(result.is_error)
        except Exception:
            errors += 1

    start = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(one)
    return time.perf_counter() - start, errors


async def figure(tmp: Path, rounds: int, levels: tuple[int, ...] = (1, 4, 16, 64)) -> list[Figure]:
    fig = Figure("concurrency", "N calls at once, wall s", ("subagents over HTTP", "direct SDK"))
    with FakeMessagesServer(lambda request: text("No findings.", latency=LATENCY_S)) as fake:
        env = base_env({"ANTHROPIC_API_KEY": "bench", "ANTHROPIC_BASE_URL": fake.url})
        cap = str(max(levels))
        async with http_server([*ours(4, tmp), "--max-concurrent-runs", cap], env) as url:
            await through_us(url, 2)  # warm-up: the first call imports the SDK
            for n in levels:
                mine, base, errs = [], [], 0
                for _ in range(rounds):
                    t, e = await through_us(url, n)
                    d, _ = await direct(fake.url, n)
                    mine.append(t)
                    base.append(d)
                    errs += e
                ratio = Summary.of([a / b for a, b in zip(mine, base, strict=True)])
                fig.add(
                    Row(
                        f"{n} at once ({n * rounds / sum(mine):.1f} calls/s, {errs} errors)",
                        Summary.of(mine).show(digits=2),
                        Summary.of(base).show(digits=2),
                        ratio.show(digits=2),
                        "≤ 1.2×, 0 errors" if n == 64 else "",
                        (ratio.median <= 1.2 and errs == 0) if n == 64 else None,
                    )
                )
    fig.notes.append(f"each model call takes {LATENCY_S * 1000:.0f} ms; every call opens its own MCP session")
    return [fig]
