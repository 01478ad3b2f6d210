"""The agent tools: one MCP tool per agent (input schema, argument checks, the result shape) and one prompt."""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.mcpserver import Context, Resolve
from mcp.server.mcpserver.prompts.base import Message, Prompt, UserMessage
from mcp.server.mcpserver.tools.base import Tool
from mcp.types import CallToolResult, ListRootsResult, TextContent, ToolAnnotations

from subagents.app import RunOutcome, Subagents
from subagents.definitions.spec import AgentSpec
from subagents.mcp.auth import caller
from subagents.mcp.progress import reporting
from subagents.mcp.results import bound_text, client_name, errors_as_results, progress_sender
from subagents.mcp.roots import client_root_paths, want_roots

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

# Types only here: the limits are checked in `input_problem`, which says what to do instead.
ClientRoots = Annotated[ListRootsResult | None, Resolve(want_roots)]


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
                principal=caller(),
            )
        return to_tool_result(outcome, app.settings.max_report_chars)

    tool = Tool.from_function(
        errors_as_results(call_agent),
        name=spec.name,
        description=tool_description(spec),
        annotations=ToolAnnotations(read_only_hint=not spec.writes, destructive_hint=False, open_world_hint=True),
    )
    return tool.model_copy(update={"parameters": INPUT_SCHEMA})


def tool_description(spec: AgentSpec) -> str:
    """The agent's description, led by a warning when a file from a later layer (say, the repository the user
    opened) replaces an agent of the same name: the client should know whose prompt it is calling."""
    if spec.shadows is None:
        return spec.description[:2000]
    note = f"[{spec.layer} agent from {spec.source}; it replaces the {spec.shadows} agent of this name] "
    return (note + spec.description)[:2000]


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
        "usage": usage,
        "cost_usd": outcome.cost_usd,
    }
    structured = {k: v for k, v in structured.items() if v is not None}
    return CallToolResult(
        content=[TextContent(type="text", text=report)],
        structured_content=structured,
        is_error=outcome.status == "failed",
    )
