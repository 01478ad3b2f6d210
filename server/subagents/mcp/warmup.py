"""The server's warm-up waits for the handshake: it starts once the client has its tool list."""

from __future__ import annotations

from typing import Any

import anyio
from mcp.server.context import ServerRequestContext

from subagents.app import Subagents

# A client's start-up: the handshake and the lists. Any other request (a call) starts the warm-up at once.
HANDSHAKE = frozenset({"initialize", "ping", "server/discover", "prompts/list", "resources/list"})
AFTER_LISTING_S = 0.05  # the tool list is written out before the warm-up takes the CPU
UNLISTED_S = 5.0  # a server no client has asked anything yet warms up all the same, this long after it serves


class WarmUpAfterListing:
    """Middleware: the app's warm-up (seconds of imports in a daemon thread, which holds the GIL for much of
    them) starts after the first tools/list is answered, or at the first request that is not part of a
    client's start-up; so a client waits for its tool list no longer than for a bare server's."""

    def __init__(self, app: Subagents) -> None:
        self.app = app

    async def __call__(self, ctx: ServerRequestContext[Any, Any], call_next: Any) -> Any:
        if ctx.method == "tools/list":
            try:
                return await call_next(ctx)
            finally:
                self.app.warm_up(delay_s=AFTER_LISTING_S)
        if ctx.method not in HANDSHAKE:
            self.app.warm_up()
        return await call_next(ctx)


async def warm_up_unlisted(app: Subagents, after_s: float = UNLISTED_S) -> None:
    """Start the warm-up `after_s` from now if no client has started it: an HTTP server nobody calls yet
    is ready for the first call all the same."""
    await anyio.sleep(after_s)
    app.warm_up()
