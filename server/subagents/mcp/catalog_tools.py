"""Catalog mode, for large catalogs: one `delegate` tool and a `list_agents` search, instead of a tool per agent.

A tool per agent costs the client's context about 180 tokens each before any work (200 agents: 36k), and
several clients refuse more than 40-128 tools. In catalog mode tools/list stays the same size however many
agents there are; the client finds an agent by topic and delegates to it by name. It is on past
`CATALOG_THRESHOLD` agents, or with `--catalog-mode on`.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.prompts.base import Message, Prompt
from mcp.server.mcpserver.tools.base import Tool
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from subagents.app import Subagents
from subagents.definitions.spec import AgentSpec
from subagents.mcp.agent_tools import INPUT_SCHEMA, delegate_message, error_result, run_agent_call
from subagents.mcp.results import errors_as_results, result
from subagents.mcp.roots import ClientRoots

CATALOG_THRESHOLD = 20  # more agents than this: catalog mode, unless --catalog-mode says otherwise
NAMES_CHARS = 1200  # agent names in the delegate description (clients cut descriptions at 2 KB)
LIST_DEFAULT, LIST_MAX = 20, 50
LIST_DESCRIPTION_CHARS = 300

DELEGATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "agent": {"type": "string", "maxLength": 256, "description": "The agent's name, as list_agents gives it."},
        **INPUT_SCHEMA["properties"],
    },
    "required": ["agent", "task"],
    "additionalProperties": False,
}
LIST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "query": {
            "type": "string",
            "maxLength": 500,
            "description": "Words to look for in agent names and descriptions, e.g. 'sql injection'. Empty: all.",
        },
        "limit": {"type": "integer", "minimum": 1, "maximum": LIST_MAX, "description": "Most agents to return."},
    },
    "additionalProperties": False,
}
QueryArg = Annotated[str, Field(max_length=500)]
LimitArg = Annotated[int, Field(ge=1, le=LIST_MAX)]


def catalog_mode(app: Subagents) -> bool:
    """True when the server offers `delegate` and `list_agents` rather than a tool per agent."""
    mode = app.settings.catalog_mode
    return mode == "on" or (mode == "auto" and len(app.catalog.agents) > CATALOG_THRESHOLD)


def catalog_tools(app: Subagents, specs: list[AgentSpec]) -> list[Tool]:
    """`delegate` and `list_agents`, over `specs`."""
    call = run_agent_call(app)

    async def delegate(
        agent: str,
        task: str,
        ctx: Context,
        roots: ClientRoots,
        context: str | None = None,
        files: list[str] | None = None,
    ) -> CallToolResult:
        if app.catalog.get(agent) is None:
            return error_result(unknown_agent(agent, specs))
        return await call(agent, task, ctx, roots, context, files)  # type: ignore[no-any-return]

    async def list_agents(query: QueryArg = "", limit: LimitArg = LIST_DEFAULT) -> CallToolResult:
        return result(find_agents(app, specs, query, limit))

    read_only = all(not app.grant(s).writes for s in specs)
    tools = [
        Tool.from_function(
            errors_as_results(delegate),
            name="delegate",
            description=delegate_description(specs),
            annotations=ToolAnnotations(read_only_hint=read_only, destructive_hint=False, open_world_hint=True),
        ),
        Tool.from_function(
            list_agents,
            name="list_agents",
            description=(
                "Find this server's agents by topic: each match gives its name (for delegate), what it does, "
                "and whether it only reads. Words match names and descriptions; best matches first."
            ),
            annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False),
        ),
    ]
    tools[0] = tools[0].model_copy(update={"parameters": DELEGATE_SCHEMA})
    tools[1] = tools[1].model_copy(update={"parameters": LIST_SCHEMA})
    return tools


def delegate_description(specs: list[AgentSpec]) -> str:
    """What delegate does, and the agents' names while they fit."""
    intro = (
        f"Run one of this server's {len(specs)} specialist agents on a task. Each runs on its own model, with "
        "its own prompt and context window, reads the project through sandboxed tools and returns a bounded "
        "report. Find the right one with list_agents, then call delegate with its name. `task` must stand "
        "alone: the agent has not seen this conversation. Agents: "
    )
    names: list[str] = []
    used = 0
    for index, spec in enumerate(specs):
        if used + len(spec.name) + 2 > NAMES_CHARS:
            return intro + ", ".join(names) + f", and {len(specs) - index} more (list_agents finds them)."
        names.append(spec.name)
        used += len(spec.name) + 2
    return intro + (", ".join(names) or "none") + "."


def find_agents(app: Subagents, specs: list[AgentSpec], query: str, limit: int) -> dict[str, Any]:
    """The agents that best match `query` (every agent when it is empty), at most `limit` of them."""
    words = [w for w in query.lower().split() if w][:20]
    scored: list[tuple[int, int, str, AgentSpec]] = []
    for spec in specs:
        name, text = f"{spec.name} {spec.agent_name}".lower(), spec.description.lower()
        in_name = sum(w in name for w in words)
        found = sum(w in name or w in text for w in words)
        if found or not words:
            scored.append((-found, -in_name, spec.name, spec))
    scored.sort(key=lambda entry: entry[:3])
    shown = [_entry(app, spec) for *_, spec in scored[:limit]]
    answer: dict[str, Any] = {"agents": shown, "matches": len(scored), "total_agents": len(specs)}
    if len(scored) > limit:
        answer["more"] = f"{len(scored) - limit} more match; narrow the query or raise limit (at most {LIST_MAX})."
    if words and not scored:
        answer["hint"] = "No agent matches; try fewer or other words, or an empty query to list them all."
    return answer


def _entry(app: Subagents, spec: AgentSpec) -> dict[str, Any]:
    grant = app.grant(spec)
    entry: dict[str, Any] = {
        "name": spec.name,
        "description": spec.description[:LIST_DESCRIPTION_CHARS],
        "read_only": not grant.writes,
    }
    if grant.lacking:
        entry["unavailable_tools"] = [lack.name for lack in grant.lacking]
    if grant.refused:
        entry["runs"] = False
    return entry


def unknown_agent(agent: str, specs: list[AgentSpec]) -> str:
    """No agent of that name: say which names come close, and how to find the right one."""
    close = difflib.get_close_matches(agent, [s.name for s in specs], n=5, cutoff=0.5)
    hint = f" Close names: {', '.join(close)}." if close else ""
    return f"No agent named {agent[:80]!r}.{hint} Find agents with list_agents (a few words about the job)."


def catalog_prompts() -> list[Prompt]:
    """One prompt, `delegate`, rather than one per agent: a menu of hundreds of slash commands helps nobody,
    and each prompt costs start-up."""

    def delegate(agent: str, task: str) -> list[Message]:
        return delegate_message(agent, task, "the delegate tool")

    return [Prompt.from_function(delegate, name="delegate", description="Delegate a task to one of the agents.")]
