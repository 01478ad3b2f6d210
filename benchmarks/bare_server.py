"""The floor: a plain mcp 2.3 MCPServer with N tools shaped like ours (task/context/files in, text out).

    python benchmarks/bare_server.py [--tools N] [--forward [--body FILE] [--roots]] [--transport stdio|http --port P]

With `--forward`, each call forwards the task to the Messages API (ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY)
with the `anthropic` SDK and returns the answer: the least an MCP server that calls a model can do, so
what our server adds on top of it is our own overhead. With `--body`, the request it sends is that JSON
file's (say, the one our server sent for an agent: its prompt, tool schemas and output schema), with the
call's task as the user's message: the same model call, so the difference is only the server's work.
With `--roots`, each tool also reads the client's roots, the portable way the SDK offers (a parameter filled
by `Resolve` from a `ListRoots` request): an input_required round on every call in the 2026-07-28 era, a
roots/list request on every call in the handshake era. The SDK fails a call whose client declared no roots
capability (MISSING_REQUIRED_CLIENT_CAPABILITY), so use `--roots` only with a client that declares roots.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Annotated, Any

from mcp import types
from mcp.server.mcpserver import ListRoots, MCPServer, Resolve

NAMES = ("security-reviewer", "test-writer", "router", "debate-judge")


def tool_names(count: int) -> list[str]:
    return list(NAMES[:count]) + [f"agent-{i:03d}" for i in range(max(0, count - len(NAMES)))]


async def want_roots() -> ListRoots:
    """Async, so the SDK runs it on the event loop rather than in a worker thread (as our server's does)."""
    return ListRoots()


def build(count: int, forward: bool, body: dict[str, Any] | None = None, roots: bool = False) -> MCPServer:
    server = MCPServer("bare", log_level="WARNING")
    client: Any = None
    body = {k: v for k, v in (body or {}).items() if k != "stream"}

    def make(name: str) -> None:
        async def tool(task: str, context: str | None = None, files: list[str] | None = None) -> str:
            nonlocal client
            if not forward:
                return f"{name}: {task}"
            if client is None:
                from anthropic import AsyncAnthropic

                client = AsyncAnthropic(
                    api_key=os.environ["ANTHROPIC_API_KEY"], base_url=os.environ["ANTHROPIC_BASE_URL"], max_retries=0
                )
            request = body or {
                "model": "claude-sonnet-5-5",
                "max_tokens": 1024,
                "system": [{"type": "text", "text": f"You are {name}."}],
            }
            # The agent's request marks its message as a cache breakpoint, as ours does; the plain one sends text.
            user: Any = [{"type": "text", "text": task, "cache_control": {"type": "ephemeral"}}] if body else task
            async with client.messages.stream(**request | {"messages": [{"role": "user", "content": user}]}) as stream:
                message = await stream.get_final_message()
            return "".join(b.text for b in message.content if b.type == "text")

        async def tool_with_roots(
            task: str,
            roots: Annotated[types.ListRootsResult, Resolve(want_roots)],
            context: str | None = None,
            files: list[str] | None = None,
        ) -> str:
            _ = [str(root.uri) for root in roots.roots]  # read, as a server confined to them would; no sandbox here
            return await tool(task, context, files)

        server.add_tool(
            tool_with_roots if roots else tool,
            name=name,
            description=f"The {name} specialist. Give it a self-contained task.",
        )

    for name in tool_names(count):
        make(name)
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tools", type=int, default=4)
    parser.add_argument("--forward", action="store_true")
    parser.add_argument("--body", type=Path, help="the Messages request to send (JSON), the task as its message")
    parser.add_argument("--roots", action="store_true", help="each call also reads the client's roots")
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = build(args.tools, args.forward, json.loads(args.body.read_text()) if args.body else None, args.roots)
    if args.transport == "http":
        server.run("streamable-http", host="127.0.0.1", port=args.port, streamable_http_path="/mcp")
    else:
        server.run()


if __name__ == "__main__":
    main()
