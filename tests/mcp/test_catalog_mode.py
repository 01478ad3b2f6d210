"""Catalog mode: a large catalog is one `delegate` tool and a `list_agents` search, so tools/list stays small."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from subagents.app import Subagents
from subagents.config import Settings
from subagents.errors import ConfigError
from subagents.mcp.agent_tools import INPUT_SCHEMA
from subagents.mcp.catalog_tools import CATALOG_THRESHOLD
from subagents.mcp.server import CATALOG_INSTRUCTIONS, INSTRUCTIONS, build_server
from subagents.providers.testing import FakeMessagesServer, text
from tests.conftest import make_app, write_agent

pytestmark = pytest.mark.anyio
both_eras = pytest.mark.parametrize("mode", ["legacy", "auto"])
RUN_TOOLS = {"start_agent", "get_run", "cancel_run", "continue_run", "fan_out"}  # and the default pattern


def catalog(folder: Path, count: int) -> Path:
    for i in range(count):
        topic = "SQL injection" if i == 17 else f"module {i}"
        write_agent(
            folder,
            f"agent-{i:03d}.md",
            f"name: agent-{i:03d}\ndescription: Reviews {topic} for correctness and risk; use after changing it.\n"
            "tools: Read, Grep, Glob",
            body=f"You review {topic}.",
        )
    return folder


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return catalog(tmp_path_factory.mktemp("agents-200"), 200)


def listing_bytes(tools: list) -> int:  # type: ignore[type-arg]
    return len(json.dumps([t.model_dump(mode="json", by_alias=True, exclude_none=True) for t in tools]))


@both_eras
async def test_a_200_agent_catalog_serves_a_small_tools_list(mode: str, project: Path, big: Path) -> None:
    server = build_server(make_app(None, project, agents_dir=big, bundled=False))
    async with Client(server, mode=mode) as client:
        tools = (await client.list_tools()).tools
        prompts = (await client.list_prompts()).prompts
    assert {t.name for t in tools} == {"delegate", "list_agents"} | RUN_TOOLS
    assert listing_bytes(tools) < 8000 * 4, listing_bytes(tools)  # under 8k tokens at 4 bytes a token
    assert all(len(t.description or "") < 2048 for t in tools)  # clients cut descriptions at 2 KB
    delegate = next(t for t in tools if t.name == "delegate")
    assert "200 specialist agents" in (delegate.description or "")
    assert "agent-000, agent-001" in (delegate.description or "") and "more (list_agents finds them)" in (
        delegate.description or ""
    )
    assert delegate.input_schema["required"] == ["agent", "task"]
    assert [p.name for p in prompts] == ["delegate"]  # one prompt, not 200 slash commands
    assert server.instructions == CATALOG_INSTRUCTIONS


@pytest.mark.parametrize(("count", "catalog_mode"), [(CATALOG_THRESHOLD, False), (CATALOG_THRESHOLD + 1, True)])
async def test_auto_mode_switches_past_the_threshold(
    project: Path, tmp_path: Path, count: int, catalog_mode: bool
) -> None:
    server = build_server(make_app(None, project, agents_dir=catalog(tmp_path / "a", count), bundled=False))
    async with Client(server) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    server_tools = len(RUN_TOOLS)
    assert ("delegate" in names) is catalog_mode and len(names) == (2 if catalog_mode else count) + server_tools
    assert server.instructions == (CATALOG_INSTRUCTIONS if catalog_mode else INSTRUCTIONS)


async def test_per_agent_mode_on_a_large_catalog_shares_one_schema(project: Path, big: Path) -> None:
    server = build_server(make_app(None, project, agents_dir=big, bundled=False, catalog_mode="off"))
    async with Client(server) as client:
        tools = [t for t in (await client.list_tools()).tools if t.name not in RUN_TOOLS]
        prompts = (await client.list_prompts()).prompts
    assert len(tools) == 200 and all(t.input_schema == INPUT_SCHEMA for t in tools)
    assert len(prompts) == 200
    assert tools[17].description == "Reviews SQL injection for correctness and risk; use after changing it."


async def test_small_catalogs_can_be_put_in_catalog_mode(project: Path) -> None:
    server = build_server(make_app(None, project, catalog_mode="on"))
    async with Client(server) as client:
        names = {t.name for t in (await client.list_tools()).tools}
    assert names == {"delegate", "list_agents"} | RUN_TOOLS


@both_eras
async def test_list_agents_finds_by_topic_and_stays_bounded(mode: str, project: Path, big: Path) -> None:
    async with Client(build_server(make_app(None, project, agents_dir=big, bundled=False)), mode=mode) as client:
        found = (await client.call_tool("list_agents", {"query": "SQL injection"})).structured_content
        everything = (await client.call_tool("list_agents", {})).structured_content
        capped = (await client.call_tool("list_agents", {"query": "module", "limit": 5})).structured_content
        nothing = (await client.call_tool("list_agents", {"query": "kubernetes"})).structured_content
        too_many = await client.call_tool("list_agents", {"limit": 500})
    assert found and found["agents"][0] == {
        "name": "agent-017",
        "description": "Reviews SQL injection for correctness and risk; use after changing it.",
        "read_only": True,
    }
    assert everything and len(everything["agents"]) == 20 and everything["matches"] == 200
    assert "180 more match" in everything["more"]
    assert capped and [a["name"] for a in capped["agents"]] == [
        "agent-000",
        "agent-001",
        "agent-002",
        "agent-003",
        "agent-004",
    ]
    assert nothing and nothing["agents"] == [] and "No agent matches" in nothing["hint"]
    assert too_many.is_error is True


@both_eras
async def test_delegate_runs_the_named_agent(
    mode: str, fake_model: FakeMessagesServer, project: Path, big: Path
) -> None:
    fake_model.set_script([text("No injection found.")])
    async with (
        make_app(fake_model, project, agents_dir=big, bundled=False) as app,
        Client(build_server(app), mode=mode) as client,
    ):
        result = await client.call_tool("delegate", {"agent": "agent-017", "task": "Review src/app.py"})
        typo = await client.call_tool("delegate", {"agent": "agent-017x", "task": "Review"})
    assert result.structured_content and result.structured_content["agent"] == "agent-017"
    assert result.structured_content["report"] == "No injection found."
    assert fake_model.requests[0].system_text == "You review SQL injection."
    assert typo.is_error is True and len(fake_model.requests) == 1
    assert "No agent named 'agent-017x'. Close names: agent-017," in typo.content[0].text  # type: ignore[union-attr]


def test_agents_serves_a_subset_by_name_and_glob(project: Path, tmp_path: Path) -> None:
    folder = catalog(tmp_path / "a", 30)
    settings = Settings(
        agents_dirs=(folder,), bundled=False, store_enabled=False, project_dir=project, roots=(project,)
    )
    app = Subagents.build(settings.model_copy(update={"agents_filter": ("agent-00*", "agent-017")}))
    assert sorted(app.catalog.agents) == [f"agent-{i:03d}" for i in range(10)] + ["agent-017"]
    with pytest.raises(ConfigError, match="--agents names 'agent-999', which is not a loaded agent"):
        Subagents.build(settings.model_copy(update={"agents_filter": ("agent-999",)}))


@both_eras
async def test_agents_named_like_the_catalog_tools_are_renamed_and_ours_stay_ours(
    mode: str, fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    """`delegate` and `list_agents` are reserved as the run and pattern tools are: an agent file of that name
    is served under another, listed as such, and delegating to it runs that file."""
    folder = tmp_path / "agents"
    write_agent(folder, "d.md", "name: delegate\ndescription: Claims the delegate tool.", "You are the impostor.")
    write_agent(folder, "l.md", "name: list_agents\ndescription: Claims the list tool.", "You list.")
    fake_model.set_script([text("done")])
    app = make_app(fake_model, project, agents_dir=folder, bundled=False, catalog_mode="on")
    async with app, Client(build_server(app), mode=mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        listed = (await client.call_tool("list_agents", {})).structured_content
        assert listed is not None
        names = [a["name"] for a in listed["agents"]]
        result = await client.call_tool("delegate", {"agent": names[0], "task": "x"})
    assert set(tools) == {"delegate", "list_agents"} | RUN_TOOLS
    assert "specialist agents" in (tools["delegate"].description or "")  # ours, not the file's
    assert len(names) == 2 and all(n.startswith(("delegate-", "list_agents-")) for n in names)
    assert result.is_error is False and fake_model.requests[0].system_text in ("You are the impostor.", "You list.")
