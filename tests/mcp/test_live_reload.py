"""Live reload: agent files added, edited, broken or removed while the server runs reach connected clients
(official MCP client, both eras), and a run in flight finishes on the definition it started with."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.subscriptions import Subscription
from mcp.server.mcpserver import MCPServer
from mcp.types import PromptListChangedNotification, ToolListChangedNotification

from subagents.app import Subagents
from subagents.definitions.catalog import default_layers, load_catalog
from subagents.mcp.catalog_tools import CATALOG_THRESHOLD
from subagents.mcp.live import LiveAgents
from subagents.mcp.server import build_server
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text, tool_use
from tests.conftest import make_app, write_agent

pytestmark = pytest.mark.anyio
both_eras = pytest.mark.parametrize("mode", ["legacy", "auto"])
DEADLINE_S = 2.0  # the bound: a new file is in tools/list within 2 s
SETTLE_S = 10.0  # for the waits the issue sets no bound on: the machine may be slow


def agent(folder: Path, name: str, description: str = "Reviews code.", body: str = "You review code.") -> Path:
    return write_agent(folder, f"{name}.md", f"name: {name}\ndescription: {description}\ntools: Read", body=body)


@asynccontextmanager
async def live_server(app: Subagents) -> AsyncIterator[tuple[MCPServer, LiveAgents]]:
    """The server as `serve` runs it: built with live reload, the watch running, and in place."""
    live = LiveAgents(app)
    server = build_server(app, live=live)
    async with app, anyio.create_task_group() as tg:
        tg.start_soon(live.run)
        with anyio.fail_after(10):
            await live.watching.wait()
        yield server, live
        live.stop()
        tg.cancel_scope.cancel()


class Told:
    """The change notices a client received, in either era."""

    def __init__(self) -> None:
        self.tools = 0
        self.prompts = 0

    async def handler(self, message: Any) -> None:  # handshake era: standalone notifications
        if isinstance(message, ToolListChangedNotification):
            self.tools += 1
        elif isinstance(message, PromptListChangedNotification):
            self.prompts += 1

    async def listen(self, sub: Subscription) -> None:  # 2026-07-28: events on the listen stream
        async for event in sub:
            name = type(event).__name__
            self.tools += name == "ToolsListChanged"
            self.prompts += name == "PromptsListChanged"


@asynccontextmanager
async def connected(server: MCPServer | StdioServerParameters, mode: str) -> AsyncIterator[tuple[Client, Told]]:
    told = Told()
    async with Client(server, mode=mode, message_handler=told.handler) as client:
        if mode == "legacy":
            yield client, told
            return
        async with (
            client.listen(tools_list_changed=True, prompts_list_changed=True) as sub,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(told.listen, sub)
            yield client, told
            tg.cancel_scope.cancel()


@asynccontextmanager
async def live_client(app: Subagents, mode: str) -> AsyncIterator[tuple[Client, Told, LiveAgents]]:
    """A client of a live-reloading server, and the change notices it gets."""
    async with live_server(app) as (server, live), connected(server, mode) as (client, told):
        yield client, told, live


async def until(check: Callable[[], Awaitable[bool]], seconds: float = DEADLINE_S) -> bool:
    """Poll `check` until it holds; False when the deadline passes first."""
    with anyio.move_on_after(seconds):
        while not await check():
            await anyio.sleep(0.02)
        return True
    return False


async def tool_names(client: Client) -> set[str]:
    return {t.name for t in (await client.list_tools(cache_mode="bypass")).tools}


@both_eras
async def test_a_new_agent_file_reaches_a_connected_client_and_it_is_told(
    mode: str, project: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "agents"
    agent(folder, "first")
    async with live_client(make_app(None, project, agents_dir=folder, bundled=False), mode) as (client, told, _live):
        assert client.server_capabilities is not None and client.server_capabilities.tools is not None
        assert client.server_capabilities.tools.list_changed is True
        assert "second" not in await tool_names(client)
        agent(folder, "second", description="Finds flaky tests.")

        async def listed() -> bool:
            return "second" in await tool_names(client)

        assert await until(listed)

        async def heard() -> bool:
            return told.tools > 0 and told.prompts > 0

        assert await until(heard)
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        index = (await client.read_resource("subagents://agents")).contents[0]
        markdown = (await client.read_resource("subagents://agents/second")).contents[0]
    assert {"first", "second"} <= prompts
    assert '"second"' in getattr(index, "text", "")
    assert "Finds flaky tests." in getattr(markdown, "text", "")


@both_eras
async def test_a_broken_edit_keeps_the_last_good_agent_and_logs_why(
    mode: str, project: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    folder = tmp_path / "agents"
    path = agent(folder, "reviewer", description="Reviews code, version one.")
    async with live_client(make_app(None, project, agents_dir=folder, bundled=False), mode) as (client, _told, live):
        before = live.reloads
        path.write_text("---\nname: reviewer\n---\nThe description is gone.\n", encoding="utf-8")

        async def reread() -> bool:
            return live.reloads > before and "still serving the last good version" in caplog.text

        assert await until(reread, SETTLE_S)
        tools = {t.name: t for t in (await client.list_tools(cache_mode="bypass")).tools}
    assert tools["reviewer"].description == "Reviews code, version one."
    line = next(r.getMessage() for r in caplog.records if "last good version" in r.getMessage())
    assert str(path) in line and "'reviewer'" in line


@both_eras
async def test_an_edit_changes_the_tool_and_a_removal_removes_it(mode: str, project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    agent(folder, "keeper")
    path = agent(folder, "reviewer", description="Version one.")
    async with live_client(make_app(None, project, agents_dir=folder, bundled=False), mode) as (client, told, _live):
        agent(folder, "reviewer", description="Version two.")

        async def edited() -> bool:
            tools = {t.name: t for t in (await client.list_tools(cache_mode="bypass")).tools}
            return tools["reviewer"].description == "Version two."

        assert await until(edited, SETTLE_S)

        async def told_of_the_edit() -> bool:  # the notice follows the swap: wait for it before counting on
            return told.tools > 0

        assert await until(told_of_the_edit, SETTLE_S)
        heard = told.tools
        path.unlink()

        async def removed() -> bool:
            return "reviewer" not in await tool_names(client)

        assert await until(removed, SETTLE_S)

        async def told_again() -> bool:
            return told.tools > heard

        assert await until(told_again, SETTLE_S)
        names = await tool_names(client)
        prompts = {p.name for p in (await client.list_prompts()).prompts}
        gone = await client.call_tool("reviewer", {"task": "review"})
    assert "keeper" in names and "reviewer" not in prompts
    assert gone.is_error


class Paused:
    """A fake model whose first turn waits for the test: a run is in flight while the files change."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.calls: list[RecordedRequest] = []

    def __call__(self, request: RecordedRequest) -> Reply:
        self.calls.append(request)
        if len(self.calls) == 1:
            self.release.wait(timeout=30)
            return tool_use("LS", {"path": "."})
        return text("Done.")


