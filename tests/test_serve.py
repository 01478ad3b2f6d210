"""`subagents serve` as a real subprocess, over stdio and Streamable HTTP, in both protocol eras."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import httpx2
import pytest
from mcp import Client, StdioServerParameters

from subagents.providers.testing import FakeMessagesServer, demo_responder
from tests.conftest import model_env, write_agent
from tests.helpers import SUBAGENTS, child_env, http_server

pytestmark = pytest.mark.anyio
SPECIALISTS = ["debate-judge", "router", "security-reviewer", "test-writer"]
RUN_TOOLS = ["cancel_run", "continue_run", "get_run", "start_agent"]
PATTERNS = ["fan_out"]  # served by default


def stdio_params(project: Path, fake: FakeMessagesServer, *extra: str) -> StdioServerParameters:
    return StdioServerParameters(
        command=SUBAGENTS[0],
        args=[*SUBAGENTS[1:], "serve", "--root", str(project), *extra],
        env=child_env(model_env(fake)),
        cwd=str(project),
    )


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_stdio_lists_and_runs_a_review(mode: str, fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script(demo_responder)
    async with Client(stdio_params(project, fake_model), mode=mode) as client:
        tools = sorted(t.name for t in (await client.list_tools()).tools)
        result = await client.call_tool("security-reviewer", {"task": "Check src/app.py for SQL injection"})
    assert tools == sorted(SPECIALISTS + RUN_TOOLS + PATTERNS)
    assert result.is_error is False
    [read] = fake_model.requests[1].tool_results
    assert "SELECT * FROM users" in read["content"]
    assert result.structured_content and "src/app.py" in result.structured_content["output"]["summary"]["reviewed"]


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_http_lists_and_runs_a_review(mode: str, fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script(demo_responder)
    with http_server("--root", str(project), env=model_env(fake_model)) as (url, _proc):
        async with Client(url, mode=mode) as client:
            tools = sorted(t.name for t in (await client.list_tools()).tools)
            result = await client.call_tool("security-reviewer", {"task": "Check src/app.py"})
    assert tools == sorted(SPECIALISTS + RUN_TOOLS + PATTERNS)
    assert result.is_error is False and result.structured_content
    assert result.structured_content["turns"] == 2


async def test_http_refuses_a_foreign_host_or_origin(project: Path) -> None:
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    with http_server("--root", str(project)) as (url, _proc):
        async with httpx2.AsyncClient(timeout=10) as http:
            good = await http.post(url, json=init, headers=headers)
            bad_host = await http.post(url, json=init, headers=headers | {"Host": "evil.example.com"})
            bad_origin = await http.post(url, json=init, headers=headers | {"Origin": "http://evil.example.com"})
    assert good.status_code == 200
    assert 400 <= bad_host.status_code < 500 and 400 <= bad_origin.status_code < 500


def test_stdout_is_only_json_rpc_and_broken_agents_are_named_on_stderr(project: Path, tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    write_agent(agents, "good.md", "name: good-one\ndescription: fine\ntools: Read")
    broken = write_agent(agents, "broken.md", "name: broken\ntools: Read")
    init = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    requests = [
        init,
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}},
    ]
    stdin = "".join(json.dumps(r) + "\n" for r in requests)
    proc = subprocess.Popen(
        [*SUBAGENTS, "serve", "--root", str(project), "--agents-dir", str(agents)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write(stdin)
    proc.stdin.flush()
    lines = [proc.stdout.readline(), proc.stdout.readline()]
    proc.stdin.close()  # end of input: the server must exit on its own
    assert proc.wait(timeout=20) == 0
    stderr = proc.stderr.read() if proc.stderr else ""
    replies = [json.loads(line) for line in lines]  # every stdout line is JSON-RPC
    tools = sorted(t["name"] for t in replies[1]["result"]["tools"])
    assert tools == sorted(["good-one", *SPECIALISTS, *RUN_TOOLS, *PATTERNS])
    assert str(broken) in stderr and "missing required field 'description'" in stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_stdio_server_stops_on_a_signal_with_stdin_still_open(signum: int, project: Path) -> None:
    """Claude Code sends SIGINT, then SIGTERM, to stop a server; it must not wait for stdin to close."""
    proc = subprocess.Popen(
        [*SUBAGENTS, "serve", "--root", str(project)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=child_env(),
    )
    try:
        init = {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        }
        assert proc.stdin and proc.stdout
        proc.stdin.write((json.dumps(init) + "\n").encode())
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 1  # serving, stdin open
        proc.send_signal(signum)
        assert proc.wait(timeout=8) == 0
    finally:
        proc.kill()
