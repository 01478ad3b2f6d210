"""Which directories a run's file tools may read: the server's roots, narrowed (or, for a local stdio
client with no --root, given) by the roots the MCP client declares."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path


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
