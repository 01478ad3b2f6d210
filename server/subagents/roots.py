"""Which directories a run's file tools may read: the server's roots, narrowed (or, for a local stdio
client with no --root, given) by the roots the MCP client declares."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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


def effective_roots(
    server_roots: Sequence[Path], client_roots: Iterable[Path], *, trust_client: bool
) -> tuple[Path, ...]:
    """A trusted client (local stdio, no --root) names the roots; otherwise its roots may only narrow the
    server's, so a remote client can never open more of the server's disk than the operator allowed."""
    client = [p.resolve() for p in client_roots]
    if not client:
        return tuple(server_roots)
    if trust_client:
        return tuple(dict.fromkeys(client))
    inside = [p for p in client if any(p.is_relative_to(base) for base in server_roots)]
    return tuple(dict.fromkeys(inside)) or tuple(server_roots)