@pytest.mark.parametrize("change", ["edit", "remove"])
async def test_a_run_in_flight_finishes_on_the_definition_it_started_with(
    change: str, project: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "agents"
    path = agent(folder, "reviewer", body="You are version ONE.")
    model = Paused()
    with FakeMessagesServer(model) as fake:
        app = make_app(fake, project, agents_dir=folder, bundled=False)
        async with live_client(app, "legacy") as (client, _told, live):
            outcome: dict[str, Any] = {}

            async def call() -> None:
                outcome["result"] = await client.call_tool("reviewer", {"task": "review"})

            async with anyio.create_task_group() as tg:
                tg.start_soon(call)

                async def started() -> bool:
                    return bool(model.calls)

                assert await until(started, 30)  # the first call imports the anthropic SDK
                if change == "edit":
                    agent(folder, "reviewer", body="You are version TWO.")
                else:
                    path.unlink()

                async def swapped() -> bool:
                    spec = live.app.catalog.get("reviewer")
                    return spec is None if change == "remove" else spec is not None and "TWO" in spec.prompt

                assert await until(swapped, SETTLE_S)
                model.release.set()
    result = outcome["result"]
    assert result.structured_content["status"] == "completed", result.structured_content
    assert [("ONE" in c.system_text, "TWO" in c.system_text) for c in model.calls] == [(True, False)] * 2


async def test_a_symlinked_folder_and_a_project_folder_made_later_are_watched(project: Path, tmp_path: Path) -> None:
    (project / ".git").mkdir()
    elsewhere = tmp_path / "shared-agents"
    agent(elsewhere, "linked-one")
    app = make_app(None, project, bundled=False)
    app.catalog = load_catalog(default_layers(project_dir=project, bundled=False, home=tmp_path / "home"))
    async with live_server(app) as (server, _live), connected(server, "legacy") as (client, told):
        (project / ".claude" / "agents").mkdir(parents=True)  # no project agents folder at start
        agent(project / ".claude" / "agents", "project-one")

        async def project_agent() -> bool:
            return "project-one" in await tool_names(client)

        assert await until(project_agent, SETTLE_S)  # a folder that did not exist is looked for each second
        (project / ".claude" / "agents" / "shared").symlink_to(elsewhere)

        async def linked() -> bool:
            return "linked-one" in await tool_names(client)

        assert await until(linked, SETTLE_S)
        agent(elsewhere, "linked-two")

        async def through_the_link() -> bool:
            return "linked-two" in await tool_names(client)

        assert await until(through_the_link, SETTLE_S)

        async def told_of_each() -> bool:  # a notice is sent after the swap, so it may land after the listing
            return told.tools >= 3

        assert await until(told_of_each, SETTLE_S)


@both_eras
async def test_catalog_mode_follows_the_files_too(mode: str, project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    for i in range(CATALOG_THRESHOLD + 1):
        agent(folder, f"agent-{i:02d}")
    async with live_client(make_app(None, project, agents_dir=folder, bundled=False), mode) as (client, told, _live):
        agent(folder, "sql-hunter", description="Hunts SQL injection.")

        async def found() -> bool:
            listing = await client.call_tool("list_agents", {"query": "sql injection"})
            return "sql-hunter" in str(listing.structured_content)

        assert await until(found, SETTLE_S)
        delegate = next(t for t in (await client.list_tools(cache_mode="bypass")).tools if t.name == "delegate")

        async def heard() -> bool:
            return told.tools > 0

        assert await until(heard, SETTLE_S)
    assert f"{CATALOG_THRESHOLD + 2} specialist agents" in (delegate.description or "")


async def test_a_reload_cannot_raise_the_operator_limits(project: Path, tmp_path: Path) -> None:
    folder = tmp_path / "agents"
    agent(folder, "first")
    app = make_app(None, project, agents_dir=folder, bundled=False, max_turns=5)
    async with live_server(app) as (server, _live), connected(server, "legacy") as (client, _told):
        write_agent(
            folder,
            "greedy.md",
            "name: greedy\ndescription: Wants more.\nmaxTurns: 500\nsubagents:\n  timeout: 99999",
        )

        async def listed() -> bool:
            return "greedy" in await tool_names(client)

        assert await until(listed, SETTLE_S)
    limits = app.limits(app.agent("greedy"))
    assert limits.max_turns == 5
    assert app.timeout_s(app.agent("greedy")) == app.settings.run_timeout_s


async def test_a_flood_of_file_events_is_a_few_reloads_and_the_server_keeps_answering(
    project: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "agents"
    agent(folder, "first")
    app = make_app(None, project, agents_dir=folder, bundled=False, catalog_mode="on")
    async with live_server(app) as (server, live), connected(server, "legacy") as (client, _told):
        before = live.reloads
        for round_ in range(3):
            for i in range(300):
                agent(folder / "flood", f"flood-{i:03d}", description=f"Round {round_}.")
        answered = await client.list_tools(cache_mode="bypass")  # while the burst is being read

        async def all_in() -> bool:
            listing = await client.call_tool("list_agents", {"query": "round 2", "limit": 1})
            return (listing.structured_content or {}).get("matches") == 300

        assert await until(all_in, 30)
    assert answered.tools
    assert live.reloads - before <= 10  # 900 writes: bursts folded into a few reads of the folders


async def test_without_watching_the_lists_say_they_do_not_change(project: Path, tmp_path: Path) -> None:
    server = build_server(make_app(None, project, bundled=False))
    for mode in ("legacy", "auto"):
        async with Client(server, mode=mode) as client:
            capabilities = client.server_capabilities
            assert capabilities is not None and capabilities.tools is not None
            assert capabilities.tools.list_changed is False, mode
