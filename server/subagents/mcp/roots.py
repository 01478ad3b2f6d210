"""The roots an MCP client declares: asked for only when the client can answer, read as local directories."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from mcp.server.mcpserver import Context, ListRoots
from mcp.types import ListRootsResult


def want_roots(ctx: Context) -> ListRoots | None:
    """Resolver: ask for the client's roots only when it declared the capability (Claude Code does)."""
    caps = ctx.client_capabilities
    return ListRoots() if caps is not None and caps.roots is not None else None


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
