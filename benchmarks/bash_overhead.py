"""What the bubblewrap sandbox adds to one Bash call: the same `python -c pass` through the Bash tool
(sandboxed: bwrap, namespaces, mounts, init, kill) and as a bare subprocess (no sandbox, no tool).

    python benchmarks/bash_overhead.py --runs 30

Target: the sandbox adds under 50 ms a call (a test run takes seconds).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

from subagents.tools.bash import Bash, BashPolicy
from subagents.tools.jail import find_jail

TARGET_MS = 50.0


def bare(workdir: Path) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "pass"], cwd=workdir, check=True, stdin=subprocess.DEVNULL)
    return time.perf_counter() - start


async def sandboxed(bash: Bash) -> float:
    start = time.perf_counter()
    out = await bash.run({"command": shlex.join([sys.executable, "-c", "pass"])})
    elapsed = time.perf_counter() - start
    if not out.text.startswith("Command exit code 0."):
        raise SystemExit(f"the sandboxed call failed: {out.text}")
    return elapsed


def row(label: str, samples: list[float]) -> str:
    ms = [s * 1000 for s in samples]
    return f"| {label:<20} | {min(ms):>7.1f} | {statistics.median(ms):>9.1f} | {max(ms):>7.1f} |"


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30, help="calls to time each way (default 30)")
    args = parser.parse_args()
    jail = find_jail()
    if isinstance(jail, str):
        raise SystemExit(jail)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bash = Bash(workdir, BashPolicy(enabled=True, allow=(shlex.quote(sys.executable),)), home_base=workdir)
        await sandboxed(bash), bare(workdir)  # warm up: page cache, the probe
        jailed = [await sandboxed(bash) for _ in range(args.runs)]
        plain = [bare(workdir) for _ in range(args.runs)]
    print(f"`python -c pass`, {args.runs} calls each ({jail.program}):\n")
    print("| way                  | min ms  | median ms | max ms  |")
    print("|----------------------|---------|-----------|---------|")
    print(row("Bash tool, sandboxed", jailed))
    print(row("bare subprocess", plain))
    extra = (statistics.median(jailed) - statistics.median(plain)) * 1000
    verdict = "meets" if extra < TARGET_MS else "misses"
    print(f"\nThe sandbox and the tool add {extra:.1f} ms a call (median); {verdict} the {TARGET_MS:g} ms target.")


if __name__ == "__main__":
    anyio.run(main)
