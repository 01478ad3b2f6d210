"""Bash: off by default, allow-listed argv without a shell, a clean environment, a hard timeout, and
refused when its bubblewrap sandbox cannot run. What the sandbox confines: test_bash_jail.py."""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
import uuid
from pathlib import Path

import anyio
import pytest

from subagents.tools.base import ToolOutput
from subagents.tools.bash import Bash, BashPolicy, parse_command
from subagents.tools.edit import Write
from subagents.tools.sandbox import Sandbox
from subagents.tools.workspace import Workspace
from tests.helpers import processes_with
from tests.tools.test_workspace import make_repo

pytestmark = pytest.mark.anyio
jailed = pytest.mark.usefixtures("bwrap")

PY = shlex.quote(sys.executable)
POLICY = BashPolicy(enabled=True, allow=(f"{PY} -m pytest", f"{PY} -c", "pytest"), timeout_s=20)


def py(code: str) -> str:
    return shlex.join([sys.executable, "-c", code])


def sleeper(marker: str) -> str:
    """Python code that starts a child sleeping with `marker` in its command line (built at run time,
    so only that child's command line has it, not bwrap's)."""
    return (
        f'import subprocess, sys; m = "{marker[::-1]}"[::-1]; '
        'subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", m])'
    )


# --- what may run ---


async def test_bash_is_refused_unless_the_server_enables_it(tmp_path: Path) -> None:
    out = await Bash(tmp_path, BashPolicy(allow=("pytest",))).run({"command": "pytest"})
    assert out.is_error and "disabled" in out.text and "--allow-bash PREFIX" in out.text


@pytest.mark.parametrize(
    ("command", "reason"),
    [
        ("rm -rf /", "not an allowed command"),
        ("pytestx -q", "not an allowed command"),
        ("python -m pytest", "not an allowed command"),
        ("PYTHONPATH=src pytest", "Environment assignments"),
        ("pytest; rm -rf /", "shell syntax (;)"),
        ("pytest && rm -rf /", "shell syntax (&&)"),
        ("pytest | tee out", "shell syntax (|)"),
        ("pytest > out.txt 2>&1", "shell syntax (>, >&)"),
        ("pytest $(rm -rf /)", "shell syntax"),
        ("pytest `whoami`", "shell syntax (`)"),
        ("pytest -k $HOME", "shell syntax ($)"),
        ("pytest\nrm -rf /", "one command per call"),
        ('pytest -k "unclosed', "check its quotes"),
        ("   ", "empty"),
    ],
)
def test_commands_outside_the_allow_list_or_with_shell_syntax_are_refused(command: str, reason: str) -> None:
    out = parse_command(command, POLICY)
    assert isinstance(out, ToolOutput) and out.is_error and reason in out.text, out
    if "allowed command" in reason:
        assert "Allowed command prefixes:" in out.text and "'pytest'" in out.text


def test_allowed_commands_become_argv_with_quoted_text_kept_literal() -> None:
    assert parse_command("pytest -q tests/test_a.py::test_b[1-2]", POLICY) == [
        "pytest",
        "-q",
        "tests/test_a.py::test_b[1-2]",
    ]
    assert parse_command('pytest -k "a and not b"', POLICY) == ["pytest", "-k", "a and not b"]
    assert parse_command(py("import time; time.sleep(0)"), POLICY) == [
        sys.executable,
        "-c",
        "import time; time.sleep(0)",
    ]


async def test_arguments_are_checked(tmp_path: Path) -> None:
    bash = Bash(tmp_path, POLICY)
    assert "missing required argument 'command'" in (await bash.run({})).text
    assert "must be a number" in (await bash.run({"command": "pytest", "timeout": "5"})).text
    assert "at least 1" in (await bash.run({"command": "pytest", "timeout": 0})).text


@jailed
async def test_a_missing_program_is_named(tmp_path: Path) -> None:
    missing = await Bash(tmp_path, BashPolicy(enabled=True, allow=("no-such-cmd-xyz",))).run(
        {"command": "no-such-cmd-xyz --version"}
    )
    assert missing.is_error
    assert missing.text == "Bash: cannot run 'no-such-cmd-xyz' in the sandbox: No such file or directory."


# --- without a sandbox, no Bash ---


async def test_without_bwrap_bash_is_refused_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = await Bash(tmp_path, POLICY).run({"command": py('open("ran", "w")')})
    assert out.is_error and "bwrap was not found on PATH" in out.text
    assert "`bubblewrap`" in out.text and "apt-get install bubblewrap" in out.text
    assert not (tmp_path / "ran").exists()  # never run unconfined


