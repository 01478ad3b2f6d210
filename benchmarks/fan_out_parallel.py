"""How parallel `fan_out` really is: wall time against one single-agent call, and parallel efficiency.

Against the package's fake Messages API with a fixed latency per model call (800 ms by default), each
repetition times one single-agent call, then `fan_out` over N agents (N = 2, 4, 8, 16), in one process.
Parallel efficiency is the slowest child's own duration (from the run store) over the pattern's wall
time: 1.0 means the pattern added nothing around its slowest child. Targets: 4 agents in under 1.5x one
call; efficiency at or above 0.9 while N is within the concurrency limit.

    python benchmarks/fan_out_parallel.py --repeat 5
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from subagents.app import Subagents
from subagents.config import Settings
from subagents.definitions.catalog import Layer, load_catalog
from subagents.history.store import store_for
from subagents.orchestration import run_pattern
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text

SIZES = (2, 4, 8, 16)


def write_agents(directory: Path, count: int) -> list[str]:
    names = [f"worker-{i}" for i in range(count)]
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        front = f"---\nname: {name}\ndescription: Bench worker {name}.\ntools: Read\nmodel: sonnet\n---\n"
        (directory / f"{name}.md").write_text(front + f"You are {name}. Answer in one paragraph.\n")
    return names


def build(url: str, root: Path, agents: Path, store: Path, concurrency: int) -> Subagents:
    settings = Settings(roots=(root,), project_dir=root, pattern_concurrency=concurrency, max_concurrent_runs=32)
    provider = AnthropicProvider(AnthropicSettings(api_key="bench", base_url=url, max_retries=0))
    return Subagents(
        settings, load_catalog([Layer("agents-dir", agents)]), provider, store=store_for(store), owns_store=True
    )


async def one_round(app: Subagents, names: list[str], size: int) -> tuple[float, float, float]:
    """(single-call wall s, pattern wall s, slowest child's own s) for one repetition."""
    start = time.perf_counter()
    single = await app.run(names[0], "Review app.py")
    single_s = time.perf_counter() - start
    assert single.status == "completed", single.error
    start = time.perf_counter()
    outcome = await run_pattern(app, "fan_out", {"task": "Review app.py", "agents": names[:size]})
    pattern_s = time.perf_counter() - start
    assert outcome.status == "completed" and len(outcome.children) == size, outcome.error
    assert all(c.outcome.report for c in outcome.children)  # every report is in the result
    assert app.store is not None
    durations = [(await app.store.get(c.outcome.run_id)).duration_s or 0.0 for c in outcome.children]
    return single_s, pattern_s, max(durations)


async def measure(url: str, root: Path, tmp: Path, repeat: int, concurrency: int) -> dict[int, list[tuple[float, ...]]]:
    names = write_agents(tmp / "agents", max(SIZES))
    app = build(url, root, tmp / "agents", tmp / "runs.db", concurrency)
    rows: dict[int, list[tuple[float, ...]]] = {size: [] for size in SIZES}
    async with app:
        await app.run(names[0], "warm up")  # imports, connection pool, SQLite page cache
        for _ in range(repeat):
            for size in SIZES:
                single, wall, slowest = await one_round(app, names, size)
                rows[size].append((wall / single, slowest / wall, wall))
    return rows


def spread(values: list[float], fmt: str = "{:.2f}") -> str:
    return " / ".join(fmt.format(v) for v in (min(values), statistics.median(values), max(values)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--latency", type=float, default=0.8, help="seconds per model call (default 0.8)")
    parser.add_argument("--concurrency", type=int, default=16, help="--pattern-concurrency (default 16)")
    args = parser.parse_args()

    def slow(request: RecordedRequest) -> Reply:
        return text("No findings: app.py only reads a query parameter.", latency=args.latency)

    with tempfile.TemporaryDirectory() as tmp, FakeMessagesServer(slow) as fake:
        root = Path(tmp) / "repo"
        root.mkdir()
        (root / "app.py").write_text("def handler(request):\n    return request.args['q']\n")
        rows = anyio.run(measure, fake.url, root, Path(tmp), args.repeat, args.concurrency)
    print(
        f"fan_out over N agents, fake model at {args.latency * 1000:.0f} ms a call, pattern concurrency "
        f"{args.concurrency}, {args.repeat} repetitions (min / median / max):\n"
    )
    print("| N | pattern wall s | wall / one call | parallel efficiency (slowest child / wall) |")
    print("|---|---|---|---|")
    for size, values in rows.items():
        ratio, efficiency, wall = ([v[i] for v in values] for i in range(3))
        print(f"| {size} | {spread(wall)} | {spread(ratio)} | {spread(efficiency)} |")
    four = statistics.median(v[0] for v in rows[4])
    print(f"\ntarget: 4 agents under 1.5x one call; measured median {four:.2f}x: {'met' if four < 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
