"""Cold start and idle memory: spawn → tools/list over stdio, the size of tools/list, and the resident memory
of the idle server, for `subagents serve` and a bare MCPServer with as many tools, interleaved in one run."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from mcp import Client, StdioServerParameters

from benchmarks.harness import Figure, Row, Summary, pair_ratios
from benchmarks.servers import _children, bare, base_env, ours, tree_rss_mib

KEY = {"ANTHROPIC_API_KEY": "sk-bench-dummy", "ANTHROPIC_BASE_URL": "http://127.0.0.1:9"}


async def one_start(command: list[str], env: dict[str, str]) -> tuple[float, int, int, float]:
    """(ms to a complete tools/list, tools, bytes of tools/list, idle RSS MiB after it)."""
    before = set(_children().get(os.getpid(), []))
    params = StdioServerParameters(command=command[0], args=command[1:], env=env)
    start = time.perf_counter()
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        elapsed = (time.perf_counter() - start) * 1000
        size = len(json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]))
        spawned = [p for p in _children().get(os.getpid(), []) if p not in before]
        rss = sum(tree_rss_mib(p) for p in spawned)
    return elapsed, len(tools), size, rss


def compiled(env: dict[str, str], tmp: Path) -> dict[str, str]:
    """Both servers start from compiled bytecode, as installed packages do (pip compiles a wheel's modules
    when it installs them), kept under one prefix that the warm-up pair fills. Otherwise, where
    PYTHONDONTWRITEBYTECODE is set, an editable install compiles its source on every start while the
    dependencies come compiled: that is not start-up a user sees."""
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return env | {"PYTHONPYCACHEPREFIX": str(tmp / "pycache")}


def variants(count: int) -> list[tuple[str, tuple[str, ...], bool]]:
    """(label, extra serve flags, key set): a tool per agent without and with a key, and catalog mode (one
    delegate tool) for catalogs big enough to need it."""
    rows: list[tuple[str, tuple[str, ...], bool]] = [
        (f"{count} agents, tool per agent, no key", ("--catalog-mode", "off"), False),
        (f"{count} agents, tool per agent, key set", ("--catalog-mode", "off"), True),
    ]
    if count >= 40:
        rows.append((f"{count} agents, catalog mode, key set", ("--catalog-mode", "on"), True))
    return rows


async def figure(tmp: Path, runs: int, counts: tuple[int, ...] = (4, 40, 200)) -> list[Figure]:
    fig = Figure("cold start", "spawn → tools/list (ms), min / median / max; bare: as many tools as agents")
    memory = Figure("idle memory", "resident memory after tools/list (MiB), min / median / max")
    for count in counts:
        for label, flags, keyed in variants(count):
            env, bare_env = compiled(base_env(KEY if keyed else None), tmp), compiled(base_env(), tmp)
            mine, base = [], []
            for i in range(runs + 1):  # the first pair warms the page cache and writes the bytecode
                a = await one_start(ours(count, tmp, *flags), env)
                b = await one_start(bare(count), bare_env)
                if i:
                    mine.append(a)
                    base.append(b)
            times = pair_ratios([m[0] for m in mine], [b[0] for b in base])
            ratio = Summary.of(times)
            target = 1.1 if count >= 40 else 1.2
            fig.add(
                Row(
                    label,
                    Summary.of([m[0] for m in mine]).show(),
                    Summary.of([b[0] for b in base]).show(),
                    ratio.show(digits=2),
                    f"≤ {target}×",
                    ratio.median <= target,
                    {"tools": mine[0][1], "tools_list_bytes": mine[0][2], "bare_bytes": base[0][2]},
                )
            )
            rss = Summary.of(pair_ratios([m[3] for m in mine], [b[3] for b in base]))
            memory.add(
                Row(
                    label,
                    Summary.of([m[3] for m in mine]).show(),
                    Summary.of([b[3] for b in base]).show(),
                    rss.show(digits=2),
                    "≤ 1.2×" if keyed else "",
                    rss.median <= 1.2 if keyed else None,
                )
            )
            if keyed:
                fig.notes.append(
                    f"{label.removesuffix(', key set')}: {mine[0][1]} tools, tools/list {mine[0][2]:,} bytes "
                    f"(≈{mine[0][2] // 4:,} tokens); bare {base[0][2]:,} bytes"
                )
    return [fig, memory]
