"""The confinement of Claude Code's tools (no CLI needed): which tools a session gets, what each call may touch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from subagents.config import Settings
from subagents.definitions.loader import parse_agent
from subagents.grants import grant_tools
from subagents.loop import RunLimits
from subagents.providers.claude_code.options import ClaudeCodeSettings
from subagents.providers.claude_code.policy import ToolPolicy, permission_rules, session_tools
from subagents.providers.claude_code.runner import ClaudeCodeBackend
from subagents.tools.sandbox import Sandbox


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "src").mkdir(parents=True)
    (root / "src" / "app.py").write_text("x = 1\n")
    (root / ".env").write_text("TOKEN=1\n")
    (tmp_path / "outside.txt").write_text("secret\n")
    os.symlink(tmp_path / "outside.txt", root / "src" / "link.txt")
    return root


@pytest.fixture
def policy(root: Path) -> ToolPolicy:
    return ToolPolicy(Sandbox((root,)), ["Read", "Grep", "Glob", "Write", "Edit"])


def test_agent_tools_map_to_claude_code_tools() -> None:
    tools = session_tools(["Read", "Grep", "Glob", "LS", "Write", "MultiEdit", "Bash", "WebFetch"], writes=True)
    assert tools.tools == ("Read", "Grep", "Glob", "Write", "Edit")
    assert [reason.split(":")[0] for reason in tools.left_out] == ["Bash", "WebFetch"]
    assert "bubblewrap" in tools.left_out[0]
    read_only = session_tools(["Read", "Write", "Edit"], writes=False)
    assert read_only.tools == ("Read",) and len(read_only.left_out) == 2


def test_agents_show_and_validate_report_what_the_session_is_configured_with(root: Path) -> None:
    """grants.py's Claude Code grant and the session's config come from one mapping, so they cannot drift."""
    text = "---\nname: a\ndescription: d\ntools: Read, LS, Grep, Write, MultiEdit, Bash, TodoWrite\n---\nBody.\n"
    spec, _ = parse_agent(text, path=Path("a.md"))
    grant = grant_tools(spec, Settings(), backend="claude-code")
    config = ClaudeCodeBackend(ClaudeCodeSettings()).config_for(spec, "m", RunLimits(), (root,), writes=grant.writes)
    as_run = dict(grant.runs_as)
    assert config.tools == tuple(dict.fromkeys(as_run.get(t, t) for t in grant.tools))
    assert config.tools == ("Read", "Glob", "Grep", "Write", "Edit")
    assert [lack.name for lack in grant.lacking] == ["Bash", "TodoWrite"]


def test_a_session_is_told_its_runs_delegation_depth(root: Path) -> None:
    """A subagents server started inside the session counts on from the run's depth (SUBAGENTS_DELEGATION_DEPTH)."""
    spec, _ = parse_agent("---\nname: a\ndescription: d\ntools: Read\n---\nBody.\n", path=Path("a.md"))
    backend = ClaudeCodeBackend(ClaudeCodeSettings())
    config = backend.config_for(spec, "m", RunLimits(), (root,), writes=False, depth=2)
    assert config.environment()["SUBAGENTS_DELEGATION_DEPTH"] == "2"
    assert config != backend.config_for(spec, "m", RunLimits(), (root,), writes=False)  # a pool key of its own


@pytest.mark.parametrize(
    ("tool", "args"),
    [
        ("Read", {"file_path": "src/app.py"}),
        ("Read", {"file_path": "{root}/src/app.py"}),
        ("Grep", {"pattern": "x"}),
        ("Grep", {"pattern": "x", "path": "src", "glob": "*.py"}),
        ("Glob", {"pattern": "**/*.py", "path": "{root}"}),
        ("Write", {"file_path": "src/new/module.py", "content": "y = 2\n"}),
        ("Edit", {"file_path": "src/app.py", "old_string": "1", "new_string": "2"}),
    ],
)
def test_calls_inside_the_root_pass(policy: ToolPolicy, root: Path, tool: str, args: dict[str, str]) -> None:
    args = {k: v.replace("{root}", str(root)) for k, v in args.items()}
    assert policy.check(tool, args) is None


@pytest.mark.parametrize(
    ("tool", "args", "reason"),
    [
        ("Read", {"file_path": "{tmp}/outside.txt"}, "outside the allowed roots"),
        ("Read", {"file_path": "src/link.txt"}, "outside the allowed roots"),  # a link out of the root
        ("Read", {"file_path": "../outside.txt"}, "outside the allowed roots"),
        ("Read", {"file_path": ".env"}, "deny-list"),
        ("Read", {"file_path": "/proc/self/environ"}, "system filesystem"),
        ("Grep", {"pattern": "x", "path": "/etc"}, "outside the allowed roots"),
        ("Grep", {"pattern": "x", "glob": "/etc/**"}, "reaches outside"),
        ("Glob", {"pattern": "../*"}, "reaches outside"),
        ("Glob", {"pattern": "/etc/*"}, "reaches outside"),
        ("Glob", {"pattern": "~/.ssh/*"}, "reaches outside"),
        ("Write", {"file_path": "{tmp}/planted.py", "content": ""}, "outside the allowed roots"),
        ("Write", {"file_path": ".git/hooks/pre-commit", "content": ""}, "deny-list"),
        ("Edit", {"file_path": ".env", "old_string": "1", "new_string": "2"}, "deny-list"),
        ("Read", {"file_path": 7}, "must be a path"),
        ("Bash", {"command": "cat /etc/passwd"}, "not available to this agent"),
        ("WebFetch", {"url": "http://example.com"}, "not available to this agent"),
    ],
)
def test_calls_that_leave_the_root_are_refused(
    policy: ToolPolicy, root: Path, tool: str, args: dict[str, object], reason: str
) -> None:
    args = {k: v.replace("{tmp}", str(root.parent)) if isinstance(v, str) else v for k, v in args.items()}
    refusal = policy.check(tool, args)
    assert refusal is not None and reason in refusal


def test_a_read_only_policy_refuses_writes(root: Path) -> None:
    policy = ToolPolicy(Sandbox((root,)), ["Read"])
    refusal = policy.check("Write", {"file_path": "src/x.py", "content": ""})
    assert refusal is not None and "not available" in refusal


def test_secret_rules_cover_every_root_whatever_the_case(tmp_path: Path) -> None:
    rules = permission_rules([Path("/work/a"), Path("/work/b")], [".env", ".git/**"])
    assert "Read(**/.[eE][nN][vV])" in rules and "Edit(**/.[eE][nN][vV])" in rules
    assert "Read(//work/b/**/.[eE][nN][vV])" in rules
    # A denied directory: its contents and the directory itself.
    assert "Read(//work/a/**/.[gG][iI][tT]/**)" in rules and "Read(//work/a/**/.[gG][iI][tT])" in rules
