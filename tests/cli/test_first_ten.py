"""A new user's first commands, as real subprocesses: run, serve, agents, doctor and demo."""

from __future__ import annotations

import json
import os
import pty
import re
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from subagents.cli.progress import describe
from subagents.events import RunEvent
from subagents.messages import Usage
from subagents.providers.testing import FakeMessagesServer, Reply, demo_responder, text
from tests.conftest import model_env, write_agent
from tests.helpers import SUBAGENTS, child_env, free_port, run_cli

# A 200 reply to a streaming request that is not a stream: the SDK itself fails (AssertionError), an
# exception that is no API error, as a library bug or an SDK change would.
SDK_BREAKING = Reply(body={"type": "message", "content": "not a list"})


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
}


def run_id(stderr: str) -> str:
    match = re.search(r"(run_[0-9a-f]{12})\]", stderr)
    assert match, stderr
    return match[1]


def recorded(run: str, store: Path) -> dict[str, object]:
    shown = run_cli("runs", "show", run, "--json", "--store", str(store))
    assert shown.returncode == 0, shown.stderr
    return dict(json.loads(shown.stdout))


# --- run: whatever breaks, the run ends recorded, and the user reads one sentence ---


def test_an_sdk_failure_in_a_real_run_is_recorded_failed_not_running(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    fake_model.set_script([SDK_BREAKING])
    store = tmp_path / "runs.db"
    env = model_env(fake_model)
    result = run_cli("run", "router", "route this", "--root", str(project), "--store", str(store), env=env)
    assert result.returncode == 1
    assert len(fake_model.requests) == 1  # the model was asked once, and its reply broke the SDK
    record = recorded(run_id(result.stderr), store)
    assert record["status"] == "failed" and record["finished_at"]
    assert str(record["error"]).startswith("Internal error: AssertionError")
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert result.stderr.count("Internal error: AssertionError") == 1


@pytest.mark.anyio
async def test_an_sdk_failure_over_mcp_is_a_tool_error_with_the_reason(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    fake_model.set_script([SDK_BREAKING])
    store = tmp_path / "runs.db"
    params = StdioServerParameters(
        command=SUBAGENTS[0],
        args=[*SUBAGENTS[1:], "serve", "--root", str(project), "--store", str(store)],
        env=child_env(model_env(fake_model)),
    )
    async with Client(params) as client:
        result = await client.call_tool("router", {"task": "route this"})
    assert result.is_error is True and result.structured_content is not None
    assert result.structured_content["status"] == "failed"
    assert "Internal error: AssertionError" in result.structured_content["report"]
    assert recorded(result.structured_content["run_id"], store)["status"] == "failed"


def test_a_missing_file_is_refused_before_any_model_call(fake_model: FakeMessagesServer, project: Path) -> None:
    result = run_cli(
        "run", "security-reviewer", "Review", "--file", "src/nope.py", "--root", str(project), env=model_env(fake_model)
    )
    assert result.returncode == 2 and fake_model.requests == []
    assert result.stderr == (
        f"subagents: --file src/nope.py: no such file in {project}. Give a path relative to the project root "
        "(--root), or check the spelling.\n"
    )


def test_no_key_is_said_once_to_the_shell(project: Path) -> None:
    result = run_cli("run", "router", "route this", "--root", str(project), "-q")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.count("ANTHROPIC_API_KEY") == 1 and "export ANTHROPIC_API_KEY=" in result.stderr
    assert "server's environment" not in result.stderr and "subagents demo" in result.stderr


def test_run_prints_progress_lines_when_stderr_is_not_a_terminal(fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script(demo_responder)
    result = run_cli("run", "security-reviewer", "Review src/app.py", "--root", str(project), env=model_env(fake_model))
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("subagents: security-reviewer · ")]
    assert 'subagents: security-reviewer · turn 1/20: Read "src/app.py" · ' in "\n".join(lines)
    assert all(re.search(r" · \$\d\.\d{4} · \d+\.\d s$", line) for line in lines[1:]), lines
    quiet = run_cli("run", "router", "x", "-q", "--root", str(project), env=model_env(fake_model))
    assert "turn 1/" not in quiet.stderr


def test_the_progress_line_names_turn_tool_tokens_cost_and_time() -> None:
    usage = Usage(input_tokens=1000, cache_read_input_tokens=204, output_tokens=88)
    event = RunEvent(
        kind="tool_call", turn=2, max_turns=20, message='turn 2/20: Read "a.py"', usage=usage, cost_usd=0.0031
    )
    assert describe("security-reviewer", event, 4.23) == (
        'security-reviewer · turn 2/20: Read "a.py" · 1,204 in / 88 out tokens · $0.0031 · 4.2 s'
    )


# --- agents ---


def test_agents_show_gives_the_agents_own_limits(tmp_path: Path) -> None:
    write_agent(
        tmp_path / ".claude" / "agents",
        "a.md",
        "name: capped\ndescription: d\nmaxTurns: 7\n"
        "subagents: {timeout: 60, max_cost_usd: 0.25, fallback_model: haiku}",
    )
    result = run_cli("agents", "show", "capped", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for line in (
        "max turns:   7 (agent)",
        "max tokens:  8192 a turn (server)",
        "timeout:     60 s (agent)",
        "output cap:  none",
        "cost cap:    $0.25 a run (agent)",
        "fallback:    claude-haiku-5-5 (agent)",
    ):
        assert line in result.stdout.splitlines(), result.stdout


def test_agents_commands_do_not_offer_the_run_flags() -> None:
    listing = run_cli("agents", "list", "--help").stdout
    assert "--agents-dir" in listing and "--store" not in listing and "--daily-budget" not in listing
    assert "--max-cost" in run_cli("run", "--help").stdout


# --- serve ---


def test_port_without_http_is_refused_with_the_fix() -> None:
    result = run_cli("serve", "--port", "9000")
    assert result.returncode == 2
    assert (
        "--port only apply to HTTP" in result.stderr and "subagents serve --transport http --port 9000" in result.stderr
    )


def test_a_port_in_use_is_one_sentence(project: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--transport", "http", "--port", str(port), "--root", str(project))
    assert result.returncode == 2
    assert result.stderr == (
        f"subagents: Port {port} on 127.0.0.1 is already in use (another `subagents serve`?). Stop that process, "
        "or pick a free port with --port N.\n"
    )


def test_http_says_where_it_listens(project: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [*SUBAGENTS, "serve", "--transport", "http", "--port", str(port), "--root", str(project)],
        env=child_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
        assert line == (
            f"subagents serve: listening on http://127.0.0.1:{port}/mcp (Streamable HTTP, no token: this machine "
            "only). Stop it with Ctrl-C.\n"
        )
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # listening when it says so
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.stdout is not None and proc.stdout.read() == ""


def test_stdio_in_a_terminal_says_what_it_is_and_ctrl_c_stops_it_at_once(project: Path) -> None:
    main, terminal = pty.openpty()
    proc = subprocess.Popen(
        [*SUBAGENTS, "serve", "-v", "--root", str(project)],
        env=child_env(),
        stdin=terminal,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    os.close(terminal)
    try:
        assert proc.stderr is not None
        banner = next(line for line in iter(proc.stderr.readline, "") if line.startswith("subagents serve:"))
        assert "an MCP server on stdio with 4 agents" in banner and "Ctrl-C" in banner
        assert "subagents install claude-code" in banner
        os.write(main, (json.dumps(INITIALIZE) + "\n").encode())  # typed at the terminal, as a client would
        assert proc.stdout is not None and json.loads(proc.stdout.readline())["id"] == 1  # serving
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        assert "stopping (no run was going)" in proc.stderr.read()
        assert proc.stdout.read() == ""  # nothing but JSON-RPC on stdout
    finally:
        os.close(main)
        proc.kill()


# --- doctor ---


def test_doctor_without_a_key_fails_and_says_what_to_set(project: Path) -> None:
    result = run_cli("doctor", "--root", str(project))
    assert result.returncode == 1
    assert "FAIL  model: no key" in result.stdout and "fix: export ANTHROPIC_API_KEY=sk-ant-..." in result.stdout


def test_doctor_is_green_with_the_fake_and_checks_it_live(fake_model: FakeMessagesServer, project: Path) -> None:
    fake_model.set_script([text("OK")])
    result = run_cli("doctor", "--live", "--root", str(project), env=model_env(fake_model))
    assert result.returncode == 0, result.stdout
    assert "FAIL" not in result.stdout and result.stdout.rstrip().endswith("all is well; 0 warnings.")
    assert "ok    live request: claude-haiku-5-5 answered" in result.stdout
    [ping] = fake_model.requests
    assert ping.body["max_tokens"] == 1


def test_doctor_names_a_client_config_that_cannot_start(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    agents = write_agent(tmp_path / "agents", "old.md", "name: old\ndescription: d\nsubagents: {temperature: 0.2}")
    (project / ".mcp.json").write_text(json.dumps({"mcpServers": {"subagents": {"command": "subagents"}}}))
    env = model_env(fake_model) | {"PATH": "/usr/bin:/bin"}
    result = run_cli("doctor", "--root", str(project), "--agents-dir", str(agents.parent), cwd=project, env=env)
    assert result.returncode == 1
    assert "FAIL  clients: Claude Code (project scope)" in result.stdout
    assert "a client started without your venv cannot find it" in result.stdout
    assert "fix: subagents install claude-code --scope project (writes an absolute path)" in result.stdout
    assert f"warn  agents: {agents}: 'subagents.temperature' is not honoured and is dropped" in result.stdout


# --- demo ---


def test_demo_finds_the_planted_bug_for_free_and_apart_from_the_history(tmp_path: Path) -> None:
    result = run_cli("demo", "-q", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert '"title": "SQL injection in find_user"' in result.stdout and '"severity": "high"' in result.stdout
    assert '"location": "shop/users.py:13"' in result.stdout
    assert "[security-reviewer · subagents-demo · completed · 3 turns · " in result.stderr
    assert " · $0.0000 · " in result.stderr
    data = Path(os.environ["XDG_DATA_HOME"]) / "subagents"
    assert not (data / "runs.db").exists()  # the real history is untouched
    listed = run_cli("runs", "list", "--json", "--store", str(data / "demo-runs.db"))
    [run] = json.loads(listed.stdout)
    assert run["agent"] == "security-reviewer" and run["cost_usd"] == 0 and run["model"] == "subagents-demo"


def test_demo_test_writer_returns_tests_that_pass_and_pin_the_bug(tmp_path: Path) -> None:
    result = run_cli("demo", "test-writer", "-q", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "### Test files\n- `tests/test_users_demo.py` (created)" in result.stdout
    diff = result.stdout[result.stdout.index("diff --git") : result.stdout.index("\nThat was the offline demo")]
    sample = tmp_path / "shop"
    shutil.copytree(Path(__file__).resolve().parents[2] / "server" / "subagents" / "demo_project", sample)
    applied = subprocess.run(["git", "apply", "-"], input=diff + "\n", cwd=sample, text=True, capture_output=True)
    assert applied.returncode == 0, applied.stderr
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_users_demo.py"],
        cwd=sample,
        capture_output=True,
        text=True,
        env=child_env({"PYTHONPATH": str(sample)}),
    )
    assert "2 passed, 1 xfailed" in tests.stdout, tests.stdout + tests.stderr


@pytest.mark.parametrize(
    ("agent", "shape"),
    [("router", '"route": "security-reviewer"'), ("debate-judge", '"verdict": "B"')],
)
def test_demo_answers_in_the_agents_own_shape(agent: str, shape: str, tmp_path: Path) -> None:
    result = run_cli("demo", agent, "-q", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    assert shape in result.stdout
