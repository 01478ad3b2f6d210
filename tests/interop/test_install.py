"""`subagents install claude-code`, then Claude Code's own health check, from a shell without the venv.

The server entry must name this installation by absolute path: Claude Code starts it with the PATH it
was started with, and a user's shell often does not have the venv active.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
from tests.helpers import SUBAGENTS, child_env
from tests.interop.test_interop import claude_binary, run

pytestmark = pytest.mark.interop

BARE_PATH = "/usr/bin:/bin"  # no venv, no ~/.local/bin: what a fresh terminal may have


def clean_shell(home: Path) -> dict[str, str]:
    return {
        "HOME": str(home),
        "PATH": BARE_PATH,
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_AUTOUPDATER": "1",
    }


def install(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [*SUBAGENTS, "install", "claude-code", *args],
        cwd=project,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def mcp_list(binary: str, project: Path) -> str:
    # env=None in run() means child_env(); here the whole environment is the clean shell's.
    result = subprocess.run(
        [binary, "mcp", "list"],
        cwd=project,
        env=clean_shell(Path(os.environ["HOME"])),
        capture_output=True,
        text=True,
        timeout=90,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    project = tmp_path / "repo"
    (project / "src").mkdir(parents=True)
    (project / "src" / "app.py").write_text("print('hi')\n")
    assert run(["git", "init", "-q", str(project)]).returncode == 0
    return project


def test_project_scope_connects_from_a_shell_without_the_venv(repo: Path) -> None:
    binary = claude_binary()
    installed = install(repo, "--scope", "project")
    entry = json.loads((repo / ".mcp.json").read_text())["mcpServers"]["subagents"]
    assert Path(entry["command"]).is_absolute() and entry["alwaysLoad"] is True
    assert json.loads((repo / ".claude" / "settings.local.json").read_text())["enabledMcpjsonServers"] == ["subagents"]
    # Claude Code runs a project's servers only in a folder the user trusts, and install says so.
    assert "has not been told to trust" in installed.stderr
    assert re.search(r"^subagents: .+ - ⏸ Pending approval", mcp_list(binary, repo), re.M)
    # What answering Claude Code's "trust this folder?" dialog records, in the scratch HOME.
    state_file = Path(os.environ["HOME"]) / ".claude.json"
    state = json.loads(state_file.read_text())
    state.setdefault("projects", {}).setdefault(str(repo), {})["hasTrustDialogAccepted"] = True
    state_file.write_text(json.dumps(state))
    listed = mcp_list(binary, repo)
    assert re.search(rf"^subagents: {re.escape(entry['command'])} serve - ✔ Connected$", listed, re.M), listed


def test_local_scope_connects_from_a_subfolder_and_a_second_install_changes_nothing(repo: Path) -> None:
    binary = claude_binary()
    install(repo / "src", "--scope", "local")  # Claude Code files a project under its git root
    assert re.search(r"^subagents: .+ - ✔ Connected$", mcp_list(binary, repo / "src"), re.M)
    again = install(repo, "--scope", "local")
    assert "already up to date, left as it was" in again.stdout
    assert list(Path(os.environ["HOME"]).glob(".claude.json.subagents-backup-*")) == []  # nothing was rewritten
