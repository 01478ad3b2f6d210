"""What recording a run in the run store costs: a file DB (durable, WAL) against `:memory:`.

A typical run: create, then per turn one append of two ~2 KB messages (assistant tool_use + user
tool_result) and one update_progress, then finish: 5 turns, 10 messages, 12 transactions.

    python benchmarks/store_overhead.py --runs 200
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from subagents.history.store import RunInput, RunStore
from subagents.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock, Usage

TURNS = 5
WRITES_PER_RUN = 2 + 2 * TURNS  # create + finish + (append + update_progress) per turn
PAYLOAD = "x" * 2000  # ~2 KB a message


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


def record_one_run(store: RunStore) -> float:
    """Seconds to record one typical run."""
    messages = [turn_messages(t) for t in range(TURNS)]  # built outside the timing
    start = time.perf_counter()
    run_id = store.create_run(agent="security-reviewer", model="claude-x", input=RunInput(task="review"))
    usage = Usage()
    for turn, pair in enumerate(messages, start=1):
        store.append_messages(run_id, pair)
        usage += Usage(input_tokens=1500, output_tokens=200)
        store.update_progress(run_id, turns=turn, usage=usage, cost_usd=0.001 * turn)
    store.finish(
        run_id,
        status="completed",
        report="ok",
        error=None,
        usage=usage,
        cost_usd=0.005,
        turns=TURNS,
        stop_reason="end_turn",
    )
    return time.perf_counter() - start


def measure(store: RunStore, runs: int) -> list[float]:
    for _ in range(5):  # warm up: page cache, statement cache, WAL file
        record_one_run(store)
    return [record_one_run(store) for _ in range(runs)]


def row(label: str, samples: list[float]) -> str:
    median = statistics.median(samples) * 1000
    p90 = statistics.quantiles(samples, n=10)[-1] * 1000
    return f"| {label:<22} | {median:>9.2f} | {p90:>9.2f} | {median / WRITES_PER_RUN:>11.3f} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=200, help="runs to time per store (default 200)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp, RunStore(Path(tmp) / "runs.db") as store:
        file_samples = measure(store, args.runs)
    with RunStore(":memory:") as store:
        memory_samples = measure(store, args.runs)

    print(
        f"Recording one run ({TURNS} turns, {2 * TURNS} messages of ~2 KB, {WRITES_PER_RUN} transactions), "
        f"{args.runs} runs each:\n"
    )
    print("| store                  | median ms | p90 ms    | ms / write  |")
    print("|------------------------|-----------|-----------|-------------|")
    print(row("file (WAL, temp dir)", file_samples))
    print(row(":memory:", memory_samples))
    extra = statistics.median(file_samples) - statistics.median(memory_samples)
    print(f"\nDurability costs {extra * 1000:.2f} ms a run (median file − median memory).")


if __name__ == "__main__":
    main()
