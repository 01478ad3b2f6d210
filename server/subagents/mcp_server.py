"""The MCP surface: one tool per agent, agent resources, server instructions; stdio and Streamable HTTP."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer, Resolve
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.server.mcpserver.prompts.base import Message, Prompt, UserMessage
from mcp.server.mcpserver.tools.base import Tool
from mcp.types import CallToolResult, ListRootsResult, TextContent, ToolAnnotations

from subagents import __version__, http_app
from subagents.app import RunOutcome, Subagents
from subagents.definitions.spec import AgentSpec
from subagents.mcp_runs import (
    add_run_resources,
    add_run_tools,
    bound_text,
    client_name,
    errors_as_results,
    progress_sender,
)
from subagents.progress import reporting
from subagents.roots import client_root_paths, want_roots

log = logging.getLogger(__name__)

MAX_TASK_CHARS = 100_000
MAX_CONTEXT_CHARS = 400_000
MAX_FILES = 100

INSTRUCTIONS = """\
Each tool here is a specialist subagent that runs on its own model, with its own system prompt and \
context window, and reads the project through sandboxed read-only tools (Read, Grep, Glob, LS).

Delegating well:
- Call a specialist when its description fits the job; one well-briefed call beats several vague ones.
- `task` must stand alone: the specialist has not seen this conversation. Say the goal, the scope \
(which change, module or question), and what a good answer looks like.
- Put background in `context`: the diff, constraints, what you already know or ruled out.
- Name the files to start from in `files` (paths relative to the project root); the specialist opens \
them itself, so do not paste whole files into `context`.
- Read-only specialists can run in parallel. Do not call the same specialist twice for the same question.

Reading the result: `report` is the specialist's answer. `status` is completed or failed (then `error` \
says why and what to fix). `stop_reason` "max_turns" means it was cut short: narrow the task or ask again. \
`run_id` identifies the run. Check a specialist's claims against the code before acting on them."""

# Hand-written so tools/list stays small: the SDK's generated schema adds titles and anyOf-null noise.
INPUT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "task": {
            "type": "string",
            "maxLength": MAX_TASK_CHARS,
            "description": "The job, self-contained: goal, scope, what done looks like.",
        },
        "context": {
            "type": "string",
            "maxLength": MAX_CONTEXT_CHARS,
            "description": "Background: diff, constraints, earlier findings.",
        },
        "files": {
            "type": "array",
            "items": {"type": "string"},
            "maxItems": MAX_FILES,
            "description": "Paths to start from, relative to the project root.",
        },
    },
    "required": ["task"],
    "additionalProperties": False,
}

# Types only here: the limits are checked in `input_problem`, which says what to do instead.
ClientRoots = Annotated[ListRootsResult | None, Resolve(want_roots)]


def build_server(app: Subagents) -> MCPServer:
    tools = [agent_tool(app, spec) for spec in sorted(app.catalog.agents.values(), key=lambda s: s.name)]
    add_run_tools(tools, app, bound=lambda outcome: to_tool_result(outcome, app.settings.max_report_chars))
    server = MCPServer(
        "subagents", title="subagents", version=__version__, instructions=INSTRUCTIONS, tools=tools, log_level="WARNING"
    )
    add_agent_resources(server, app)
    add_run_resources(server, app)
    for spec in app.catalog.agents.values():
        server.add_prompt(agent_prompt(spec))
    return server


def agent_prompt(spec: AgentSpec) -> Prompt:
    """`/mcp__subagents__security-reviewer <task>` in Claude Code: asks the model to delegate to the agent."""

    def render(task: str) -> list[Message]:
        return [
            UserMessage(
                f"Delegate this to the {spec.name} tool, with a self-contained task and the relevant "
                f"files, then summarise what it reports:\n\n{task}"
            )
        ]

    first_line = spec.description.split(". ")[0][:200]
    return Prompt.from_function(render, name=spec.name, description=f"Delegate to {spec.name}: {first_line}")


def agent_tool(app: Subagents, spec: AgentSpec) -> Tool:
    async def call_agent(
        task: str, ctx: Context, roots: ClientRoots, context: str | None = None, files: list[str] | None = None
    ) -> CallToolResult:
        if problem := input_problem(task, context, files or []):
            return error_result(problem)
        async with reporting(progress_sender(ctx), app.settings.heartbeat_s) as reporter:
            outcome = await app.run(
                spec.name,
                task,
                context=context,
                files=files or (),
                events=reporter.event,
                client=client_name(ctx),
                roots=app.roots_for(client_root_paths(roots)),
            )
        return to_tool_result(outcome, app.settings.max_report_chars)

    tool = Tool.from_function(
        errors_as_results(call_agent),
        name=spec.name,
        description=spec.description[:2000],
        annotations=ToolAnnotations(read_only_hint=not spec.writes, destructive_hint=False, open_world_hint=True),
    )
    return tool.model_copy(update={"parameters": INPUT_SCHEMA})


def input_problem(task: str, context: str | None, files: list[str]) -> str | None:
    """What is wrong with a call's input, said so the caller can fix it; None when it is fine."""
    if not task.strip():
        return "`task` is empty: say what the specialist should do, the scope, and what a good answer looks like."
    if len(task) > MAX_TASK_CHARS:
        return (
            f"`task` is {len(task)} characters; the limit is {MAX_TASK_CHARS}. Keep the task short, put "
            "background in `context`, and name files in `files` instead of pasting them."
        )
    if context is not None and len(context) > MAX_CONTEXT_CHARS:
        return (
            f"`context` is {len(context)} characters; the limit is {MAX_CONTEXT_CHARS}. Name the files in "
            "`files`: the specialist reads them itself."
        )
    if len(files) > MAX_FILES:
        return f"`files` names {len(files)} paths; the limit is {MAX_FILES}. Name the ones to start from."
    bad = next((f for f in files if not f.strip() or len(f) > 4096 or "\x00" in f), None)
    if bad is not None:
        return f"`files` has an unusable path {bad[:80]!r}: give paths relative to the project root."
    return None


