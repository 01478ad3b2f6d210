"""The agents' part of the MCP surface: a tool and a prompt per agent, or catalog mode's `delegate` and
`list_agents` with one prompt. Built at start-up, and again on each reload (live.py)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.prompts.base import Prompt
from mcp.server.mcpserver.tools.base import Tool

from subagents.app import Subagents
from subagents.mcp.agent_tools import agent_prompts, agent_tools
from subagents.mcp.catalog_tools import catalog_mode, catalog_prompts, catalog_tools


@dataclass(frozen=True)
class AgentSurface:
    tools: list[Tool]
    prompts: list[Prompt]
    catalog: bool  # catalog mode: delegate and list_agents

    def tool_listing(self) -> list[tuple[Any, ...]]:
        """What tools/list shows of these tools: a change here is worth telling clients."""
        return [(t.name, t.description, t.annotations, t.parameters) for t in self.tools]

    def prompt_listing(self) -> list[tuple[Any, ...]]:
        return [(p.name, p.description) for p in self.prompts]


def agent_surface(app: Subagents) -> AgentSurface:
    """The tools and prompts for the app's current catalog."""
    specs = sorted(app.catalog.agents.values(), key=lambda s: s.name)
    catalog = catalog_mode(app)
    tools = catalog_tools(app, specs) if catalog else agent_tools(app, specs)
    return AgentSurface(tools, catalog_prompts() if catalog else agent_prompts(specs), catalog)


def swap_surface(server: MCPServer, old: AgentSurface, new: AgentSurface) -> None:
    """Serve `new` in place of `old`, in one step (no await: no request sees half of it). The server's own
    tools stay, and keep their names: an agent cannot take one (names.py reserves them)."""
    # Private: the SDK cannot add a prebuilt Tool after construction, and its add_tool ignores a taken name.
    registry: dict[str, Tool] = server._tool_manager._tools
    gone = {tool.name for tool in old.tools}
    own = {name: tool for name, tool in registry.items() if name not in gone}
    registry.clear()
    registry.update({tool.name: tool for tool in new.tools if tool.name not in own} | own)
    for prompt in old.prompts:
        server.remove_prompt(prompt.name)
    for prompt in new.prompts:
        server.add_prompt(prompt)
