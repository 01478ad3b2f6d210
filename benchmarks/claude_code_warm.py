"""Time from an agent call to its first model request on the Claude Code backend: warm pool vs cold spawn.

Both go through `Subagents.run` (store, tools, session, prompt) against the fake Messages API, with the
CLI bundled in claude-agent-sdk, a scratch HOME and a dummy key. Cold: no pre-started session, so each
call spawns Claude Code. Warm: the pool keeps one session ready, and each call waits until it is.

    python benchmarks/claude_code_warm.py [RUNS]     # needs: pip install -e '.[claude-code]'
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio

from subagents.app import Subagents
from subagents.backends import Backends
from subagents.config import Settings
from subagents.definitions.catalog import Layer, load_catalog
from subagents.history.store import store_for
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.claude_code.options import ClaudeCodeSettings
from subagents.providers.claude_code.pool import WarmPool
from subagents.providers.claude_code.runner import ClaudeCodeBackend
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text

AGENT = "---\nname: reviewer\ndescription: reads code\ntools: Read, Grep, Glob\n---\nYou review code.\n"
TARGET = "warm median under a third of cold"


class FirstRequests:
    """The fake model's script: answers at once, and notes when each trial's first request came in."""

    def __init__(self) -> None:
        self.seen: dict[str, float] = {}

    def __call__(self, request: RecordedRequest) -> Reply:
        for message in request.messages:
            content = str(message.get("content"))
            if "TRIAL-" in content:
                trial = content.split("TRIAL-", 1)[1].split("\\n", 1)[0].split()[0]
                self.seen.setdefault(trial, time.monotonic())
        return text("done")


def make_app(root: Path, agents: Path, warm: int) -> Subagents:
    claude = ClaudeCodeSettings(warm_sessions=warm, warm_memory_mb=4096)
    settings = Settings(roots=(root,), project_dir=root, provider="claude-code", claude_code=claude)
    backends = Backends("claude-code", AnthropicSettings(), ClaudeCodeBackend(claude, max_retries=0))
    catalog = load_catalog([Layer("bench", agents)])
    return Subagents(
        settings,
        catalog,
        AnthropicProvider(AnthropicSettings()),
        store=store_for(":memory:"),
        backends=backends,
        owns_store=True,
    )


async def measure(mode: str, runs: int, root: Path, agents: Path, script: FirstRequests) -> list[float]:
    times: list[float] = []
    async with make_app(root, agents, warm=1 if mode == "warm" else 0) as app:
        pool = app.backends.claude_code.pool  # type: ignore[union-attr]
        for i in range(runs + 1):  # the first run of each mode is a discarded warm-up
            if mode == "warm":
                await ready(pool)
            trial = f"{mode}{i}"
            started = time.monotonic()
            outcome = await app.run("reviewer", f"TRIAL-{trial} review")
            if outcome.status != "completed":
                raise SystemExit(f"{mode} run {i} failed: {outcome.error}")
            if i:
                times.append(script.seen[trial] - started)
        if mode == "warm":
            print(f"warm pool: {pool.served_warm} of {runs + 1} calls served warm; {pool.memory_mb()} MB live")
    return times


async def ready(pool: WarmPool) -> None:
    """Until the pool has a session ready (it refills a few seconds after each call)."""
    with anyio.fail_after(120):
        while not pool.ready():  # noqa: ASYNC110 - the pool has no event for this; a benchmark may poll
            await anyio.sleep(0.02)


def row(label: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"| {label:<26} | {len(ms):>4} | {min(ms):>8.0f} | {statistics.median(ms):>8.0f} | {max(ms):>8.0f} |"


async def main(runs: int) -> None:
    script = FirstRequests()
    with tempfile.TemporaryDirectory() as tmp, FakeMessagesServer(script) as fake:
        base = Path(tmp)
        root, agents, home = base / "project", base / "agents", base / "home"
        for directory in (root, agents, home):
            directory.mkdir()
        (root / "app.py").write_text("print('hi')\n")
        (agents / "reviewer.md").write_text(AGENT)
        os.environ.update(
            HOME=str(home),
            ANTHROPIC_API_KEY="sk-ant-benchmark-dummy",
            ANTHROPIC_BASE_URL=fake.url,
            CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        )
        for name in [n for n in os.environ if n.startswith("SUBAGENTS_")]:
            del os.environ[name]
        cold = await measure("cold", runs, root, agents, script)
        warm = await measure("warm", runs, root, agents, script)
    print(f"\ntime from app.run() to the first model request, ms ({runs} runs each, after one warm-up run)\n")
    print("| mode                       | runs |      min |   median |      max |")
    print("|----------------------------|------|----------|----------|----------|")
    print(row("cold spawn (no warm pool)", cold))
    print(row("warm pool (1 session)", warm))
    ratio = statistics.median(warm) / statistics.median(cold)
    verdict = "met" if ratio < 1 / 3 else "NOT met"
    print(f"\nwarm/cold median: {ratio:.2f} (target: {TARGET}: {verdict})")


if __name__ == "__main__":
    anyio.run(main, int(sys.argv[1]) if len(sys.argv) > 1 else 7)
