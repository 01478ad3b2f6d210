"""Per-call overhead: what one agent call through `subagents serve` costs beyond the model call, next to a
bare MCPServer whose tool forwards the same task to the Messages API (the floor), over stdio and HTTP.

Both servers answer from the same fake Messages API on loopback, which replies at once, so the difference
between the two is our own work per call: roots, sandbox, store, result shape. Calls alternate (ours,
bare, ours, bare …) in one run.

The plain floor sends a short request (the task and a one-line system prompt). An agent's call sends more
(its prompt, its tools' schemas, its output schema), which the SDK and the model take longer over, so the
"same request" rows give the floor the very request our server sent: their difference is the server alone.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters
from mcp.types import ListRootsResult, Root

from benchmarks.harness import Figure, Row, Summary, percentile
from benchmarks.servers import bare, base_env, http_server, ours
from subagents.providers.testing import FakeMessagesServer, text

TASK = {"task": "Review app.py for injection."}
NO_FINDINGS = json.dumps(  # the reviewer answers in JSON that matches its output schema
    {
        "findings": [],
        "also_noted": [],
        "summary": {
            "reviewed": "app.py",
            "result": "No findings of medium severity or above.",
            "fix_first": "nothing urgent",
            "not_covered": "runtime configuration",
        },
    }
)


@asynccontextmanager
async def connect(
    command: list[str], env: dict[str, str], http: bool, roots: Path | None, mode: str = "auto"
) -> AsyncIterator[Client]:
    kwargs: dict[str, Any] = {"mode": mode}
    if roots is not None:
        uri = roots.as_uri()

        async def list_roots(_ctx: Any) -> ListRootsResult:
            return ListRootsResult(roots=[Root(uri=uri, name="repo")])  # type: ignore[arg-type]

        kwargs["list_roots_callback"] = list_roots
    if not http:
        params = StdioServerParameters(command=command[0], args=command[1:], env=env)
        async with Client(params, **kwargs) as client:
            yield client
        return
    async with http_server(command, env) as url, Client(url, **kwargs) as client:
        yield client


async def agent_request(tmp: Path, env: dict[str, str], fake: FakeMessagesServer) -> Path:
    """The Messages request our server sends for the reviewer's call, kept for the floor to send too."""
    async with connect(ours(4, tmp), env, False, None) as client:
        await client.call_tool("security-reviewer", TASK)
    path = tmp / "agent-request.json"
    path.write_text(json.dumps(fake.requests[-1].body), encoding="utf-8")
    return path


async def timed_calls(a: Client, b: Client, tool_a: str, tool_b: str, calls: int) -> tuple[list[float], list[float]]:
    mine: list[float] = []
    base: list[float] = []
    for i in range(calls + 10):
        for client, tool, into in ((a, tool_a, mine), (b, tool_b, base)):
            start = time.perf_counter()
            result = await client.call_tool(tool, TASK)
            elapsed = (time.perf_counter() - start) * 1000
            if result.is_error:
                raise RuntimeError(f"{tool} failed: {result.content}")
            if i >= 10:  # warm-up: imports, connection pools, page cache
                into.append(elapsed)
    return mine, base


async def figure(tmp: Path, calls: int) -> list[Figure]:
    fig = Figure("per-call overhead", "one agent call (ms), p50 / min / max", ("subagents", "bare forwarding"))
    with FakeMessagesServer(lambda request: text(NO_FINDINGS)) as fake:
        env = base_env({"ANTHROPIC_API_KEY": "bench", "ANTHROPIC_BASE_URL": fake.url})
        same = ("--forward", "--body", str(await agent_request(tmp, env, fake)))
        asks = ("--forward", "--roots")  # the floor reads the client's roots too, through the SDK's resolver
        cases = [
            ("stdio, store on", False, False, (), "auto", ("--forward",)),
            ("stdio, store on, vs the floor sending the same request", False, False, (), "auto", same),
            ("stdio, store on, client declares roots", False, True, (), "auto", ("--forward",)),
            ("stdio, store on, roots, handshake era (roots kept)", False, True, (), "legacy", ("--forward",)),
            (
                "stdio, store on, client declares roots, vs a floor that asks for them too",
                False,
                True,
                (),
                "auto",
                asks,
            ),
            (
                "stdio, store on, roots, handshake era, vs a floor that asks for them too",
                False,
                True,
                (),
                "legacy",
                asks,
            ),
            ("stdio, store off", False, False, ("--no-store",), "auto", ("--forward",)),
            ("HTTP, store on", True, False, (), "auto", ("--forward",)),
            ("HTTP, store on, vs the floor sending the same request", True, False, (), "auto", same),
        ]
        for label, http, with_roots, extra, mode, floor in cases:
            roots = tmp if with_roots else None
            async with (
                connect(ours(4, tmp, *extra), env, http, roots, mode) as a,
                connect(bare(4, *floor), env, http, roots, mode) as b,
            ):
                mine, base = await timed_calls(a, b, "security-reviewer", "security-reviewer", calls)
            p50, b50 = percentile(mine, 0.5), percentile(base, 0.5)
            # On 2026-07-28 a client's roots cost an input_required round on every call, by protocol; the floor
            # that skips it is shown, but the target is held by the row whose floor makes the round too.
            like_for_like = not (with_roots and mode == "auto" and floor != asks)
            # Call i of ours less call i of the floor, made back to back: the machine's drift (its pace moves by
            # a third within minutes here) slows both of a pair alike, so the median of those is the figure.
            added = statistics.median(a - b for a, b in zip(mine, base, strict=True))
            fig.add(
                Row(
                    label,
                    f"{p50:.2f} ({Summary.of(mine).show(digits=2)})",
                    f"{b50:.2f} ({Summary.of(base).show(digits=2)})",
                    f"{added:+.2f} ms (difference of the p50s {p50 - b50:+.2f})",
                    "≤ +2 ms" if like_for_like else "",
                    added <= 2.0 if like_for_like else None,
                    {"ours_ms": mine, "bare_ms": base},
                )
            )
    fig.notes.append(
        f"{calls} calls each after 10 warm-up calls; the fake model answers at once on loopback. The added time is the "
        "median over pairs of (our call - the floor's call made right after it)."
    )
    fig.notes.append(
        "Rows without an era speak 2026-07-28 (the SDK client's default, and Claude Code 2.1.330's): roots come "
        "through an input_required round on every call, as that era has no roots/list_changed. On the handshake "
        "era a client that declares roots.listChanged is asked once per connection (mcp/roots.py)."
    )
    fig.notes.append(
        'The "vs a floor that asks for them too" rows give the floor the same roots (bare_server.py --roots: a tool '
        "parameter filled by the SDK's Resolve(ListRoots)), so the protocol's roots round is out of the difference. "
        "On 2026-07-28 both pay one input_required round per call (about +1.3 ms for the floor, measured); on the "
        "handshake era the SDK's resolver sends roots/list on every call (about +0.8 ms) while ours asks once per "
        "connection, so that row credits us the calls we answer from the kept roots. The 2026-07-28 roots row beside "
        "a floor that skips the round is shown without a target: the row beside a floor that makes it holds it."
    )
    return [fig]
