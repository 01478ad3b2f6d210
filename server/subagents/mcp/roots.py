"""The roots an MCP client declares: asked for only when the client can answer, read as local directories,
and kept per connection for a client that promises to say when they change."""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlparse

from mcp.server.connection import Connection
from mcp.server.context import ServerRequestContext
from mcp.server.elicitation import AcceptedElicitation
from mcp.server.mcpserver import Context, ListRoots, MCPServer, Resolve
from mcp.shared.message import ServerMessageMetadata
from mcp.types import ListRootsRequest, ListRootsResult, NotificationParams
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

# The SDK wraps every resolver's answer in `AcceptedElicitation[Any]`. Pydantic keeps parametrised
# generics in a weak cache, so without a reference of our own the class is rebuilt on every tool call
# (about 1 ms of CPU each).
_ACCEPTED: Any = AcceptedElicitation[Any]
LIST_CHANGED = "notifications/roots/list_changed"


@dataclass
class _Kept:
    generation: int = 0  # bumped by each list_changed: an answer asked for before it is not kept
    roots: ListRootsResult | None = None


class RootsCache:
    """The last roots each handshake-era connection gave, for clients that declare `roots.listChanged`;
    forgotten when the client sends `notifications/roots/list_changed`.

    Roots are the sandbox's boundary, so only a client that promised to announce changes is answered
    from here. A client without `listChanged` (and every 2026-07-28 client: that era has no client
    notifications) is asked on every call, which is the only way to see a change it does not announce."""

    def __init__(self) -> None:
        self._kept: weakref.WeakKeyDictionary[Connection, _Kept] = weakref.WeakKeyDictionary()

    def install(self, server: MCPServer) -> None:
        """Listen for the client's roots/list_changed on `server` (private: MCPServer has no public hook)."""
        server._lowlevel_server.add_notification_handler(LIST_CHANGED, NotificationParams, self.changed)

    async def changed(self, ctx: ServerRequestContext[Any, Any], _params: NotificationParams) -> None:
        """The client's roots changed: the next call on this connection asks again."""
        connection = _connection(ctx.session)
        if connection is not None:
            kept = self._kept.setdefault(connection, _Kept())
            kept.generation += 1
            kept.roots = None

    async def roots(self, ctx: Context) -> ListRootsResult | ListRoots:
        """The kept answer, else the client's own (then kept); `ListRoots` where the SDK must ask."""
        connection = _connection(ctx.session)
        if connection is None or not _announces_changes(ctx) or not ctx.session.can_send_request:
            return ListRoots()
        kept = self._kept.setdefault(connection, _Kept())
        if kept.roots is not None:
            return kept.roots
        asked_at = kept.generation
        answer: ListRootsResult = await ctx.session.send_request(
            ListRootsRequest(), ListRootsResult, metadata=ServerMessageMetadata(related_request_id=ctx.request_id)
        )
        if kept.generation == asked_at:  # no list_changed while we waited: the answer is current
            kept.roots = answer
        return answer


def _announces_changes(ctx: Context) -> bool:
    version, caps = ctx.protocol_version, ctx.client_capabilities
    roots = caps.roots if caps is not None else None
    return version is not None and version not in MODERN_PROTOCOL_VERSIONS and bool(roots and roots.list_changed)


def _connection(session: object) -> Connection | None:
    connection = getattr(session, "_connection", None)  # private: the SDK has no public handle on it
    return connection if isinstance(connection, Connection) else None


async def want_roots(ctx: Context) -> ListRoots | ListRootsResult | None:
    """Resolver: ask for the client's roots only when it declared the capability (Claude Code does), from
    the server's RootsCache where it has one. Async, so the SDK runs it on the event loop, not in a thread."""
    caps = ctx.client_capabilities
    if caps is None or caps.roots is None:
        return None
    cache = getattr(ctx.mcp_server, "roots_cache", None)
    return await cache.roots(ctx) if isinstance(cache, RootsCache) else ListRoots()


# A tool parameter of this type receives the client's roots (None when it declared none).
ClientRoots = Annotated[ListRootsResult | None, Resolve(want_roots)]


def client_root_paths(result: ListRootsResult | None) -> list[Path]:
    """Existing local directories among the client's `file://` roots."""
    if result is None:
        return []
    paths = []
    for root in result.roots:
        uri = urlparse(str(root.uri))
        if uri.scheme == "file" and uri.netloc in ("", "localhost"):
            path = Path(unquote(uri.path))
            if path.is_dir():
                paths.append(path.resolve())
    return paths
