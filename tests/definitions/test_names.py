"""Agent names Claude Code takes, served under valid MCP tool names; collisions by the documented rule."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subagents.definitions.catalog import Layer, load_catalog
from subagents.definitions.names import assign_tool_names, tool_name_for
from subagents.definitions.spec import NAME_PATTERN, RESERVED_NAMES
from tests.conftest import write_agent


@pytest.mark.parametrize(
    ("name", "tool"),
    [
        ("security-reviewer", "security-reviewer"),
        ("_private", "_private"),
        ("powershell-5.1-expert", "powershell-5-1-expert"),
        ("dotnet-framework-4.8-expert", "dotnet-framework-4-8-expert"),
        ("My Agent", "My-Agent"),
        ("café-helper", "cafe-helper"),
        ("  padded  ", "padded"),
        ("a / b", "a-b"),
        ("x" * 70, "x" * 64),
        ("日本語", "agent-" + "0"),  # prefix checked below
    ],
)
def test_tool_name_for(name: str, tool: str) -> None:
    mapped = tool_name_for(name)
    if tool.startswith("agent-"):
        assert mapped.startswith("agent-") and len(mapped) == 12
    else:
        assert mapped == tool
    assert NAME_PATTERN.fullmatch(mapped)


def test_a_valid_name_keeps_it_and_the_mapped_one_gets_a_stable_suffix() -> None:
    names = assign_tool_names(["a.b", "a-b"])
    assert names["a-b"] == "a-b"
    assert names["a.b"].startswith("a-b-") and len(names["a.b"]) == len("a-b-") + 6
    assert assign_tool_names(["a-b", "a.b", "other"]) == {**names, "other": "other"}  # order does not matter


def test_two_mapped_names_that_collide_are_given_out_in_sorted_order() -> None:
    names = assign_tool_names(["a.b", "a b"])
    assert names["a b"] == "a-b" and names["a.b"].startswith("a-b-")


def test_the_servers_own_tool_names_are_taken() -> None:
    names = assign_tool_names(["get_run", "list_agents"], RESERVED_NAMES)
    assert all(tool.startswith(f"{name}-") and tool not in RESERVED_NAMES for name, tool in names.items())


def test_long_names_that_share_64_characters_stay_apart() -> None:
    a, b = "x" * 64 + "a", "x" * 64 + "b"
    names = assign_tool_names([a, b])
    assert names[a] == "x" * 64 and names[b] != names[a] and len(names[b]) == 64


@given(st.lists(st.text(min_size=1, max_size=80), max_size=12, unique=True))
def test_every_name_gets_a_unique_valid_tool_name(names: list[str]) -> None:
    tools = assign_tool_names(names, RESERVED_NAMES)
    assert set(tools) == set(names)
    assert len(set(tools.values())) == len(names)
    assert all(NAME_PATTERN.fullmatch(t) and t not in RESERVED_NAMES for t in tools.values())


def test_the_catalog_serves_mapped_names_says_so_and_finds_either_name(tmp_path: Path) -> None:
    write_agent(tmp_path, "ps.md", "name: powershell-5.1-expert\ndescription: d")
    write_agent(tmp_path, "taken.md", "name: powershell-5-1-expert\ndescription: already valid")
    catalog = load_catalog([Layer("project", tmp_path)])
    plain = catalog.agents["powershell-5-1-expert"]
    assert plain.description == "already valid" and not plain.renamed
    [mapped] = [s for s in catalog.agents.values() if s.renamed]
    assert mapped.agent_name == "powershell-5.1-expert" and mapped.name.startswith("powershell-5-1-expert-")
    assert catalog.get("powershell-5.1-expert") is mapped and catalog.get(mapped.name) is mapped
    [info] = [p for p in catalog.problems if p.level == "info"]
    assert info.path == tmp_path / "ps.md"
    assert f"served as MCP tool {mapped.name!r}" in info.message
    assert f"is taken by the agent 'powershell-5-1-expert' in {tmp_path / 'taken.md'}" in info.message
