"""`subagents install`: what it writes into client configs, byte for byte where it matters."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from tests.helpers import run_cli

OTHER = {"type": "stdio", "command": "/opt/other/bin/server", "args": ["--x"]}


def home() -> Path:
    return Path(os.environ["HOME"])


def this_subagents() -> str:
    return str(Path(sys.executable).parent / "subagents")


def test_local_scope_merges_keeps_other_servers_and_backs_up(tmp_path: Path) -> None:
    state = {"userID": "u1", "projects": {str(tmp_path): {"mcpServers": {"other": OTHER}, "allowedTools": ["Read"]}}}
    state_file = home() / ".claude.json"
    state_file.write_text(json.dumps(state))
    state_file.chmod(0o600)
    before = state_file.read_bytes()

    result = run_cli("install", "claude-code", "--project", str(tmp_path), "--", "--agents-dir", "/srv/agents")
    assert result.returncode == 0, result.stderr
    after = json.loads(state_file.read_text())
    project = after["projects"][str(tmp_path)]
    assert project["mcpServers"]["other"] == OTHER and project["allowedTools"] == ["Read"] and after["userID"] == "u1"
    assert project["mcpServers"]["subagents"] == {
        "type": "stdio",
        "command": this_subagents(),
        "args": ["serve", "--agents-dir", "/srv/agents"],
        "alwaysLoad": True,
    }
    assert state_file.stat().st_mode & 0o777 == 0o600
    [backup] = home().glob(".claude.json.subagents-backup-*")
    assert backup.read_bytes() == before

    again = run_cli("install", "claude-code", "--project", str(tmp_path), "--", "--agents-dir", "/srv/agents")
    assert "already up to date, left as it was" in again.stdout
    assert len(list(home().glob(".claude.json.subagents-backup-*"))) == 1


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    result = run_cli("install", "claude-code", "--scope", "user", "--dry-run", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Dry run: nothing was written." in result.stdout and f'"command": "{this_subagents()}"' in result.stdout
    assert not (home() / ".claude.json").exists()


def test_user_scope_and_uvx(tmp_path: Path) -> None:
    result = run_cli("install", "claude-code", "--scope", "user", "--uvx", "--from", "subagents==0.1.0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    entry = json.loads((home() / ".claude.json").read_text())["mcpServers"]["subagents"]
    assert Path(entry["command"]).name == "uvx"
    assert entry["args"] == ["--from", "subagents==0.1.0", "subagents", "serve"]


def test_project_scope_writes_mcp_json_and_the_users_approval(tmp_path: Path) -> None:
    (tmp_path / ".claude").mkdir()
    (tmp_path / ".claude" / "settings.local.json").write_text('{"enabledMcpjsonServers": ["github"], "x": 1}')
    result = run_cli("install", "claude-code", "--scope", "project", "--project", str(tmp_path))
    assert result.returncode == 0, result.stderr
    servers = json.loads((tmp_path / ".mcp.json").read_text())["mcpServers"]
    assert list(servers) == ["subagents"] and servers["subagents"]["command"] == this_subagents()
    local = json.loads((tmp_path / ".claude" / "settings.local.json").read_text())
    assert local == {"enabledMcpjsonServers": ["github", "subagents"], "x": 1}
    assert "has not been told to trust" in result.stderr


def test_a_broken_config_is_left_alone_with_the_reason(tmp_path: Path) -> None:
    state_file = home() / ".claude.json"
    state_file.write_text('{"projects": ')
    result = run_cli("install", "claude-code", "--project", str(tmp_path))
    assert result.returncode == 2 and state_file.read_text() == '{"projects": '
    assert result.stderr.startswith(f"subagents: {state_file} is not valid JSON (line 1, column 14")
    assert "Nothing was changed." in result.stderr


def test_claude_desktop_fills_the_template(tmp_path: Path) -> None:
    config = tmp_path / "Claude" / "claude_desktop_config.json"
    config.parent.mkdir()
    config.write_text(json.dumps({"mcpServers": {"other": OTHER}, "globalShortcut": "Ctrl+Space"}))
    result = run_cli(
        "install", "claude-desktop", "--config", str(config), "--root", str(tmp_path), "--env", "ANTHROPIC_API_KEY=k"
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(config.read_text())
    assert data["globalShortcut"] == "Ctrl+Space" and data["mcpServers"]["other"] == OTHER
    assert data["mcpServers"]["subagents"] == {
        "command": this_subagents(),
        "args": ["serve", "--root", str(tmp_path)],
        "env": {"ANTHROPIC_API_KEY": "k"},  # the template's placeholder key is never written
    }
    assert "Quit Claude Desktop fully" in result.stderr