def error_result(message: str) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=message)],
        is_error=True,
        structured_content={"status": "error", "error": message},
    )


def to_tool_result(outcome: RunOutcome, max_chars: int) -> CallToolResult:
    """The report first: Claude Code shows its model only this JSON, so it leads, and metadata stays small."""
    report = bound_text(outcome.report, max_chars, outcome.run_id)
    usage = {k: v for k, v in outcome.usage.model_dump().items() if v or k in ("input_tokens", "output_tokens")}
    structured: dict[str, Any] = {
        "report": report,
        "status": outcome.status,
        "agent": outcome.agent,
        "model": outcome.model,
        "run_id": outcome.run_id,
        "turns": outcome.turns,
        "stop_reason": outcome.stop_reason,
        "error": outcome.error,
        "error_kind": outcome.error_kind,
        "diff": bound_text(outcome.diff, max_chars, outcome.run_id) if outcome.diff else None,
        "continued_from": outcome.continued_from,
        "usage": usage,
        "cost_usd": outcome.cost_usd,
    }
    structured = {k: v for k, v in structured.items() if v is not None}
    return CallToolResult(
        content=[TextContent(type="text", text=report)],
        structured_content=structured,
        is_error=outcome.status == "failed",
    )


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
                    "tools": list(app.tool_names(s)),
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


async def serve_stdio(app: Subagents) -> None:
    server = build_server(app)
    async with app, anyio.create_task_group() as tg:
        tg.start_soon(stop_on_signal, tg.cancel_scope, app)
        await server.run_stdio_async()
        tg.cancel_scope.cancel()


async def stop_on_signal(scope: anyio.CancelScope, app: Subagents, grace_s: float = 3.0) -> None:
    """SIGTERM / SIGINT cancel every run (each records itself as cancelled), then stop the server.

    The SDK reads stdin in a worker thread that cancellation cannot interrupt, so if that read still
    blocks after `grace_s`, the process exits anyway: the runs were recorded by then."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("received %s; stopping", signal.Signals(signum).name)
            app.jobs.cancel_all()
            scope.cancel()
            timer = threading.Timer(grace_s, os._exit, args=(0,))
            timer.daemon = True
            timer.start()
            return


async def serve_http(app: Subagents, security: http_app.HttpSecurity, port: int) -> None:
    server = build_server(app)
    async with app:
        await http_app.serve_http(server, security, port)
