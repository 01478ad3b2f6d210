"""The floor: a plain mcp 2.3 MCPServer with N tools shaped like ours (task/context/files in, text out).

    python benchmarks/bare_server.py [--tools N] [--forward] [--transport stdio|http --port P]

With `--forward`, each call forwards the task to the Messages API (ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY)
with the `anthropic` SDK and returns the answer: the least an MCP server that calls a model can do, so
what our server adds on top of it is our own overhead.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

from mcp.server.mcpserver import MCPServer

NAMES = ("security-reviewer", "test-writer", "router", "debate-judge")


def tool_names(count: int) -> list[str]:
    return list(NAMES[:count]) + [f"agent-{i:03d}" for i in range(max(0, count - len(NAMES)))]


def build(count: int, forward: bool) -> MCPServer:
    server = MCPServer("bare", log_level="WARNING")
    client: Any = None

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
            async with client.messages.stream(
                model="claude-sonnet-5-5",
                max_tokens=1024,
                system=[{"type": "text", "text": f"You are {name}."}],
                messages=[{"role": "user", "content": task}],
            ) as stream:
                message = await stream.get_final_message()
            return "".join(b.text for b in message.content if b.type == "text")

        server.add_tool(tool, name=name, description=f"The {name} specialist. Give it a self-contained task.")

    for name in tool_names(count):
        make(name)
    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tools", type=int, default=4)
    parser.add_argument("--forward", action="store_true")
    parser.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    server = build(args.tools, args.forward)
    if args.transport == "http":
        server.run("streamable-http", host="127.0.0.1", port=args.port, streamable_http_path="/mcp")
    else:
        server.run()


if __name__ == "__main__":
    main()
