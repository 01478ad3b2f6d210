"""Replicas: 64 agent calls at once over HTTP, spread over two `subagents serve` replicas on one PostgreSQL
store, next to the same 64 on one replica of that store. Each model call takes 500 ms, so the figure is what
the servers add around it: two replicas share the machine's cores and should answer at least as many calls
a second as one.

    python -m benchmarks --only replicas      # needs SUBAGENTS_BENCH_POSTGRES_URL or SUBAGENTS_TEST_POSTGRES_URL

Without PostgreSQL the replicas share one SQLite file instead, and the figure says so.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import anyio
from anyio.abc import Process

from benchmarks.call_overhead import NO_FINDINGS
from benchmarks.concurrency import LATENCY_S, through_us
from benchmarks.harness import Figure, Row, Summary, pair_ratios
from benchmarks.pg import NO_POSTGRES, fresh_schema, postgres_url
from benchmarks.servers import PY, REPO, base_env, http_server
from subagents.providers.testing import FakeMessagesServer, text

CLIENTS = 64
CLIENT_PROCESSES = 2


async def spread(urls: list[str], n: int) -> tuple[float, int]:
    """`n` calls at once, client i on replica i mod len(urls); wall seconds and errors."""
    errors = 0
    start = time.perf_counter()

    async def share(url: str, calls: int) -> None:
        nonlocal errors
        errors += (await through_us(url, calls))[1]

    async with anyio.create_task_group() as tg:
        for i, url in enumerate(urls):
            tg.start_soon(share, url, len(range(i, n, len(urls))))
    return time.perf_counter() - start, errors


async def from_processes(urls: list[str], n: int, processes: int = CLIENT_PROCESSES) -> tuple[float, int]:
    """The `n` calls made from `processes` client processes at once (one Python process cannot drive 64 MCP
    sessions without becoming the bottleneck itself); wall seconds from the go to the last answer, errors."""
    shares = [len(range(i, n, processes)) for i in range(processes)]
    clients = [
        await anyio.open_process([PY, "-m", "benchmarks.replicas", ",".join(urls), str(k)], cwd=REPO) for k in shares
    ]
    try:
        for proc in clients:  # each has imported what it needs and waits for the go
            assert proc.stdout is not None
            await proc.stdout.receive()
        start = time.perf_counter()
        for proc in clients:
            assert proc.stdin is not None
            await proc.stdin.send(b"go\n")
        outputs = [json.loads(await _read_all(proc)) for proc in clients]
        wall = time.perf_counter() - start
    finally:
        for proc in clients:
            await proc.aclose()
    return wall, sum(int(o["errors"]) for o in outputs)


async def _read_all(proc: Process) -> bytes:
    assert proc.stdout is not None
    chunks = [chunk async for chunk in proc.stdout]
    await proc.wait()
    return b"".join(chunks)


async def _client(urls: list[str], n: int) -> None:
    print("ready", flush=True)
    await anyio.to_thread.run_sync(sys.stdin.readline)
    wall, errors = await spread(urls, n)
    print(json.dumps({"wall": wall, "errors": errors}), flush=True)


def replica(store: str) -> list[str]:
    return [PY, "-m", "subagents", "serve", "--root", str(REPO), "--store", store, "--max-concurrent-runs", "64"]


async def figure(tmp: Path, rounds: int, clients: int = CLIENTS) -> list[Figure]:
    fig = Figure("replicas", f"{clients} calls at once, calls/s", ("two replicas", "one replica"))
    base = postgres_url()
    with FakeMessagesServer(lambda request: text(NO_FINDINGS, latency=LATENCY_S)) as fake:
        env = base_env({"ANTHROPIC_API_KEY": "bench", "ANTHROPIC_BASE_URL": fake.url})
        with fresh_schema(base) if base else nullcontext(str(tmp / "replicas.db")) as store:
            async with http_server(replica(store), env) as url_a, http_server(replica(store), env) as url_b:
                for url in (url_a, url_b):
                    await through_us(url, 2)  # warm-up: the first call imports the SDK
                two, one, errors = [], [], 0
                for _ in range(rounds):  # interleaved: a drifting machine slows both alike
                    wall, errs = await from_processes([url_a, url_b], clients)
                    two.append(clients / wall)
                    errors += errs
                    wall, errs = await from_processes([url_a], clients)
                    one.append(clients / wall)
                    errors += errs
    ratio = Summary.of(pair_ratios(two, one))
    fig.add(
        Row(
            f"{clients} clients, {rounds} rounds ({errors} errors)",
            Summary.of(two).show(digits=1),
            Summary.of(one).show(digits=1),
            ratio.show("×", digits=2),
            "≥ 1.0×, 0 errors",
            ratio.median >= 1.0 and errors == 0,
        )
    )
    where = "one PostgreSQL database on loopback" if base else f"one SQLite file ({NO_POSTGRES})"
    fig.notes.append(
        f"each model call takes {LATENCY_S * 1000:.0f} ms; every call opens its own MCP session (handshake era), "
        f"so a call stays on its replica; the clients run in {CLIENT_PROCESSES} processes; the replicas share {where}"
    )
    return [fig]


if __name__ == "__main__":  # a client process of `from_processes`: URLS (comma-separated) N
    anyio.run(_client, sys.argv[1].split(","), int(sys.argv[2]))
