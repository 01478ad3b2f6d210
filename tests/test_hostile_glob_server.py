"""Attack 1 against a real `subagents serve`: hostile Glob and Grep patterns must not freeze the server.

Before the fix, `Glob {"pattern": "*" * 100 + "x"}` spun in `re` with the GIL held: no other client got
an answer and SIGTERM was ignored. Now globs match in linear time, and Grep's regex runs with the GIL
released under the call's deadline, so while one client's hostile call is in flight another client is
served, and SIGTERM stops the process."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import anyio
import pytest
from mcp import Client

from subagents.providers.testing import FakeMessagesServer, text, tool_use
from tests.conftest import model_env
from tests.helpers import http_server

SECRET = "SECRET-MARKER-5d0e"
HOSTILE_GLOB = "*" * 100 + "x"


@pytest.fixture
def trap(project: Path) -> Path:
    (project / "box").write_text("demo inside a box\n")
    (project / "a.txt").write_text("a" * 60 + "b\n")  # (a|aa)+$ backtracks for ever on this line
    (project / ".env").write_text(f"API_KEY={SECRET}\n")
    return project


def test_a_hostile_call_leaves_the_server_answering_and_stoppable(fake_model: FakeMessagesServer, trap: Path) -> None:
    fake_model.set_script(
        [
            tool_use("Glob", {"pattern": HOSTILE_GLOB}),
            tool_use("Grep", {"pattern": "demo", "glob": "*" * 60 + "x"}),
            tool_use("Grep", {"pattern": r"(a|aa)+$", "output_mode": "content"}),  # in flight until its deadline
            text("done"),
        ]
    )
    with http_server("--root", str(trap), env=model_env(fake_model)) as (url, proc):
        waits = anyio.run(_while_a_hostile_call_runs, url, fake_model, proc)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)  # the regex may finish its deadline first: the thread is not killed
        except subprocess.TimeoutExpired:
            pytest.fail("SIGTERM did not stop the server while a hostile Grep was running")
    assert all(w < 1.0 for w in waits), waits  # the second client was answered within a second, each time
    glob, grep_glob = (r.tool_results[0] for r in fake_model.requests[1:3])
    assert glob == {"tool_use_id": glob["tool_use_id"], "content": "box", "is_error": False}
    assert grep_glob["content"] == "Found 1 file\nbox" and not grep_glob["is_error"]
    assert SECRET not in "\n".join(json.dumps(r.body) for r in fake_model.requests)


async def _while_a_hostile_call_runs(url: str, fake: FakeMessagesServer, proc: subprocess.Popen[str]) -> list[float]:
    """Client A starts the agent; once its Grep trap is running, client B lists tools three times."""
    waits: list[float] = []
    async with Client(url) as first, Client(url) as second, anyio.create_task_group() as tg:
        tg.start_soon(first.call_tool, "security-reviewer", {"task": "look around"})
        with anyio.fail_after(30):  # the Glob and the Grep with a hostile glob have both come back
            while len(fake.requests) < 3:
                await anyio.sleep(0.05)
        await anyio.sleep(0.5)  # the regex trap is now matching in the server's worker thread
        for _ in range(3):
            started = time.monotonic()
            with anyio.fail_after(30):
                listed = await second.list_tools()
            waits.append(time.monotonic() - started)
            assert "security-reviewer" in [t.name for t in listed.tools]
        assert proc.poll() is None
        tg.cancel_scope.cancel()
    return waits
