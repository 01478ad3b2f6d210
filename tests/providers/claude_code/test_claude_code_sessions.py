"""Sessions and the warm pool: per-session state, cancellation, timeouts, replacement, reaping, the budget."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from subagents.app import RunOutcome, Subagents
from subagents.history.store import RunStore
from subagents.providers.claude_code.options import ClaudeCodeSettings
from subagents.providers.claude_code.pool import WarmPool
from subagents.providers.claude_code.session import Session
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text, tool_use
from tests.conftest import write_agent

from .conftest import all_results, claude_app, mentions, tool_calls

pytestmark = [pytest.mark.claude_code, pytest.mark.anyio]


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    directory = tmp_path / "agents"
    write_agent(directory, "reviewer.md", "name: reviewer\ndescription: reads\ntools: Read, Grep")
    quick = "name: quick\ndescription: reads, briefly\ntools: Read, Grep\nsubagents: {timeout: 8}"
    write_agent(directory, "quick.md", quick)
    return directory


def pool_of(app: Subagents) -> WarmPool:
    assert app.backends is not None and app.backends.claude_code is not None
    return app.backends.claude_code.pool


async def eventually(check: Callable[[], object], what: str) -> None:
    with anyio.fail_after(60, reason=f"not within 60 s: {what}"):
        while not check():
            await anyio.sleep(0.05)


def ready(pool: WarmPool, agent: str = "reviewer") -> list[Session]:
    return [s for s in pool.ready() if s.config.agent == agent]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] != "Z"  # a zombie has ended


async def test_cancelling_one_run_leaves_the_other_to_finish(
    claude_fake: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    def script(request: RecordedRequest) -> Reply:
        if "Read" not in request.tool_names:
            return text("ok")
        if mentions(request, "TASK-A"):
            return text("A-REPORT", latency=60)  # A waits on its model until it is cancelled
        if not tool_calls(request):
            return tool_use("Read", {"file_path": "src/app.py"}, latency=1.5)
        return text("B-REPORT " + all_results(request)[0]["content"], latency=0.5)

    claude_fake.set_script(script)
    outcomes: dict[str, RunOutcome] = {}
    ids: dict[str, str] = {}
    scope_a = anyio.CancelScope()
    async with claude_app(project, agents_dir=agents, store=store) as app:

        async def run(name: str, scope: anyio.CancelScope) -> None:
            async def started(run_id: str) -> None:
                ids[name] = run_id

            with scope:
                outcomes[name] = await app.run("reviewer", f"TASK-{name}", started=started)

        async with anyio.create_task_group() as tg:
            tg.start_soon(run, "A", scope_a)
            tg.start_soon(run, "B", anyio.CancelScope())
            requests = lambda: claude_fake.requests  # noqa: E731
            await eventually(lambda: any(mentions(r, "TASK-A") for r in requests()), "A asked its model")
            await eventually(lambda: any(mentions(r, "TASK-B") for r in requests()), "B asked its model")
            scope_a.cancel()

    assert "A" not in outcomes  # cancelled: app.run re-raised the cancellation
    assert (await store.get(ids["A"])).status == "cancelled"
    assert outcomes["B"].status == "completed", outcomes["B"].error
    assert outcomes["B"].report.startswith("B-REPORT") and "SELECT * FROM users" in outcomes["B"].report
    assert (await store.get(ids["B"])).status == "completed"
    assert claude_fake.disconnects >= 1  # A's session was interrupted: its model call was dropped


async def test_a_timed_out_run_leaks_nothing_into_later_runs(
    claude_fake: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    def script(request: RecordedRequest) -> Reply:
        if "Read" not in request.tool_names:
            return text("ok")
        if mentions(request, "FOLLOW-UP"):
            return text("FOLLOW-UP-REPORT")
        if mentions(request, "TASK-SLOW") and not tool_calls(request):
            return tool_use("Read", {"file_path": "README.md"})
        if mentions(request, "TASK-SLOW"):
            return text("LATE-SLOW-REPORT", latency=30)  # would arrive after the 8 s timeout
        return text("NEXT-REPORT")

    claude_fake.set_script(script)
    claude = ClaudeCodeSettings(warm_sessions=1, warm_memory_mb=4096)
    async with claude_app(project, agents_dir=agents, store=store, claude=claude) as app:
        pool = pool_of(app)
        await eventually(lambda: ready(pool, "quick"), "a session was pre-started")  # the 8 s are the model's
        slow = await app.run("quick", "TASK-SLOW")
        following = await app.run("quick", "TASK-NEXT")
        continued = await app.continue_run(slow.run_id, "FOLLOW-UP: go on")

    assert slow.status == "failed" and slow.error_kind == "timeout", slow
    assert any(mentions(r, "TASK-SLOW") and not mentions(r, "FOLLOW-UP") for r in claude_fake.requests)
    assert "LATE" not in slow.report
    assert following.status == "completed" and following.report == "NEXT-REPORT"
    assert continued.status == "completed" and continued.report == "FOLLOW-UP-REPORT"
    # The continuation ran on the session that timed out, which still holds the conversation (no replay
    # of it as text), and the interrupted generation's late output never joined it.
    [asked] = [r for r in claude_fake.requests if mentions(r, "FOLLOW-UP")]
    assert "# demo project" in json.dumps(asked.messages) and not mentions(asked, "earlier-conversation")
    assert not any(mentions(r, "LATE-SLOW-REPORT") for r in claude_fake.requests)


async def test_a_warm_session_serves_the_call_and_one_that_dies_is_replaced(
    claude_fake: FakeMessagesServer, project: Path, agents: Path
) -> None:
    claude_fake.set_script(lambda request: text("WARM-REPORT"))
    claude = ClaudeCodeSettings(warm_sessions=1, warm_memory_mb=4096)
    async with claude_app(project, agents_dir=agents, claude=claude) as app:
        pool = pool_of(app)
        await eventually(lambda: ready(pool), "a session was pre-started")
        [first] = ready(pool)
        assert first.pid is not None
        os.kill(first.pid, signal.SIGKILL)
        await eventually(lambda: [s for s in ready(pool) if s is not first], "the dead session was replaced")
        [second] = ready(pool)
        assert second.pid != first.pid and not alive(first.pid)
        outcome = await app.run("reviewer", "Look")
    assert outcome.status == "completed" and outcome.report == "WARM-REPORT"
    assert pool.served_warm == 1


async def test_a_session_carries_the_recursion_marker_and_none_of_the_users_claude_config(
    claude_fake: FakeMessagesServer, project: Path, agents: Path, tmp_path: Path
) -> None:
    home = Path(os.environ["HOME"])
    started, hooked = tmp_path / "mcp-started", tmp_path / "hook-ran"
    server = {"type": "stdio", "command": "sh", "args": ["-c", f"touch {started}; sleep 30"]}
    (home / ".claude.json").write_text(f'{{"mcpServers": {{"subagents": {json_of(server)}}}}}')
    (project / ".mcp.json").write_text(f'{{"mcpServers": {{"subagents": {json_of(server)}}}}}')
    hook = {"hooks": [{"type": "command", "command": f"touch {hooked}"}]}
    (home / ".claude").mkdir(exist_ok=True)
    (home / ".claude" / "settings.json").write_text(f'{{"hooks": {{"PreToolUse": [{json_of(hook)}]}}}}')

    def script(request: RecordedRequest) -> Reply:
        if "Read" in request.tool_names and not tool_calls(request):
            return tool_use("Read", {"file_path": "README.md"})
        return text("done")

    claude_fake.set_script(script)
    claude = ClaudeCodeSettings(warm_sessions=1, warm_memory_mb=4096)
    async with claude_app(project, agents_dir=agents, claude=claude) as app:
        pool = pool_of(app)
        await eventually(lambda: ready(pool), "a session was pre-started")
        [session] = ready(pool)
        environ = await anyio.Path(f"/proc/{session.pid}/environ").read_bytes()
        outcome = await app.run("reviewer", "Read the readme")

    assert b"SUBAGENTS_SESSION=1" in environ.split(b"\0")
    assert b"SUBAGENTS_DELEGATION_DEPTH=1" in environ.split(b"\0")  # a client's call here is depth 1
    # A subagents server started with that session's environment (a command the model ran, a config we did
    # not load) refuses to serve.
    session_env = dict(item.decode().split("=", 1) for item in environ.split(b"\0") if b"=" in item)
    served = await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "subagents", "serve", "--root", str(project)],
            env=session_env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    )
    assert served.returncode == 2 and "refuses to start inside a subagent's Claude Code session" in served.stderr
    assert outcome.status == "completed", outcome.error
    assert not started.exists() and not hooked.exists()
    assert not any(name.startswith("mcp__") for r in claude_fake.requests for name in r.tool_names)


def json_of(value: object) -> str:
    return json.dumps(value)


async def test_idle_sessions_are_reaped(claude_fake: FakeMessagesServer, project: Path, tmp_path: Path) -> None:
    write_agent(tmp_path / "one", "reviewer.md", "name: reviewer\ndescription: reads\ntools: Read")
    claude = ClaudeCodeSettings(warm_sessions=1, warm_idle_s=2.0, warm_memory_mb=4096)
    async with claude_app(project, agents_dir=tmp_path / "one", claude=claude) as app:
        pool = pool_of(app)
        await eventually(lambda: ready(pool), "a session was pre-started")
        [session] = ready(pool)
        assert session.pid is not None
        pid = session.pid
        await eventually(lambda: not pool.ready() and not alive(pid), "the idle session was stopped")
        await anyio.sleep(1.5)  # the pool's maintenance ran again: it must not start another
        assert pool.started == 1


async def test_the_memory_budget_bounds_the_pool_and_calls_still_run(
    claude_fake: FakeMessagesServer, project: Path, agents: Path
) -> None:
    claude_fake.set_script(lambda request: text("COLD-REPORT"))
    claude = ClaudeCodeSettings(warm_sessions=2, warm_memory_mb=0)
    async with claude_app(project, agents_dir=agents, claude=claude) as app:
        pool = pool_of(app)
        outcome = await app.run("reviewer", "Look")
        await anyio.sleep(1.5)  # a refill would start now if the budget allowed one
        started = pool.started
    assert outcome.status == "completed" and outcome.report == "COLD-REPORT"
    assert (started, pool.served_warm) == (1, 0)


async def test_a_session_that_dies_mid_run_fails_the_run_with_the_reason(
    claude_fake: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    claude_fake.set_script(lambda request: text("never", latency=60) if "Read" in request.tool_names else text("ok"))
    outcomes: list[RunOutcome] = []
    claude = ClaudeCodeSettings(warm_sessions=1, warm_memory_mb=4096)
    async with claude_app(project, agents_dir=agents, store=store, claude=claude) as app:
        pool = pool_of(app)
        await eventually(lambda: ready(pool), "a session was pre-started")
        [session] = ready(pool)
        assert session.pid is not None
        async with anyio.create_task_group() as tg:

            async def run() -> None:
                outcomes.append(await app.run("reviewer", "Look"))

            tg.start_soon(run)
            await eventually(lambda: claude_fake.requests, "the session asked its model")
            os.kill(session.pid, signal.SIGKILL)
    [outcome] = outcomes
    assert outcome.status == "failed" and outcome.error_kind == "claude_code", outcome
    assert "session ended before the run finished" in (outcome.error or "")
    assert (await store.get(outcome.run_id)).status == "failed"
