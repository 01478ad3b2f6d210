"""The agent tools: one MCP tool per agent (input schema, argument checks, the result shape) and one prompt.

Every agent tool has the same signature and schema, so the SDK's pydantic argument model is built once and
each agent's tool is a copy of that template with its own name, description and function: an agent costs
start-up no more than a bare tool, however many there are."""

from __future__ import annotations

from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.prompts.base import Message, Prompt, UserMessage
from mcp.server.mcpserver.tools.base import Tool
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from subagents.app import RunOutcome, Subagents
from subagents.definitions.spec import AgentSpec
from subagents.grants import ToolGrant
from subagents.mcp.auth import caller
from subagents.mcp.progress import reporting
from subagents.mcp.results import bound_text, client_name, errors_as_results, progress_sender
from subagents.mcp.roots import ClientRoots, client_root_paths

MAX_TASK_CHARS = 100_000
MAX_CONTEXT_CHARS = 400_000
MAX_FILES = 100

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


def delegate_message(agent: str, task: str, via: str) -> list[Message]:
    """What a prompt puts in the client's conversation: delegate `task` to `agent` through the tool `via`."""
    return [
        UserMessage(
            f"Delegate this to the {agent} agent ({via}), with a self-contained task and the relevant "
            f"files, then summarise what it reports:\n\n{task}"
        )
    ]


def agent_prompts(specs: list[AgentSpec]) -> list[Prompt]:
    """`/mcp__subagents__security-reviewer <task>` in Claude Code: asks the model to delegate to the agent.
    One template, copied per agent (the SDK builds a pydantic model per `from_function`)."""

    def template(task: str) -> list[Message]:
        return delegate_message("", task, "")

    def render_for(name: str) -> Any:
        def render(task: str) -> list[Message]:
            return delegate_message(name, str(task), f"the {name} tool")

        return render

    base = Prompt.from_function(template, name="agent", description="")
    prompts = []
    for spec in specs:
        render = render_for(spec.name)
        first_line = spec.description.split(". ")[0][:200]
        prompts.append(
            base.model_copy(
                update={"name": spec.name, "description": f"Delegate to {spec.name}: {first_line}", "fn": render}
            )
        )
    return prompts


def run_agent_call(app: Subagents) -> Any:
    """The body every agent tool shares: check the input, run the agent with progress, shape the result."""

    async def call(
        agent: str, task: str, ctx: Context, roots: ClientRoots, context: str | None, files: list[str] | None
    ) -> CallToolResult:
        if problem := input_problem(task, context, files or []):
            return error_result(problem)
        async with reporting(progress_sender(ctx), app.settings.heartbeat_s) as reporter:
            outcome = await app.run(
                agent,
                task,
                context=context,
                files=files or (),
                events=reporter.event,
                client=client_name(ctx),
                roots=app.roots_for(client_root_paths(roots)),
                principal=caller(),
            )
        return to_tool_result(outcome, app.settings.max_report_chars)

    return call


def agent_tools(app: Subagents, specs: list[AgentSpec]) -> list[Tool]:
    """One tool per agent, each a copy of one template: the argument model is built once, not per agent."""
    call = run_agent_call(app)

    def for_agent(name: str) -> Any:
        async def call_agent(
            task: str, ctx: Context, roots: ClientRoots, context: str | None = None, files: list[str] | None = None
        ) -> CallToolResult:
            return await call(name, task, ctx, roots, context, files)  # type: ignore[no-any-return]

        return errors_as_results(call_agent)

    template = Tool.from_function(for_agent(""), name="agent", description="")
    tools = []
    for spec in specs:
        grant = app.grant(spec)
        annotations = ToolAnnotations(read_only_hint=not grant.writes, destructive_hint=False, open_world_hint=True)
        update = {"fn": for_agent(spec.name), "name": spec.name, "description": tool_description(spec, grant)}
        tools.append(template.model_copy(update=update | {"annotations": annotations, "parameters": INPUT_SCHEMA}))
    return tools


def tool_description(spec: AgentSpec, grant: ToolGrant | None = None) -> str:
    """The agent's description, led by a warning when a file from a later layer (say, the repository the user
    opened) replaces an agent of the same name: the client should know whose prompt it is calling. It ends
    with the tools the agent's file names that it lacks here, in a few words."""
    note = grant.note() if grant is not None else ""
    room = 2000 - (len(note) + 2 if note else 0)
    lead = (
        ""
        if spec.shadows is None
        else f"[{spec.layer} agent from {spec.source}; it replaces the {spec.shadows} agent of this name] "
    )
    text = (lead + spec.description)[:room]
    return f"{text}\n\n{note}" if note else text


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
    """The report first: Claude Code shows its model only this JSON, so it leads, and metadata stays small.
    An answer that matched the agent's output schema comes as `output`, the JSON object itself, in place of
    its text (unless it is too long: then the bounded text)."""
    report = bound_text(outcome.report, max_chars, outcome.run_id)
    usage = {k: v for k, v in outcome.usage.model_dump().items() if v or k in ("input_tokens", "output_tokens")}
    structured_output = outcome.output is not None and len(outcome.report) <= max_chars
    structured: dict[str, Any] = {
        "output": outcome.output if structured_output else None,
        "report": None if structured_output else report,
        "warning": outcome.warning,
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
        "unavailable_tools": list(outcome.unavailable_tools) or None,
        "usage": usage,
        "cost_usd": outcome.cost_usd,
    }
    structured = {k: v for k, v in structured.items() if v is not None}
    return CallToolResult(
        content=[TextContent(type="text", text=report)],
        structured_content=structured,
        is_error=outcome.status == "failed",
    )
