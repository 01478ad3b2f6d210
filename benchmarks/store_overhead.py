"""What recording a run costs the run itself, before and after the store's writer, SQLite and PostgreSQL.

A typical run, as the recorder writes it: create, the starting conversation, then per model turn two
~2 KB messages (assistant tool_use + user tool_result) with the spend so far, then finish: 5 turns.

- before: the old recorder: 13 separate transactions, each a hop to a worker thread that waits on
  the store's lock (the `direct` row is the same writes without the hop: what this benchmark
  measured before it counted the hop).
- after: create and finish wait for their commit; the turns are queued and batched by the writer.

"on the run's path" is the time the run spends awaiting the store, with a short pause between turns
(the model's time, not counted) in which the writer works. "N at once" runs N runs concurrently.
Also: how long a cancel request through the store takes to stop a run in another process's store.

    python -m benchmarks.store_overhead --runs 200 [--postgres URL]   # or SUBAGENTS_TEST_POSTGRES_URL
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import nullcontext
from pathlib import Path

import anyio

from benchmarks.harness import Figure, Row, Summary
from benchmarks.legacy_store import LegacyStore
from benchmarks.pg import NO_POSTGRES, fresh_schema, postgres_url
from subagents.history.store import RunInput, store_for
from subagents.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock, Usage
from subagents.recorder import RunRecorder

TURNS = 5
PAYLOAD = "x" * 2000  # ~2 KB a message
START = [Message(role="user", content=(TextBlock(text="<task>review src/app.py</task>"),))]
Timer = Callable[[], Awaitable[float]]
BUDGET_MS = 50  # 1% of a five-turn run whose model turns take a second each


def turn_messages(turn: int) -> list[Message]:
    call_id = f"tu_{turn}"
    return [
        Message(
            role="assistant",
            content=(
                TextBlock(text=PAYLOAD[:1000]),
                ToolUseBlock(id=call_id, name="Read", input={"path": "src/app.py", "note": PAYLOAD[:1000]}),
            ),
        ),
        Message(role="user", content=(ToolResultBlock(tool_use_id=call_id, content=PAYLOAD),)),
    ]


TURN_MESSAGES = [turn_messages(t) for t in range(TURNS)]


class Stopwatch:
    """Sums the time spent inside `with watch:` blocks."""

    def __init__(self) -> None:
        self.total = 0.0

    def __enter__(self) -> None:
        self._start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.total += time.perf_counter() - self._start


async def legacy_run(store: LegacyStore, gap_s: float, hop: bool) -> float:
    """The old recorder: every write a transaction in a worker thread (or, hop=False, called directly)."""
    watch = Stopwatch()

    async def call(fn: Callable[[], object]) -> object:
        with watch:
            return await anyio.to_thread.run_sync(fn) if hop else fn()

    run_id = str(await call(lambda: store.create_run("security-reviewer", "review")))
    await call(lambda: store.append_messages(run_id, START))
    usage = Usage()
    for turn, pair in enumerate(TURN_MESSAGES, start=1):
        await anyio.sleep(gap_s)
        usage += Usage(input_tokens=1500, output_tokens=200)
        await call(lambda pair=pair: store.append_messages(run_id, pair))  # type: ignore[misc]
        await call(lambda turn=turn, usage=usage: store.update_progress(run_id, turn, usage, 0.001 * turn))  # type: ignore[misc]
    await call(lambda: store.finish(run_id, usage, TURNS))
    return watch.total


async def recorder_run(recorder: RunRecorder, gap_s: float) -> float:
    """The recorder now: create and finish wait for their commit; each turn is queued as one write."""
    watch = Stopwatch()
    with watch:
        run_id = await recorder.start(
            agent="security-reviewer", model="m", input=RunInput(task="review"), continued_from=None, client=None
        )
        await recorder.messages(run_id, START)
    usage = Usage()
    for turn, pair in enumerate(TURN_MESSAGES, start=1):
        await anyio.sleep(gap_s)
        usage += Usage(input_tokens=1500, output_tokens=200)
        with watch:
            await recorder.record_turn(run_id, pair, turns=turn, usage=usage, cost_usd=0.001 * turn)
    with watch:
        await recorder.finish(
            run_id,
            status="completed",
            report="ok",
            error=None,
            usage=usage,
            cost_usd=0.005,
            turns=TURNS,
            stop_reason="end_turn",
        )
    return watch.total


async def samples(one_run: Timer, runs: int, concurrent: int) -> list[float]:
    """Seconds on the run's path, one sample per run; `concurrent` runs at a time."""
    for _ in range(5):  # warm up: page cache, statement cache, WAL file, pool
        await one_run()
    times: list[float] = []

    async def one() -> None:
        times.append(await one_run())

    for _ in range(max(1, runs // concurrent)):
        async with anyio.create_task_group() as tg:
            for _ in range(concurrent):
                tg.start_soon(one)
    return times


async def cancel_latency(location: str, tries: int) -> list[float]:
    """Seconds from a cancel request in one store to the run stopping under another store's recorder."""
    times: list[float] = []
    async with store_for(location) as executor, store_for(location, owner="bench-other:1:1") as asker:
        recorder = RunRecorder(executor)
        async with anyio.create_task_group() as tg:
            tg.start_soon(recorder.supervise)
            for _ in range(tries):
                run_id = await executor.create_run(agent="a", model="m", input=RunInput(task="t"))
                stopped = anyio.Event()

                async def execute(run_id: str = run_id, stopped: anyio.Event = stopped) -> None:
                    with recorder.cancellable(run_id):
                        await anyio.sleep(60)
                    stopped.set()

                tg.start_soon(execute)
                await anyio.sleep(0.3)  # it runs, and the watcher is waiting
                start = time.perf_counter()
                await asker.request_cancel(run_id)
                with anyio.fail_after(10):
                    await stopped.wait()
                times.append(time.perf_counter() - start)
                await executor.finish(
                    run_id,
                    status="cancelled",
                    report=None,
                    error=None,
                    usage=Usage(),
                    cost_usd=None,
                    turns=0,
                    stop_reason="cancelled",
                )
            tg.cancel_scope.cancel()
    return times


def row(label: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"| {label:<44} | {min(ms):>8.2f} | {statistics.median(ms):>8.2f} | {max(ms):>8.2f} |"


async def main_async(runs: int, concurrent: int, gap_s: float, postgres: str | None, tmp: Path) -> None:
    sqlite_path = tmp / "runs.db"
    async with store_for(sqlite_path):  # creates the schema the legacy writes use
        pass
    legacy = LegacyStore(sqlite_path)
    stores: list[tuple[str, str]] = [("SQLite", str(sqlite_path))] + ([("PostgreSQL", postgres)] if postgres else [])
    table: list[str] = []

    def legacy_timer(hop: bool) -> Timer:
        return lambda: legacy_run(legacy, gap_s, hop)

    for n in (1, concurrent):
        at_once = "" if n == 1 else f", {n} at once"
        if n == 1:
            table.append(
                row(f"before: SQLite, direct (no thread hop){at_once}", await samples(legacy_timer(False), runs, 1))
            )
        table.append(
            row(f"before: SQLite, 13 tx via worker threads{at_once}", await samples(legacy_timer(True), runs, n))
        )
        for name, location in stores:
            async with store_for(location) as store:
                recorder = RunRecorder(store)
                found = await samples(lambda recorder=recorder: recorder_run(recorder, gap_s), runs, n)  # type: ignore[misc]
            table.append(row(f"after: {name}, one writer{at_once}", found))
    legacy.close()

    cancels = [(name, await cancel_latency(location, 15)) for name, location in stores]

    print(
        f"Store time on a run's path: {TURNS} turns of two ~2 KB messages, {gap_s * 1000:g} ms of model time "
        f"between turns (not counted), {runs} runs per row:\n"
    )
    print(f"| {'store':<44} | {'min ms':>8} | {'median':>8} | {'max ms':>8} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 10}|{'-' * 10}|")
    print("\n".join(table))
    print("\nA cancel request through the store, until the run stops in the process that executes it:\n")
    print(f"| {'store':<44} | {'min ms':>8} | {'median':>8} | {'max ms':>8} |")
    print(f"|{'-' * 46}|{'-' * 10}|{'-' * 10}|{'-' * 10}|")
    for name, times in cancels:
        how = "LISTEN/NOTIFY" if name == "PostgreSQL" else "a poll every 0.25 s"
        print(row(f"{name} ({how})", times))
    print("\nTargets: no thread hop or lock per turn on the run's path; a cancel lands within 1 s.")


async def figure(tmp: Path, runs: int, concurrent: int = 16, gap_s: float = 0.002) -> list[Figure]:
    """For `python -m benchmarks`: a run's store time on PostgreSQL over loopback next to SQLite, and cancel
    latency through each store."""
    fig = Figure("store", "store time on a run's path, ms", ("PostgreSQL (loopback)", "SQLite"))
    base = postgres_url()
    if base is None:
        fig.notes.append(f"PostgreSQL rows left out: {NO_POSTGRES}")
    sqlite_path = str(tmp / "store-figure.db")
    with fresh_schema(base) if base else nullcontext("") as postgres:
        for n in (1, concurrent):
            times: dict[str, list[float]] = {}
            for name, location in (("sqlite", sqlite_path), ("postgres", postgres)):
                if location:
                    async with store_for(location) as store:
                        recorder = RunRecorder(store)
                        timer = lambda recorder=recorder: recorder_run(recorder, gap_s)  # type: ignore[misc]  # noqa: E731
                        times[name] = await samples(timer, runs, n)
            lite = Summary.of([t * 1000 for t in times["sqlite"]])
            label = f"one run ({TURNS} turns)" + ("" if n == 1 else f", {n} at once")
            if "postgres" in times:
                pg = Summary.of([t * 1000 for t in times["postgres"]])
                ratio = f"{pg.median / lite.median:.1f}×"
                met = max(pg.median, lite.median) <= BUDGET_MS
                fig.add(Row(label, pg.show(digits=2), lite.show(digits=2), ratio, f"≤ {BUDGET_MS} ms a run", met))
            else:
                fig.add(Row(label, "-", lite.show(digits=2)))
        cancels = {
            name: await cancel_latency(loc, 8) for name, loc in (("sqlite", sqlite_path), ("postgres", postgres)) if loc
        }
    lite_cancel = Summary.of([t * 1000 for t in cancels["sqlite"]])
    pg_cancel = Summary.of([t * 1000 for t in cancels["postgres"]]) if "postgres" in cancels else None
    met = max(pg_cancel.max if pg_cancel else 0, lite_cancel.max) <= 1000
    shown = pg_cancel.show(digits=0) if pg_cancel else "-"
    fig.add(
        Row("cancel through the store until the run stops, ms", shown, lite_cancel.show(digits=0), "", "≤ 1000 ms", met)
    )
    fig.notes.append(
        f"per run: create, the first message, {TURNS} turns of two ~2 KB messages queued, finish; {gap_s * 1000:g} ms "
        "of model time between turns (not counted); cancel: PostgreSQL LISTEN/NOTIFY, SQLite a poll every 0.25 s"
    )
    return [fig]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="runs per row (default 200)")
    parser.add_argument("--concurrent", type=int, default=50, help="runs at once in the load rows (default 50)")
    parser.add_argument("--gap-ms", type=float, default=2.0, help="model time between turns (default 2 ms)")
    parser.add_argument("--postgres", default=os.environ.get("SUBAGENTS_TEST_POSTGRES_URL"), help="a PostgreSQL URL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        anyio.run(main_async, args.runs, args.concurrent, args.gap_ms / 1000, args.postgres, Path(tmp))


if __name__ == "__main__":
    main()
