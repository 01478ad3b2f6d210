"""What a writing run's isolated workspace costs: copy the root, commit a baseline, one edit, the diff, close.

The root is a committed subdirectory of a git repository (as when a package of a monorepo is opened),
with a few uncommitted changes and untracked files. Sizes: `--files` files of `--kb` KB each. Wall
time swings with the machine's load; CPU time (ours and git's, user + system) is the steadier figure.

    python benchmarks/workspace_setup.py --files 2000 --kb 8 --runs 5
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import anyio

from subagents.tools.workspace import Workspace

TARGET_S = {"create": 3.0, "diff": 0.5, "close": 0.5}  # for 2,000 files of 8 KB (16 MB)


def make_repo(top: Path, files: int, kb: int) -> Path:
    root = top / "pkg"
    payload = os.urandom(kb * 512).hex()  # text, kb KB
    for i in range(files):
        path = root / f"mod{i % 50}" / f"file{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {i}\n{payload}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    ident = ("-c", "user.name=b", "-c", "user.email=b@b")
    for args in (("init", "-q"), ("add", "-A"), ("commit", "-qm", "init")):
        subprocess.run(["git", *ident, *args], cwd=top, env=env, check=True, capture_output=True)
    (root / "mod0" / "file0.py").write_text("changed, not committed\n")
    (root / "untracked.txt").write_text("untracked\n")
    return root


def cpu_seconds() -> float:
    ours, git = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return ours.ru_utime + ours.ru_stime + git.ru_utime + git.ru_stime


class Clock:
    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    def lap(self, step: str, wall: float, cpu: float) -> None:
        self.wall[step], self.cpu[step] = time.perf_counter() - wall, cpu_seconds() - cpu


async def one_run(root: Path, base: Path) -> Clock:
    clock = Clock()
    wall, cpu = time.perf_counter(), cpu_seconds()
    ws = await Workspace.create(root, base_dir=base)
    clock.lap("create", wall, cpu)
    (ws.path / "mod1" / "new_test.py").write_text("def test():\n    pass\n")
    wall, cpu = time.perf_counter(), cpu_seconds()
    diff = await ws.diff()
    clock.lap("diff", wall, cpu)
    assert "new_test.py" in diff
    wall, cpu = time.perf_counter(), cpu_seconds()
    await ws.close()
    clock.lap("close", wall, cpu)
    return clock


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=2000)
    parser.add_argument("--kb", type=int, default=8)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = make_repo(Path(tmp) / "repo", args.files, args.kb)
        base = Path(tmp) / "ws"
        base.mkdir()
        samples = [anyio.run(one_run, root, base) for _ in range(args.runs)]
    print(f"{args.files:,} files of {args.kb} KB, {args.runs} runs (seconds)")
    print("| step   | wall min | median |    max | cpu min | median |    max | target (wall) |")
    print("|--------|----------|--------|--------|---------|--------|--------|---------------|")
    for step, target in TARGET_S.items():
        wall = [c.wall[step] for c in samples]
        cpu = [c.cpu[step] for c in samples]
        print(
            f"| {step:<6} | {min(wall):8.3f} | {statistics.median(wall):6.3f} | {max(wall):6.3f} "
            f"| {min(cpu):7.3f} | {statistics.median(cpu):6.3f} | {max(cpu):6.3f} | {target:13.1f} |"
        )


if __name__ == "__main__":
    main()
