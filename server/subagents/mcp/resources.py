"""Agent resources: `subagents://agents` (every agent) and `subagents://agents/{name}` (its markdown)."""

from __future__ import annotations

import json

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError

from subagents.app import Subagents


def add_agent_resources(server: MCPServer, app: Subagents) -> None:
    def agent_markdown(name: str) -> str:
        spec = app.catalog.get(name)
        if spec is None:
            raise ResourceNotFoundError(f"no agent {name!r}; loaded: {', '.join(sorted(app.catalog.agents))}")
        return spec.markdown

    def agent_index() -> str:
        return json.dumps(
            [
                {
                    "name": s.name,
                    "description": s.description,
                    "model": s.model,
                    "tools": list(app.grant(s).tools),
                    "unavailable_tools": [str(lack) for lack in app.grant(s).lacking],
                    "source": str(s.source),
                    "layer": s.layer,
                }
                for s in sorted(app.catalog.agents.values(), key=lambda s: s.name)
            ],
            indent=2,
        )

    server.resource(
        "subagents://agents/{name}",
        name="agent-definition",
        mime_type="text/markdown",
        description="The markdown file that defines an agent",
    )(agent_markdown)
    server.resource(
        "subagents://agents",
        name="agents",
        mime_type="application/json",
        description="Every loaded agent: name, description, model, tools, source file",
    )(agent_index)
