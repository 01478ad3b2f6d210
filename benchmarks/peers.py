"""Peers: PAL MCP (`pal-mcp-server`, the category's most used server) beside ours, where it installs: spawn →
tools/list, the size of its tool list, and idle memory, interleaved with `subagents serve` (the four bundled
agents, a key set) in one run.

PAL is installed from PyPI into a venv of the bench's own, kept between runs under the user's cache directory.
Where it does not install (no network, a Python it does not support), its row says why and the rest goes on.
It starts with a dummy Gemini key, as its README's quick start does, and never calls a model here.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks.cold_start import KEY, compiled, one_start
from benchmarks.harness import Figure, Row, Summary, pair_ratios
from benchmarks.servers import base_env, ours

PAL = "pal-mcp-server==11.8.2"
INSTALL_TIMEOUT_S = 600


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "subagents-bench"


def pal_command(cache: Path) -> list[str] | str:
    """PAL's command, installing it on first use; or, as a string, why it is not there."""
    venv = cache / PAL.replace("==", "-")
    exe = venv / "bin" / "pal-mcp-server"
    if exe.exists():
        return [str(exe)]
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", PAL]
        done = subprocess.run(pip, capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"{PAL} did not install: {exc}"
    if done.returncode != 0 or not exe.exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return f"{PAL} did not install: {last[:200]}"
    return [str(exe)]


async def figure(tmp: Path, runs: int) -> list[Figure]:
    fig = Figure("peers", "spawn → tools/list (ms), min / median / max", ("subagents (4 agents)", "PAL 11.8.2"))
    command = pal_command(cache_dir())
    if isinstance(command, str):
        fig.add(Row("PAL MCP", "", command))
        return [fig]
    mine_env = compiled(base_env(KEY), tmp)
    pal_env = base_env(
        {"GEMINI_API_KEY": "dummy", "PAL_STATE_DIR": str(tmp / "pal-state"), "HOME": str(tmp / "pal-home")}
    ) | {"LOG_LEVEL": "ERROR"}
    (tmp / "pal-home").mkdir(exist_ok=True)
    ours_command = ours(4, tmp, "--catalog-mode", "off")
    await one_start(ours_command, mine_env)  # warm-up pair: page cache and bytecode for both
    await one_start(command, pal_env)
    mine, theirs = [], []
    for _ in range(runs):
        mine.append(await one_start(ours_command, mine_env))
        theirs.append(await one_start(command, pal_env))
    ratios = pair_ratios([m[0] for m in mine], [t[0] for t in theirs])
    fig.add(
        Row(
            "spawn → tools/list, a key set",
            Summary.of([m[0] for m in mine]).show(),
            Summary.of([t[0] for t in theirs]).show(),
            Summary.of(ratios).show(unit="×", digits=2),
            data={"ours_ms": [m[0] for m in mine], "pal_ms": [t[0] for t in theirs]},
        )
    )
    fig.add(Row("tools / tools/list bytes", f"{mine[-1][1]} / {mine[-1][2]:,}", f"{theirs[-1][1]} / {theirs[-1][2]:,}"))
    rss = pair_ratios([m[3] for m in mine], [t[3] for t in theirs])
    fig.add(
        Row(
            "idle RSS after tools/list (MiB)",
            Summary.of([m[3] for m in mine]).show(),
            Summary.of([t[3] for t in theirs]).show(),
            Summary.of(rss).show(unit="×", digits=2),
        )
    )
    fig.notes.append(f"{runs} starts each, interleaved, after a warm-up pair; {PAL} from PyPI, a dummy Gemini key.")
    return [fig]
