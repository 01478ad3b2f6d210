"""The MCP surface in both protocol eras, in process, through the package's own pytest plugin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from subagents.mcp.server import INSTRUCTIONS
from subagents.providers.testing import FakeMessagesServer, demo_responder, text, tool_use
from subagents.testing import ServerFactory, both_eras, completed, files_read, report, tools_offered
from tests.answers import review_json
from tests.conftest import write_agent

pytestmark = [pytest.mark.anyio, both_eras, pytest.mark.subagents(bundled=True, store=False)]

SPECIALISTS = ["debate-judge", "router", "security-reviewer", "test-writer"]
RUN_TOOLS = ["cancel_run", "continue_run", "get_run", "start_agent"]
DEFAULT_PATTERNS = ["fan_out"]


async def test_tools_list_shows_the_specialists_with_small_schemas(mcp_client: Client) -> None:
    tools = {t.name: t for t in (await mcp_client.list_tools()).tools}
    assert sorted(tools) == sorted(SPECIALISTS + RUN_TOOLS + DEFAULT_PATTERNS)
    for tool in (tools[name] for name in SPECIALISTS):
        assert tool.input_schema["required"] == ["task"]
        assert set(tool.input_schema["properties"]) == {"task", "context", "files"}
        assert tool.output_schema is None
        assert len(tool.description or "") < 2048
        schema_bytes = len(json.dumps(tool.input_schema))
        assert schema_bytes < 600, schema_bytes  # ≈150 tokens
    assert tools["security-reviewer"].annotations.read_only_hint is True
    assert tools["router"].annotations.read_only_hint is True
    assert tools["test-writer"].annotations.read_only_hint is False


async def test_instructions_are_sent_and_short(
    mcp_mode: str, mcp_client: Client, subagents_server: ServerFactory
) -> None:
    assert len(INSTRUCTIONS.encode()) < 2048
    if mcp_mode == "legacy":
        assert mcp_client.session.initialize_result.instructions == INSTRUCTIONS  # type: ignore[union-attr]
    else:
        assert subagents_server().mcp.instructions == INSTRUCTIONS


async def test_calling_a_specialist_runs_the_loop(
    mcp_mode: str, fake_model: FakeMessagesServer, subagents_server: ServerFactory, project: Path
) -> None:
    fake_model.set_script(demo_responder)
    async with subagents_server(roots=project).client(mcp_mode) as client:
        result = await client.call_tool("security-reviewer", {"task": "Review src/app.py for injection"})
    structured = completed(result)
    # The fake asked Read for the named file and got its content back.
    assert tools_offered(fake_model) == ["Read", "Grep", "Glob", "LS"] and files_read(fake_model) == ["src/app.py"]
    [read] = fake_model.requests[1].tool_results
    assert "SELECT * FROM users" in read["content"] and read["is_error"] is False
    assert structured["agent"] == "security-reviewer" and structured["model"] == "claude-sonnet-5-5"
    assert structured["status"] == "completed" and structured["turns"] == 2 and structured["stop_reason"] == "end_turn"
    assert structured["run_id"].startswith("run_")
    assert structured["usage"]["input_tokens"] > 0
    # The reviewer answers in JSON that matches its schema: the object itself, and its text beside it.
    assert "src/app.py" in structured["output"]["summary"]["reviewed"] and "report" not in structured
    assert json.loads(result.content[0].text) == structured["output"] == json.loads(report(result))  # type: ignore[union-attr]


async def test_progress_notifications_reach_the_client(fake_model: FakeMessagesServer, mcp_client: Client) -> None:
    fake_model.set_script([tool_use("Grep", {"pattern": "execute"}), text(review_json())])
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    await mcp_client.call_tool("security-reviewer", {"task": "x"}, progress_callback=on_progress)
    assert (1.001, 20, 'turn 1/20: Grep "execute"') in seen
    values = [p for p, _, _ in seen]
    assert values == sorted(values) and len(set(values)) == len(values)  # strictly increasing
    assert any(m and m.startswith("turn 2/20") for _, _, m in seen)


async def test_no_credentials_gives_an_error_result_and_the_server_keeps_serving(
    mcp_mode: str, subagents_server: ServerFactory
) -> None:
    async with subagents_server(fake=None).client(mcp_mode) as client:
        first = await client.call_tool("router", {"task": "x"})
        second = await client.call_tool("router", {"task": "y"})
        tools = await client.list_tools()
    for result in (first, second):
        assert result.is_error is True
        assert "ANTHROPIC_API_KEY" in result.content[0].text  # type: ignore[union-attr]
        assert result.structured_content and result.structured_content["status"] == "failed"
    assert len(tools.tools) == len(SPECIALISTS + RUN_TOOLS + DEFAULT_PATTERNS)


async def test_bad_arguments_are_refused_with_a_clear_error(mcp_client: Client) -> None:
    missing = await mcp_client.call_tool("router", {"context": "no task"})
    empty = await mcp_client.call_tool("router", {"task": ""})
    huge = await mcp_client.call_tool("router", {"task": "x" * 100_001})
    for result in (missing, empty, huge):
        assert result.is_error is True
    assert "task" in missing.content[0].text  # type: ignore[union-attr]


async def test_agent_resources(mcp_mode: str, subagents_server: ServerFactory, tmp_path: Path) -> None:
    agents = tmp_path / "agents"
    write_agent(agents, "mine.md", "name: mine\ndescription: My agent\ntools: Read", body="Be brief.")
    async with subagents_server(agents=agents).client(mcp_mode) as client:
        own = await client.read_resource("subagents://agents/mine")
        index = await client.read_resource("subagents://agents")
    assert own.contents[0].text.startswith("---\nname: mine")  # type: ignore[union-attr]
    assert "Be brief." in own.contents[0].text  # type: ignore[union-attr]
    names = [a["name"] for a in json.loads(index.contents[0].text)]  # type: ignore[union-attr]
    assert names == ["debate-judge", "mine", "router", "security-reviewer", "test-writer"]


async def test_one_prompt_per_agent(mcp_client: Client) -> None:
    prompts = {p.name: p for p in (await mcp_client.list_prompts()).prompts}
    got = await mcp_client.get_prompt("security-reviewer", {"task": "check the login flow"})
    assert sorted(prompts) == SPECIALISTS
    assert [a.name for a in prompts["router"].arguments or []] == ["task"]
    text = got.messages[0].content.text  # type: ignore[union-attr]
    assert "security-reviewer tool" in text and "check the login flow" in text


async def test_a_claude_code_collection_is_served_under_valid_tool_names(
    mcp_mode: str, fake_model: FakeMessagesServer, subagents_server: ServerFactory, tmp_path: Path
) -> None:
    """Names Claude Code takes but MCP does not, a repaired file and a README, all in one folder."""
    agents = tmp_path / "collection"
    write_agent(agents, "ps.md", "name: powershell-5.1-expert\ndescription: PowerShell 5.1", "You are PS.")
    write_agent(agents, "run.md", "name: get_run\ndescription: clashes with our own tool", "You are get_run.")
    write_agent(agents / "team", "c.md", "name: colon\ndescription: Use when: the user asks", "You are colon.")
    (agents / "README.md").write_text("# Our collection\n")
    fake_model.set_script([text("done")])
    async with subagents_server(agents=agents, bundled=False).client(mcp_mode) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        agent_tools = sorted(set(tools) - set(RUN_TOOLS) - {"fan_out"})
        result = await client.call_tool("powershell-5-1-expert", {"task": "x"})
    assert agent_tools[:2] == ["colon", "get_run-3b754d"] and agent_tools[2] == "powershell-5-1-expert"
    assert tools["get_run"].description != "clashes with our own tool"  # ours stays ours
    assert "Use when: the user asks" in (tools["colon"].description or "")
    assert result.is_error is False and "You are PS." in fake_model.requests[0].system_text
