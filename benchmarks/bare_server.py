"""Baseline for cold-start comparisons: a plain mcp 2.3 MCPServer with four tools shaped like ours
(task/context/files in, a string out), and nothing else. `python benchmarks/bare_server.py` serves stdio."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

server = MCPServer("bare", log_level="WARNING")


def make(name: str) -> None:
    async def tool(task: str, context: str | None = None, files: list[str] | None = None) -> str:
        return f"{name}: {task}"

    server.add_tool(tool, name=name, description=f"The {name} specialist. Give it a self-contained task.")


for agent in ("security-reviewer", "test-writer", "router", "debate-judge"):
    make(agent)

if __name__ == "__main__":
    server.run()
