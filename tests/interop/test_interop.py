"""Real MCP clients against `subagents serve`, offline, on 127.0.0.1 only.

1. The MCP conformance suite over Streamable HTTP (the generic scenarios also over stdio, through the
   shared stdio->HTTP bridge when it is present).
2. The MCP Inspector CLI: list the tools, run a subagent on the fake model, read an agent resource.
3. Claude Code: `claude mcp add` + `claude mcp list`, then `claude -p` whose own model (a second fake)
   calls our tool, which runs the subagent on the first fake.

The clients come from tests/interop/setup.sh; every test skips when they are not installed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import pytest
from tests.conftest import model_env
from tests.helpers import SUBAGENTS, child_env, free_port, http_server, wait_for_port

from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, demo_responder, text, tool_use

pytestmark = pytest.mark.interop

REPO = Path(__file__).resolve().parents[2]
TOOLS = Path(os.environ.get("SUBAGENTS_INTEROP_DIR") or REPO / ".interop") / "node_modules"
CONFORMANCE = TOOLS / "@modelcontextprotocol" / "conformance" / "dist" / "index.js"
INSPECTOR = TOOLS / "@modelcontextprotocol" / "inspector" / "clients" / "launcher" / "build" / "index.js"
# The team's shared tools sit beside the repository (…/main and …/shared), in CI too.
# The shared tools' stdio->HTTP bridge, carried here so that the test runs from a fresh clone.
BUNDLED_BRIDGE = Path(__file__).resolve().parent / "stdio_http_bridge.py"
BRIDGE = Path(os.environ.get("SUBAGENTS_INTEROP_BRIDGE") or BUNDLED_BRIDGE)
BASELINE = Path(__file__).with_name("conformance-baseline.yml")
SETUP = "run tests/interop/setup.sh"

# Scenarios that say something about our server (see conformance-baseline.yml for the others).
MUST_PASS = [
    "server-initialize",
    "ping",
    "tools-list",
    "resources-list",
    "prompts-list",
    "dns-rebinding-protection",
    "server-sse-multiple-streams",
]
GENERIC = ["server-initialize", "ping", "tools-list"]
REVIEWER = "security-reviewer"
CLAUDE_TOOL = f"mcp__subagents__{REVIEWER}"
DEMO_FINDING = '"location": "src/app.py:4"'  # the demo model's security review of the fixture, in JSON
ANSI = re.compile(r"\x1b\[[0-9;]*m")

Run = Callable[..., subprocess.CompletedProcess[str]]


# --- finding the installed clients ---


def missing(reason: str) -> NoReturn:
    """Skip, or fail under run.sh (SUBAGENTS_INTEROP_REQUIRED=1), where a skip would be a false green."""
    if os.environ.get("SUBAGENTS_INTEROP_REQUIRED") == "1":
        pytest.fail(f"{reason} ({SETUP})")
    pytest.skip(f"{reason} ({SETUP})")


def node() -> str:
    """Node >= 22: the one setup.sh installed, else the system's if it is new enough."""
    packaged = sorted(TOOLS.glob("node-linux-*/bin/node"))
    if packaged:
        return str(packaged[0])
    system = shutil.which("node")
    version = subprocess.run([system, "--version"], capture_output=True, text=True).stdout if system else ""
    if system and int(version.lstrip("v").split(".")[0] or 0) >= 22:
        return system
    missing("no node >= 22")


def installed(path: Path) -> Path:
    if not path.is_file():
        missing(f"{path} is not installed")
    return path


def claude_binary() -> str:
    """Claude Code's native binary, from its platform package (setup.sh skips the postinstall)."""
    found = sorted(TOOLS.glob("@anthropic-ai/claude-code-*/claude"))
    if not found:
        missing(f"Claude Code is not installed in {TOOLS}")
    return str(found[0])


# --- running them ---


