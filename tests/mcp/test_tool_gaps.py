"""Tools an agent names but this server lacks: the client is told in the tool description and in the result,
and an agent left with none of the tools it names is refused, saying which flags would restore them."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from subagents.history.store import RunStore
from subagents.mcp.server import build_server
from subagents.providers.testing import FakeMessagesServer, text
from tests.conftest import make_app, write_agent

pytestmark = [pytest.mark.anyio, pytest.mark.parametrize("mode", ["legacy", "auto"])]


@pytest.fixture
def agents(tmp_path: Path) -> Path:
    folder = tmp_path / "agents"
    write_agent(folder, "webby.md", "name: webby\ndescription: Web only.\ntools: WebFetch, mcp__jira__search")
    write_agent(folder, "mixed.md", "name: mixed\ndescription: Mixed.\ntools: Read, NotebookEdit, Bash, mcp__x__y")
    write_agent(folder, "quiet.md", "name: quiet\ndescription: Thinks only.\ntools:")
    return folder


async def test_an_agent_left_with_none_of_its_tools_is_refused_before_any_model_call(
    mode: str, fake_model: FakeMessagesServer, project: Path, agents: Path, store: RunStore
) -> None:
    async with (
        make_app(fake_model, project, agents_dir=agents, bundled=False, store=store) as app,
        Client(build_server(app), mode=mode) as client,
    ):
        result = await client.call_tool("webby", {"task": "Fetch the release notes"})
    assert result.is_error is True and fake_model.requests == []
    structured = result.structured_content
    assert structured is not None and structured["status"] == "failed"
    assert structured["error_kind"] == "tools_unavailable"
    assert structured["unavailable_tools"] == ["WebFetch", "mcp__jira__search"]
    assert "WebFetch (web tools are off; serve --web-tools gives it)" in structured["error"]
    assert "mcp__jira__search (no MCP servers are connected here)" in structured["error"]
    assert (await store.get(structured["run_id"])).status == "failed"  # refused, and recorded


async def test_lacking_tools_are_in_the_description_and_the_result(
    mode: str, fake_model: FakeMessagesServer, project: Path, agents: Path
) -> None:
    fake_model.set_script(lambda _: text("done"))
    async with (
        make_app(fake_model, project, agents_dir=agents, bundled=False) as app,
        Client(build_server(app), mode=mode) as client,
    ):
        tools = {t.name: t for t in (await client.list_tools()).tools}
        mixed = await client.call_tool("mixed", {"task": "x"})
        quiet = await client.call_tool("quiet", {"task": "x"})
    assert tools["mixed"].description == (
        "Mixed.\n\nUnavailable here: NotebookEdit (notebooks are not supported here), Bash (Bash is off), "
        "mcp__x__y (no MCP servers are connected here)."
    )
    assert tools["mixed"].annotations is not None and tools["mixed"].annotations.read_only_hint is True  # no Bash
    assert tools["quiet"].description == "Thinks only."
    assert mixed.structured_content and mixed.structured_content["unavailable_tools"] == [
        "NotebookEdit",
        "Bash",
        "mcp__x__y",
    ]
    assert fake_model.requests[0].tool_names == ["Read"]
    # `tools:` naming nothing means no tools on purpose: it runs, and lacks nothing.
    assert quiet.is_error is False and quiet.structured_content and "unavailable_tools" not in quiet.structured_content
    assert fake_model.requests[1].tool_names == []
