"""Live reload in a real `subagents serve` process over stdio: a new agent file reaches the connected client,
which is told, in both eras; `--no-watch` turns it off and says so in the capabilities."""

from __future__ import annotations

from pathlib import Path

import pytest
from mcp import Client

from subagents.providers.testing import FakeMessagesServer, text
from tests.mcp.test_live_reload import agent, connected, tool_names, until
from tests.test_serve import stdio_params

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_a_new_agent_file_reaches_a_client_of_serve_over_stdio(
    mode: str, fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    fake_model.set_script([text("Nothing to report.")])
    folder = tmp_path / "agents"
    agent(folder, "first")
    params = stdio_params(project, fake_model, "--agents-dir", str(folder), "--no-bundled")
    async with connected(params, mode) as (client, told):
        assert "second" not in await tool_names(client)
        agent(folder, "second", description="Arrived while the server ran.")

        async def listed() -> bool:
            return "second" in await tool_names(client)

        assert await until(listed)

        async def heard() -> bool:
            return told.tools > 0

        assert await until(heard)
        result = await client.call_tool("second", {"task": "Look around."})
    assert result.is_error is False, result.structured_content
    assert (result.structured_content or {})["agent"] == "second"


@pytest.mark.parametrize("mode", ["legacy", "auto"])
async def test_no_watch_serves_lists_that_say_they_do_not_change(
    mode: str, fake_model: FakeMessagesServer, project: Path, tmp_path: Path
) -> None:
    agent(tmp_path / "agents", "first")
    params = stdio_params(project, fake_model, "--agents-dir", str(tmp_path / "agents"), "--no-watch")
    async with Client(params, mode=mode) as client:
        capabilities = client.server_capabilities
    assert capabilities is not None and capabilities.tools is not None
    assert capabilities.tools.list_changed is False
