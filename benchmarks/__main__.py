"""`python -m benchmarks`: every figure, each measured in one run against its baseline, as tables with
min/median/max, the ratio and the target; `--json FILE` keeps the numbers.

    python -m benchmarks                      # everything (several minutes)
    python -m benchmarks --only caching,cold  # some figures
    python -m benchmarks --quick              # fewer rounds, for a smoke run

Runs from a fresh clone with only the package installed (`pip install -e .`): no file from outside the
repository. The machine is shared and noisy: read medians and ratios, not single times.
"""

from __future__ import annotations

import argparse
import gc
import platform
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import anyio

from benchmarks import (
    caching,
    call_overhead,
    cold_start,
    concurrency,
    live_reload,
    peers,
    replicas,
    store_overhead,
    tracing_overhead,
)
from benchmarks.harness import Figure, write_json

FigureFn = Callable[[Path, bool], Awaitable[list[Figure]]]
FIGURES: dict[str, FigureFn] = {
    "cold": lambda tmp, quick: cold_start.figure(tmp, 3 if quick else 7, (4, 40) if quick else (4, 40, 200)),
    "calls": lambda tmp, quick: call_overhead.figure(tmp, 30 if quick else 150),
    "concurrency": lambda tmp, quick: concurrency.figure(tmp, 1 if quick else 3, (1, 16) if quick else (1, 4, 16, 64)),
    "caching": lambda tmp, quick: caching.figure(tmp),
    "store": lambda tmp, quick: store_overhead.figure(tmp, 20 if quick else 100),
    "replicas": lambda tmp, quick: replicas.figure(tmp, 1 if quick else 3),
    "tracing": lambda tmp, quick: tracing_overhead.figure(tmp, 3 if quick else 9, 30 if quick else 150),
    "reload": lambda tmp, quick: live_reload.figure(tmp, 3 if quick else 7, (10,) if quick else (10, 200)),
    "peers": lambda tmp, quick: peers.figure(tmp, 3 if quick else 7),
}


async def run(names: list[str], quick: bool, json_path: Path | None) -> int:
    figures: list[Figure] = []
    # The harness's own imports out of the collector's sight: a full collection of them (over 100 ms here)
    # would land in whichever row is running, as the server does with its own (`tune_collector`).
    gc.freeze()
    with tempfile.TemporaryDirectory(prefix="subagents-bench-") as tmp:
        for name in names:
            started = time.monotonic()
            print(f"measuring {name} …", file=sys.stderr, flush=True)
            for fig in await FIGURES[name](Path(tmp), quick):
                figures.append(fig)
                print(fig.render(), f"\n({time.monotonic() - started:.0f} s)\n", sep="\n", flush=True)
    missed = [f"{f.name}: {r.label}" for f in figures for r in f.rows if r.met is False]
    if json_path is not None:
        meta = {"when": datetime.now(UTC).isoformat(), "python": sys.version, "machine": platform.platform()}
        write_json(figures, json_path, meta | {"quick": quick, "missed": missed})
    print("targets missed: " + ("; ".join(missed) if missed else "none"))
    return 1 if missed else 0


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help=f"comma-separated figures among {', '.join(FIGURES)}")
    parser.add_argument("--quick", action="store_true", help="fewer rounds and sizes: a smoke run")
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the numbers as JSON")
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",")] if args.only else list(FIGURES)
    unknown = [n for n in names if n not in FIGURES]
    if unknown:
        parser.error(f"unknown figure {', '.join(unknown)}; choose among {', '.join(FIGURES)}")
    sys.exit(anyio.run(run, names, args.quick, args.json))


if __name__ == "__main__":
    main()
