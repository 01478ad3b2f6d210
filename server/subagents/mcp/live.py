"""Live reload: the running server follows the agent folders, and connected clients are told.

A reload reads the folders as start-up does (definitions/reload.py), swaps the app's catalog and the
agent tools and prompts, then tells clients: on the handshake era, `notifications/*/list_changed` on
every connection it has seen (the SDK keeps no registry, so a middleware records them); on 2026-07-28,
events on the subscription bus that `subscriptions/listen` streams read. A run in flight holds the
AgentSpec it started with, so it finishes on that definition whatever the reload does.
"""

from __future__ import annotations

import importlib.util
import logging
import weakref
from typing import Any

import anyio
from mcp.server import NotificationOptions
from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    PromptsListChanged,
    ResourcesListChanged,
    ServerEvent,
    ToolsListChanged,
)
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from subagents.app import Subagents
from subagents.definitions.reload import Reload, reload_catalog
from subagents.definitions.watch import watch_agent_folders, watched_folders
from subagents.mcp.surface import AgentSurface, agent_surface, swap_surface

log = logging.getLogger(__name__)

LEVELS = {"error": logging.ERROR, "warning": logging.WARNING, "info": logging.INFO}
NOTIFY_TIMEOUT_S = 2.0  # a client that does not read its stream does not hold up the others


class LiveAgents:
    """Keeps one server's agents in step with their files. `build_server(app, live=...)` attaches it; `run`
    watches until `stop`."""

    def __init__(self, app: Subagents) -> None:
        self.app = app
        self.bus = InMemorySubscriptionBus()
        self.reloads = 0  # times the folders were read again (a burst of changes is one)
        self._connections: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._server: MCPServer | None = None
        self._surface: AgentSurface | None = None
        self._stop = anyio.Event()
        self.watching = anyio.Event()  # set once the folders are watched: later changes are seen

    def attach(self, server: MCPServer, surface: AgentSurface) -> None:
        """Serve `surface` on `server` and say truthfully, on both eras, that its lists change."""
        self._server, self._surface = server, surface
        low = server._lowlevel_server  # private: MCPServer builds the handshake's capabilities without options
        create = low.create_initialization_options
        changing = NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)

        def with_list_changed(options: NotificationOptions | None = None, *args: Any, **kwargs: Any) -> Any:
            return create(options or changing, *args, **kwargs)

        low.create_initialization_options = with_list_changed  # type: ignore[method-assign,assignment]

    async def track(self, ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        """Middleware: remember each handshake-era connection, to tell it when the lists change."""
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            connection = getattr(ctx.session, "_connection", None)  # private: no public handle on it
            if isinstance(connection, Connection):
                self._connections.add(connection)
        return await call_next(ctx)

    async def run(self) -> None:
        """Watch the agent folders until `stop`; each burst of changes is one reload."""
        if importlib.util.find_spec("watchfiles") is None:
            log.warning("live reload is off: the watchfiles package is missing (pip install 'watchfiles>=1,<2')")
            return
        folders = watched_folders(self.app.catalog.layers)
        log.info("live reload: watching %s", ", ".join(map(str, folders)) or "no agent folder yet")
        await watch_agent_folders(
            lambda: self.app.catalog.layers, self._reload_or_log, stop=self._stop, on_watching=self.watching.set
        )

    def stop(self) -> None:
        self._stop.set()

    async def _reload_or_log(self) -> None:
        try:
            await self.reload()
        except Exception:  # the server goes on with the agents it has
            log.exception("could not reload the agent files; still serving the agents loaded before")

    async def reload(self) -> Reload:
        """Read the folders again (off the event loop), serve what changed, and tell the clients."""
        result = await anyio.to_thread.run_sync(reload_catalog, self.app.catalog, self.app.settings.agents_filter)
        self.reloads += 1
        for problem in result.new_problems:
            log.log(LEVELS[problem.level], "%s", problem)
        if not result.any_change or self._server is None or self._surface is None:
            return result
        self.app.swap_catalog(result.catalog, result.touched)
        old, new = self._surface, agent_surface(self.app)
        swap_surface(self._server, old, new)
        self._surface = new
        log.info("agents reloaded: %s", result.summary())
        events: list[ServerEvent] = [ResourcesListChanged()]
        if old.tool_listing() != new.tool_listing():
            events.append(ToolsListChanged())
        if old.prompt_listing() != new.prompt_listing():
            events.append(PromptsListChanged())
        await self._tell(events)
        return result

    async def _tell(self, events: list[ServerEvent]) -> None:
        for event in events:
            await self.bus.publish(event)
        for connection in list(self._connections):
            with anyio.move_on_after(NOTIFY_TIMEOUT_S):
                try:
                    for event in events:
                        await _notify(connection, event)
                except Exception as exc:  # best effort: a closed connection is forgotten
                    log.debug("could not tell a client the agents changed: %s", exc)
                    self._connections.discard(connection)


async def _notify(connection: Connection, event: ServerEvent) -> None:
    if isinstance(event, ToolsListChanged):
        await connection.send_tool_list_changed()
    elif isinstance(event, PromptsListChanged):
        await connection.send_prompt_list_changed()
    elif isinstance(event, ResourcesListChanged):
        await connection.send_resource_list_changed()
