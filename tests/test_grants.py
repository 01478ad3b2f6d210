"""grants.py: the one decision of which tools an agent gets here, what it lacks, why, and what would give it."""

from __future__ import annotations

from pathlib import Path

import pytest

from subagents.config import Settings
from subagents.definitions.loader import parse_agent
from subagents.definitions.spec import AgentSpec
from subagents.grants import Lack, grant_tools
from subagents.tools.bash import BashPolicy
from subagents.tools.web import WebPolicy

ALL_ON = Settings(bash=BashPolicy(enabled=True, allow=("pytest",)), web=WebPolicy(enabled=True))


def agent(frontmatter: str) -> AgentSpec:
    spec, _ = parse_agent(f"---\nname: a\ndescription: d\n{frontmatter}\n---\nBody.\n", path=Path("a.md"))
    return spec


def test_what_a_default_server_lacks_is_named_with_its_reason_and_fix() -> None:
    spec = agent("tools: WebFetch, Read, mcp__github__search, NotebookEdit, Bash, ExitPlanMode, MultiEdit, TodoWrite")
    grant = grant_tools(spec, Settings())
    assert grant.tools == ("Read", "MultiEdit", "TodoWrite")  # in the order the model sees them
    assert grant.lacking == (
        Lack("WebFetch", "web tools are off", "serve --web-tools"),
        Lack("mcp__github__search", "no MCP servers are connected here"),
        Lack("NotebookEdit", "notebooks are not supported here"),
        Lack("Bash", "Bash is off", "serve --allow-bash PREFIX"),
        Lack("ExitPlanMode", "no such tool here"),
    )
    assert grant.writes and not grant.refused
    assert grant.note().startswith("Unavailable here: WebFetch (web tools are off), mcp__github__search (no MCP")
    assert grant.note().endswith("ExitPlanMode (no such tool here).")


def test_the_flags_give_what_they_name() -> None:
    grant = grant_tools(agent("tools: WebSearch, Bash, Read, WebFetch, Task"), ALL_ON)
    assert grant.tools == ("Read", "Bash", "Task", "WebFetch", "WebSearch")
    assert grant.local == ("Read", "Bash", "Task") and grant.web == ("WebFetch", "WebSearch")
    assert grant.delegation == "Task" and grant.lacking == ()


def test_no_tools_field_means_every_tool_on_offer_and_nothing_to_report() -> None:
    everything = agent("model: sonnet")
    off = grant_tools(everything, Settings())
    assert off.tools == ("Read", "Grep", "Glob", "LS", "Write", "Edit", "MultiEdit", "TodoWrite", "Task")
    assert off.lacking == () and not off.refused
    on = grant_tools(everything, ALL_ON)
    assert on.tools[-4:] == ("TodoWrite", "Task", "WebFetch", "WebSearch") and "Bash" in on.tools


def test_an_agent_that_names_only_what_it_lacks_is_refused_with_the_flags_that_fix_it() -> None:
    grant = grant_tools(agent("tools: WebFetch, mcp__jira__create"), Settings())
    assert grant.tools == () and grant.refused
    message = grant.refusal("a")
    assert "WebFetch (web tools are off; serve --web-tools gives it)" in message
    assert "mcp__jira__create (no MCP servers are connected here)" in message


@pytest.mark.parametrize("frontmatter", ["tools:", "tools: ''", "tools: Read\ndisallowedTools: Read"])
def test_no_tools_on_purpose_is_not_a_refusal(frontmatter: str) -> None:
    grant = grant_tools(agent(frontmatter), Settings())
    assert grant.tools == () and grant.lacking == () and not grant.refused


def test_delegation_stops_at_the_depth_limit() -> None:
    spec = agent("tools: Read, Agent")  # Claude Code's newer name for Task
    assert grant_tools(spec, Settings(), depth=2).delegation == "Agent"
    deepest = grant_tools(spec, Settings(), depth=3)
    assert deepest.tools == ("Read",)
    assert deepest.lacking == (Lack("Agent", "the delegation depth limit of 3 is reached", "--max-depth N"),)
    assert grant_tools(spec, Settings(max_depth=5), depth=4).delegation == "Agent"


def test_a_nested_server_counts_on_from_the_depth_it_was_started_at() -> None:
    """SUBAGENTS_DELEGATION_DEPTH=2 (delegation_depth): a client's call here is depth 3, the limit."""
    spec = agent("tools: Read, Task")
    assert grant_tools(spec, Settings(delegation_depth=1)).delegation == "Task"  # depth 2
    assert grant_tools(spec, Settings(delegation_depth=2)).delegation is None  # depth 3: no deeper
    assert grant_tools(spec, Settings(delegation_depth=2, max_depth=4)).delegation == "Task"


def test_on_claude_code_the_grant_is_the_sessions_own_mapping() -> None:
    """The same grant reports what a Claude Code session gets: its tools, renamed ones, and what it lacks."""
    spec = agent("tools: Read, LS, MultiEdit, Bash, TodoWrite, WebFetch, Task")
    grant = grant_tools(spec, ALL_ON, backend="claude-code")
    assert grant.backend == "claude-code" and grant.tools == ("Read", "LS", "MultiEdit")
    assert grant.shown() == "Read, LS (as Glob), MultiEdit (as Edit)"
    assert [lack.name for lack in grant.lacking] == ["Bash", "TodoWrite", "WebFetch", "Task"]
    assert "outside this server's bubblewrap sandbox" in grant.lacking[0].reason
    planning = agent("tools: Read, Edit\npermissionMode: plan")
    assert grant_tools(planning, Settings(), backend="claude-code").lacking == (
        Lack("Edit", "on Claude Code: the agent runs read-only"),
    )
    only_bash = grant_tools(agent("tools: Bash"), ALL_ON, backend="claude-code")
    assert only_bash.refused and "Bash" in only_bash.refusal("a")


def test_denying_either_delegation_name_denies_both() -> None:
    assert grant_tools(agent("disallowedTools: Agent"), Settings()).delegation is None
    assert grant_tools(agent("tools: Task, Read\ndisallowedTools: Agent"), Settings()).tools == ("Read",)