def run(
    cmd: Sequence[object], *, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    args = [str(c) for c in cmd]
    try:
        return subprocess.run(
            args, capture_output=True, text=True, env=child_env(env), cwd=cwd, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{Path(args[0]).name} {' '.join(args[1:4])} timed out after {timeout} s: {exc.stderr!r:.2000}")


def run_parallel(cmds: dict[str, list[str]], timeout: float) -> dict[str, subprocess.CompletedProcess[str]]:
    procs = {
        key: subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=child_env(), stdin=subprocess.DEVNULL
        )
        for key, cmd in cmds.items()
    }
    done = {}
    try:
        for key, proc in procs.items():
            out, err = proc.communicate(timeout=timeout)
            done[key] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{key} did not finish within {timeout} s")
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
    return done


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- 1. the conformance suite ---


def conformance_cli() -> list[str]:
    return [node(), str(installed(CONFORMANCE)), "server"]


def conformance(url: str, out: Path, *args: object) -> list[str]:
    return [*conformance_cli(), "--url", url, "-o", str(out), *map(str, args)]


def checks_by_scenario(out: Path) -> dict[str, list[dict[str, Any]]]:
    """`-o DIR` leaves DIR/server-<scenario>-<timestamp>/checks.json per scenario."""
    found = {}
    for path in out.glob("server-*/checks.json"):
        scenario = re.sub(r"-\d{4}-\d\d-\d\dT[\d-]+Z$", "", path.parent.name).removeprefix("server-")
        found[scenario] = json.loads(path.read_text())
    return found


def problems(checks: list[dict[str, Any]]) -> list[str]:
    """Checks that did not succeed (INFO lines are only commentary)."""
    bad = [c for c in checks if c.get("status") not in ("SUCCESS", "INFO")]
    return [f"{c.get('id')}: {c.get('status')} {c.get('errorMessage') or ''}".strip() for c in bad] or (
        [] if checks else ["no checks recorded"]
    )


def summary(result: subprocess.CompletedProcess[str]) -> str:
    plain = ANSI.sub("", result.stdout)
    return f"exit {result.returncode}\n{plain[plain.find('=== SUMMARY') :]}\n{result.stderr[-2000:]}"


@contextmanager
def stdio_bridge(project: Path, log: Path) -> Iterator[str]:
    """`subagents serve` over stdio, behind the shared bridge (the suite itself speaks only HTTP)."""
    port = free_port()
    cmd = [
        sys.executable,
        str(BRIDGE),
        "--port",
        str(port),
        "--idle",
        "15",
        "--",
        *SUBAGENTS,
        "serve",
        "--root",
        str(project),
    ]
    with log.open("w") as sink:
        proc = subprocess.Popen(
            cmd, env=child_env(), stdin=subprocess.DEVNULL, stdout=sink, stderr=subprocess.STDOUT, text=True
        )
        try:
            wait_for_port(port, proc)
            yield f"http://127.0.0.1:{port}/mcp"
        finally:
            stop(proc)


def test_conformance_suite_over_http(project: Path, tmp_path: Path, record_fact: Callable[[str], None]) -> None:
    conformance_cli()  # skip before starting anything
    with http_server("--root", str(project)) as (url, _proc):
        started = time.monotonic()
        result = run(conformance(url, tmp_path, "--suite", "all", "--expected-failures", BASELINE), timeout=180)
        elapsed = time.monotonic() - started
    checks = checks_by_scenario(tmp_path)
    assert result.returncode == 0, summary(result)
    assert {s: problems(checks.get(s, [])) for s in MUST_PASS} == {s: [] for s in MUST_PASS}
    passing = sum(not problems(c) for c in checks.values())
    record_fact(
        f"conformance over HTTP: {passing}/{len(checks)} scenarios pass, "
        f"the other {len(checks) - passing} are the baseline's ({elapsed:.1f} s)"
    )


def test_conformance_generic_scenarios_over_stdio(
    project: Path, tmp_path: Path, record_fact: Callable[[str], None]
) -> None:
    conformance_cli()
    if not BRIDGE.is_file():
        pytest.skip(f"no stdio->HTTP bridge at {BRIDGE} (set SUBAGENTS_INTEROP_BRIDGE)")
    with stdio_bridge(project, tmp_path / "bridge.log") as url:
        started = time.monotonic()
        results = run_parallel({s: conformance(url, tmp_path / s, "--scenario", s) for s in GENERIC}, 120)
        elapsed = time.monotonic() - started
    found = {s: problems(checks_by_scenario(tmp_path / s).get(s, [])) for s in GENERIC}
    assert found == {s: [] for s in GENERIC}, {s: summary(r) for s, r in results.items()}
    assert all(r.returncode == 0 for r in results.values())
    record_fact(f"conformance over stdio (bridge): {', '.join(GENERIC)} pass ({elapsed:.1f} s)")


# --- 2. the MCP Inspector CLI ---


def inspector(*args: str) -> dict[str, Any]:
    result = run([node(), installed(INSPECTOR), "--cli", "--format", "json", *args], timeout=90)
    assert result.returncode == 0, (
        f"inspector exit {result.returncode}: {result.stderr[-2000:]} {result.stdout[-2000:]}"
    )
    return dict(json.loads(result.stdout)["result"])


def stdio_target(project: Path, fake: FakeMessagesServer | None = None) -> list[str]:
    """The Inspector gives a stdio server only HOME, PATH and a few more: the model settings go in -e."""
    flags = [arg for key, value in (model_env(fake) if fake else {}).items() for arg in ("-e", f"{key}={value}")]
    return [*flags, *SUBAGENTS, "serve", "--root", str(project)]


@contextmanager
def inspector_target(transport: str, project: Path, fake: FakeMessagesServer) -> Iterator[list[str]]:
    if transport == "stdio":
        yield stdio_target(project, fake)
        return
    with http_server("--root", str(project), env=model_env(fake)) as (url, _proc):
        yield [url]


def test_inspector_lists_the_agent_tools(project: Path) -> None:
    tools = {t["name"]: t for t in inspector(*stdio_target(project), "--method", "tools/list")["tools"]}
    assert tools[REVIEWER]["inputSchema"]["required"] == ["task"]
    for name, tool in tools.items():
        assert tool["description"] and tool["inputSchema"]["type"] == "object", name


@pytest.mark.parametrize("transport", ["stdio", "http"])
def test_inspector_runs_a_subagent(
    transport: str, project: Path, fake_model: FakeMessagesServer, record_fact: Callable[[str], None]
) -> None:
    fake_model.set_script(demo_responder)
    args = ["--method", "tools/call", "--tool-name", REVIEWER, "--tool-args-json", '{"task": "Review src/app.py"}']
    with inspector_target(transport, project, fake_model) as target:
        started = time.monotonic()
        result = inspector(*target, *args)
        elapsed = time.monotonic() - started
    [content] = result["content"]
    assert result["isError"] is False, content
    assert DEMO_FINDING in content["text"], content["text"]
    assert result["structuredContent"]["output"] == json.loads(content["text"])  # the reviewer answers in JSON
    assert any("SELECT * FROM users" in r["content"] for q in fake_model.requests for r in q.tool_results)
    record_fact(f"inspector tools/call {REVIEWER} over {transport}: ok ({elapsed:.1f} s)")


def test_inspector_lists_and_reads_agent_resources(project: Path) -> None:
    listed = inspector(*stdio_target(project), "--method", "resources/list")["resources"]
    read = inspector(*stdio_target(project), "--method", "resources/read", "--uri", f"subagents://agents/{REVIEWER}")
    assert "subagents://agents" in [r["uri"] for r in listed]
    [content] = read["contents"]
    assert content["mimeType"] == "text/markdown"
    assert f"name: {REVIEWER}" in content["text"]


# --- 3. Claude Code ---


def claude_code_model(request: RecordedRequest) -> Reply:
    """Claude Code's own model: load the subagent tool if it is deferred, call it once, quote the report.
    Anything else Claude Code asks (titles, quick haiku calls) gets a harmless "ok"."""
    calls = assistant_tool_calls(request)
    for result in request.tool_results:
        if calls.get(result["tool_use_id"]) == CLAUDE_TOOL:
            return text("Claude Code got: " + report_text(result["content"])[:200])
    if CLAUDE_TOOL in request.tool_names and CLAUDE_TOOL not in calls.values():
        return tool_use(CLAUDE_TOOL, {"task": "Review src/app.py", "files": ["src/app.py"]})
    if "ToolSearch" in request.tool_names and "ToolSearch" not in calls.values():
        return tool_use("ToolSearch", {"query": f"select:{CLAUDE_TOOL}", "max_results": 1})
    return text("ok")


def assistant_tool_calls(request: RecordedRequest) -> dict[str, str]:
    blocks = [
        b
        for m in request.messages
        if m.get("role") == "assistant" and isinstance(m.get("content"), list)
        for b in m["content"]
        if isinstance(b, dict)
    ]
    return {str(b.get("id")): str(b.get("name")) for b in blocks if b.get("type") == "tool_use"}


def report_text(content: str) -> str:
    """Claude Code gives its model JSON.stringify(structuredContent) when a result has one."""
    try:
        data = json.loads(content)
    except ValueError:
        return content
    if not isinstance(data, dict):
        return content
    return str(data["report"]) if "report" in data else json.dumps(data.get("output", data))


def negotiated(home: Path) -> str:
    """What Claude Code's MCP log says it agreed with our server."""
    for log in sorted(home.glob(".cache/claude-cli-nodejs/*/mcp-logs-subagents/*.jsonl")):
        for line in log.read_text().splitlines():
            debug = str(json.loads(line).get("debug", ""))
            if debug.startswith("Connection established with capabilities: "):
                caps = json.loads(debug.split(": ", 1)[1])
                return f"{caps.get('protocolEra')} era, protocol {caps.get('negotiatedProtocolVersion')}"
    return "no connection logged"


@pytest.fixture
def claude_model() -> Iterator[FakeMessagesServer]:
    with FakeMessagesServer(claude_code_model) as server:
        yield server


@pytest.fixture
def claude(
    project: Path, fake_model: FakeMessagesServer, claude_model: FakeMessagesServer, record_fact: Callable[[str], None]
) -> Run:
    """`claude` in a scratch HOME, its own model on `claude_model`, with our server added (stdio) and
    pointed at `fake_model`."""
    binary = claude_binary()
    fake_model.set_script(demo_responder)
    env = {
        "HOME": os.environ["HOME"],
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
        "ANTHROPIC_BASE_URL": claude_model.url,
        "ANTHROPIC_API_KEY": "sk-ant-interop-dummy",
    }

    def claude_run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return run([binary, *args], env=env, cwd=project, timeout=timeout)

    server_env = [arg for key, value in model_env(fake_model).items() for arg in ("-e", f"{key}={value}")]
    added = claude_run("mcp", "add", "subagents", *server_env, "--", *SUBAGENTS, "serve", "--root", str(project))
    assert added.returncode == 0, added.stdout + added.stderr
    record_fact(f"claude {claude_run('--version').stdout.strip()}")
    return claude_run


def test_claude_code_connects(claude: Run, record_fact: Callable[[str], None]) -> None:
    started = time.monotonic()
    listed = claude("mcp", "list", timeout=90)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert re.search(r"^subagents: .+ - ✔ Connected$", listed.stdout, re.M), listed.stdout
    record_fact(f"claude mcp list: subagents ✔ Connected ({time.monotonic() - started:.1f} s)")


def test_claude_code_delegates_to_the_subagent(
    claude: Run, claude_model: FakeMessagesServer, fake_model: FakeMessagesServer, record_fact: Callable[[str], None]
) -> None:
    started = time.monotonic()
    result = claude("-p", "Review src/app.py for security problems.", "--allowedTools", CLAUDE_TOOL, timeout=180)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    assert "Claude Code got: " in result.stdout, result.stdout + result.stderr[-2000:]
    assert "SQL injection" in result.stdout, result.stdout
    assert any("SELECT * FROM users" in r["content"] for q in fake_model.requests for r in q.tool_results)
    searched = any("ToolSearch" in assistant_tool_calls(q).values() for q in claude_model.requests)
    record_fact(
        f"claude -p called {CLAUDE_TOOL}{' after ToolSearch' if searched else ''} ({elapsed:.1f} s); "
        f"MCP session: {negotiated(Path(os.environ['HOME']))}"
    )