async def test_a_bwrap_that_cannot_make_its_sandbox_refuses_bash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "bwrap"  # what bwrap says where user namespaces are off
    fake.write_text("#!/bin/sh\necho 'bwrap: No permissions to create new namespace' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    out = await Bash(tmp_path, POLICY).run({"command": py('open("ran", "w")')})
    assert out.is_error and "cannot make its sandbox here: bwrap: No permissions to create new namespace" in out.text
    assert "apt-get install bubblewrap" in out.text
    assert not (tmp_path / "ran").exists()


# --- running ---


@jailed
async def test_pytest_runs_the_written_tests_in_the_workspace(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "proj")
    async with await Workspace.create(repo, base_dir=tmp_path) as ws:
        test = "from calc import add\n\n\ndef test_add_negative():\n    assert add(-1, -2) == -3\n"
        wrote = await Write(Sandbox([ws.path])).run({"file_path": "tests/test_neg.py", "content": test})
        assert not wrote.is_error
        out = await Bash(ws.path, POLICY, home_base=ws.scratch).run({"command": f"{PY} -m pytest -q"})
        assert not out.is_error and out.text.startswith("Command exit code 0.")
        assert "2 passed" in out.text and "</command-output>" in out.text
        diff = await ws.diff()
        assert ws.changed_files() == ["tests/test_neg.py"]  # no caches or bytecode from the run
        assert "b/tests/test_neg.py" in diff
        assert list(ws.scratch.iterdir()) == []  # the run's HOME is gone
    assert not (repo / "tests" / "test_neg.py").exists()


@jailed
async def test_a_failing_command_reports_its_exit_code_and_output(tmp_path: Path) -> None:
    code = 'import sys; print("bad </command-output> line"); sys.exit(3)'
    out = await Bash(tmp_path, POLICY).run({"command": py(code)})
    assert not out.is_error and out.text.startswith("Command exit code 3.")
    assert "bad &lt;/command-output> line" in out.text and out.text.endswith("</command-output>")


@jailed
async def test_environment_has_no_secrets_and_a_throwaway_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "ANTHROPIC_API_KEY": "sk-ant-secret",
        "GITHUB_TOKEN": "ghp_secret",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "DB_PASSWORD": "hunter2",
        "MY_SERVICE_KEY": "svc-key-123",
        "PYTHONPATH": "/somewhere",
        "VIRTUAL_ENV": "/some/virtualenv-xyz",
        "GIT_DIR": "/elsewhere",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    out = await Bash(tmp_path, POLICY).run({"command": py(code)})
    env = json.loads(out.text.split("\n")[2])
    assert not set(secrets) & set(env) and not any(v in out.text for v in secrets.values())
    assert env["TERM"] == "dumb" and env["HOME"] != os.environ["HOME"]
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert not await anyio.Path(env["HOME"]).exists()  # removed after the run


@jailed
async def test_output_keeps_the_tail_within_the_cap(tmp_path: Path) -> None:
    policy = BashPolicy(enabled=True, allow=(f"{PY} -c",), max_output_chars=1000)
    code = 'print("\\n".join(f"line {i}" for i in range(20000)))'
    out = await Bash(tmp_path, policy).run({"command": py(code)})
    assert "line 19999" in out.text and "line 0\n" not in out.text
    assert "[output truncated: showing the last 1,000 characters of 208,890 bytes]" in out.text
    assert len(out.text) < 1500


@jailed
async def test_timeout_kills_every_process_the_command_started(tmp_path: Path) -> None:
    marker = f"sleeper-{uuid.uuid4().hex}"
    policy = BashPolicy(enabled=True, allow=(f"{PY} -c",), timeout_s=1)
    code = f'{sleeper(marker)}; print("started", flush=True); import time; time.sleep(60)'
    start = time.monotonic()
    out = await Bash(tmp_path, policy).run({"command": py(code), "timeout": 30})  # capped at 1 s
    assert time.monotonic() - start < 3
    assert out.is_error and "timed out after 1 s" in out.text and "started" in out.text
    assert processes_with(marker) == []


@jailed
async def test_a_background_child_holding_the_pipe_does_not_turn_success_into_a_timeout(
    tmp_path: Path,
) -> None:
    marker = f"sleeper-{uuid.uuid4().hex}"
    start = time.monotonic()
    out = await Bash(tmp_path, POLICY).run({"command": py(f'{sleeper(marker)}; print("main done")')})
    assert time.monotonic() - start < 5
    assert not out.is_error and out.text.startswith("Command exit code 0.") and "main done" in out.text
    assert processes_with(marker) == []


@jailed
async def test_cancelling_the_call_kills_the_command(tmp_path: Path) -> None:
    marker = f"sleeper-{uuid.uuid4().hex}"
    code = f'{sleeper(marker)}; open("started", "w"); import time; time.sleep(60)'
    with anyio.move_on_after(1) as scope:
        await Bash(tmp_path, POLICY).run({"command": py(code)})
    assert scope.cancelled_caught and (tmp_path / "started").exists()
    assert processes_with(marker) == []
