"""The roots an MCP client declares: asked for only when the client can answer, read as local directories."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlparse

from mcp.server.elicitation import AcceptedElicitation
from mcp.server.mcpserver import Context, ListRoots, Resolve
from mcp.types import ListRootsResult

# The SDK wraps every resolver's answer in `AcceptedElicitation[Any]`. Pydantic keeps parametrised
# generics in a weak cache, so without a reference of our own the class is rebuilt on every tool call
# (about 1 ms of CPU each).
_ACCEPTED: Any = AcceptedElicitation[Any]


async def want_roots(ctx: Context) -> ListRoots | None:
    """Resolver: ask for the client's roots only when it declared the capability (Claude Code does).
    Async, so the SDK runs it on the event loop rather than in a worker thread."""
    caps = ctx.client_capabilities
    return ListRoots() if caps is not None and caps.roots is not None else None


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
