"""The package's pytest plugin, as a user's tests meet it: the fixtures, the marker and the helpers."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client

from subagents.providers.testing import FakeMessagesServer, error, text, tool_use, tool_uses
from subagents.testing import (
    ServerFactory,
    both_eras,
    completed,
    files_read,
    refused,
    report,
    tool_calls,
    tools_called,
    tools_offered,
)
from subagents.testing.harness import AgentFileError
from tests import conftest
from tests.conftest import write_agent

pytestmark = [pytest.mark.anyio, pytest.mark.subagents(agents="agents")]
HANDLER = "def get_user(db, user_id):\n    return db.execute(f'SELECT * FROM users WHERE id = {user_id}')\n"
RUN_TOOLS = ["cancel_run", "continue_run", "get_run", "start_agent"]


def imported_after(code: str) -> set[str]:
    """The subagents, mcp and anthropic modules a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    return {m for m in out.stdout.split() if m.split(".")[0] in ("subagents", "mcp", "anthropic")}


def test_loading_the_plugin_imports_nothing_of_the_server() -> None:
    assert imported_after("import subagents.testing.plugin") == {
        "subagents",
        "subagents.testing",
        "subagents.testing.plugin",
    }


def test_the_server_never_imports_the_plugin() -> None:
    loaded = imported_after("import subagents.cli.main, subagents.cli.serve, subagents.mcp.server")
    assert "mcp" in loaded and not any(m.startswith("subagents.testing") for m in loaded)


def test_pytest_finds_the_plugin_through_the_entry_point(request: pytest.FixtureRequest) -> None:
    [entry] = [e for e in importlib.metadata.entry_points(group="pytest11") if e.name == "subagents"]
    assert entry.value == "subagents.testing.plugin"
    # This suite's fixtures are the plugin's own (tests/conftest.py defines no fake_model).
    plugin = request.config.pluginmanager.get_plugin("subagents")
    assert plugin is not None and plugin.__name__ == "subagents.testing.plugin"
    assert not hasattr(conftest, "fake_model") and hasattr(plugin, "fake_model")


@both_eras
async def test_the_marker_builds_the_default_server_of_mcp_client(
    mcp_mode: str, mcp_client: Client, fake_model: FakeMessagesServer, tmp_path: Path
) -> None:
    (tmp_path / "api.py").write_text(HANDLER)
    fake_model.set_script(
        [
            tool_uses([("Read", {"file_path": "api.py"}), ("Read", {"file_path": "/etc/hostname"})]),
            tool_use("Grep", {"pattern": "execute"}),
            text("api.py:2 SQL built from user_id"),
        ]
    )
    tools = sorted(t.name for t in (await mcp_client.list_tools()).tools)
    result = await mcp_client.call_tool("handler-reviewer", {"task": "Review api.py"})
    assert mcp_client.protocol_version == ("2025-11-25" if mcp_mode == "legacy" else "2026-07-28")
    assert tools == sorted(["handler-reviewer", *RUN_TOOLS, "fan_out"])  # the user's agent, no bundled ones
    structured = completed(result)
    assert structured["turns"] == 3 and report(result) == "api.py:2 SQL built from user_id"
    assert tools_offered(fake_model) == ["Read", "Grep"]
    assert tools_called(fake_model) == ["Read", "Read", "Grep"]
    assert files_read(fake_model) == ["api.py"]  # the file outside the root was refused, not read
    [outside] = refused(fake_model)
    assert outside.input == {"file_path": "/etc/hostname"} and "outside" in (outside.result or "")
    grep = tool_calls(fake_model)[2]
    assert grep.name == "Grep" and grep.result == "Found 1 file\napi.py" and not grep.is_error


async def test_the_factory_builds_servers_with_their_own_settings_and_store(
    subagents_server: ServerFactory, fake_model: FakeMessagesServer, tmp_path: Path
) -> None:
    fake_model.set_script([tool_use("Grep", {"pattern": "x"}), tool_use("Grep", {"pattern": "y"})])
    server = subagents_server(max_turns=1)
    assert server is not subagents_server() and subagents_server() is subagents_server()
    async with server.client() as client:
        result = await client.call_tool("handler-reviewer", {"task": "Review"})
        record = await server.app.recorder.get(completed(result)["run_id"])
    assert completed(result)["stop_reason"] == "max_turns" and result.structured_content["turns"] == 1  # type: ignore[index]
    assert record.input.task == "Review" and record.transcript[0].text == "<task>\nReview\n</task>"
    assert server.app.store is not None and tmp_path not in Path(server.app.store.where).parents


async def test_completed_fails_the_test_with_the_runs_error(
    subagents_server: ServerFactory, fake_model: FakeMessagesServer
) -> None:
    fake_model.set_script([error(400, message="prompt is too long")])
    async with subagents_server().client() as client:
        result = await client.call_tool("handler-reviewer", {"task": "Review"})
    with pytest.raises(AssertionError, match="the run failed: .*prompt is too long"):
        completed(result)


def test_a_broken_agent_file_fails_the_test_with_its_reason(subagents_server: ServerFactory, tmp_path: Path) -> None:
    broken = write_agent(tmp_path / "mine", "broken.md", "name: broken\ndescription: x\nsubagents:\n  max_tokens: 0")
    with pytest.raises(AgentFileError, match="broken.md"):
        subagents_server(agents=broken.parent)
    with pytest.raises(FileNotFoundError, match="taken from the test file's folder"):
        subagents_server(agents="no-such-folder")
