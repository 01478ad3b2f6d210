"""What the file tools' sandbox costs, and how it holds against the attacks of the outside test.

Times one tool call (min / median / max over --runs) for: a Read through the descriptor walk, a Glob
of a 20,000-file tree, the hostile Glob `"*" * 100 + "x"` on the same tree, a Grep whose `glob` is
60 stars, and LS of a 200,000-entry directory (bounded at Sandbox.max_walk_entries). Then counts leaks
in the parent-swap race: Read of `docs/notes.txt` while a thread swaps `docs` for a link outside.

    python benchmarks/file_tools.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.race import swapping  # noqa: E402

from subagents.tools.base import ToolOutput  # noqa: E402
from subagents.tools.files import LS, Glob, Grep, Read  # noqa: E402
from subagents.tools.sandbox import Sandbox  # noqa: E402

# Targets: what a model should see at worst, on a laptop.
TARGETS_MS = {"Read": 5, "Glob **/*.py": 2000, "Glob hostile": 2000, "Grep hostile glob": 2000, "LS 200k": 3000}


def build_tree(top: Path) -> None:
    for d in range(200):
        sub = top / "src" / f"pkg{d:03}"
        sub.mkdir(parents=True)
        for f in range(100):
            (sub / f"mod{f:03}.py").write_text("def f():\n    return 'demo'\n")
    big, sources = top / "big", [top / f"source{k}" for k in range(4)]
    big.mkdir()
    for source in sources:
        source.touch()
    for i in range(200_000):
        os.link(sources[i % 4], big / f"f{i:06}")


async def timed(tool: Any, args: dict[str, Any], runs: int) -> list[float]:
    """Seconds per call, all in one event loop, as the server makes them."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        out: ToolOutput = await tool.run(args)
        samples.append(time.perf_counter() - start)
        assert not out.is_error, out.text[:200]
    return samples


def race_leaks(top: Path, tries: int) -> tuple[int, int]:
    (top / "docs").mkdir(parents=True)
    (top / "docs" / "notes.txt").write_text("harmless\n")
    outside = top.parent / (top.name + "-outside")
    outside.mkdir()
    (outside / "notes.txt").write_text("SECRET\n")
    (top / "swap").symlink_to(outside, target_is_directory=True)
    read = Read(Sandbox([top]))
    with swapping(top / "docs", top / "swap"):
        texts = [anyio.run(read.run, {"file_path": "docs/notes.txt"}).text for _ in range(tries)]
    return sum("SECRET" in t for t in texts), sum("harmless" in t for t in texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="calls to time per row (default 5)")
    parser.add_argument("--tries", type=int, default=600, help="reads in the race (default 600)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        top = Path(tmp) / "root"
        top.mkdir()
        build_tree(top)
        sandbox = Sandbox([top])
        rows: dict[str, tuple[Any, dict[str, Any]]] = {
            "Read": (Read(sandbox), {"file_path": "src/pkg007/mod042.py"}),
            "Glob **/*.py": (Glob(sandbox), {"pattern": "**/*.py", "path": "src"}),
            "Glob hostile": (Glob(sandbox), {"pattern": "*" * 100 + "x", "path": "src"}),
            "Grep hostile glob": (Grep(sandbox), {"pattern": "demo", "path": "src", "glob": "*" * 60 + "x"}),
            "LS 200k": (LS(sandbox), {"path": "big"}),
        }
        print(f"One call, {args.runs} runs each (src: 20,000 files in 200 dirs; big: 200,000 entries):\n")
        print("| call               | min ms   | median ms | max ms   | target ms |")
        print("|--------------------|----------|-----------|----------|-----------|")
        for label, (tool, call_args) in rows.items():
            ms = [s * 1000 for s in anyio.run(timed, tool, call_args, args.runs)]
            print(
                f"| {label:<18} | {min(ms):>8.1f} | {statistics.median(ms):>9.1f} | {max(ms):>8.1f} "
                f"| {TARGETS_MS[label]:>9} |"
            )
        leaks, served = race_leaks(Path(tmp) / "race", args.tries)
        print(f"\nParent-swap race: {args.tries} Reads, {leaks} leaked the outside file, {served} read the real one.")


if __name__ == "__main__":
    main()
