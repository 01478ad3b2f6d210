"""The pattern tools: one MCP tool per served orchestration pattern, small hand-written schemas, descriptions
that say when a pattern pays for its cost, and a bounded, structured result."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools.base import Tool
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from subagents.app import Subagents
from subagents.errors import ConfigError
from subagents.jobs import Job, StartedSink
from subagents.mcp.auth import caller
from subagents.mcp.progress import reporting
from subagents.mcp.results import bound_text, client_name, errors_as_results, progress_sender, result
from subagents.mcp.roots import ClientRoots, client_root_paths
from subagents.orchestration import PATTERNS, PatternOutcome, run_pattern
from subagents.orchestration.args import (
    MAX_ATTEMPTS,
    MAX_CHILDREN,
    MAX_ROUNDS,
    MAX_SAMPLES,
    MAX_STAGES,
    MAX_TEAM_TASKS,
    MAX_WORKERS,
)
from subagents.principals import Principal

CONTROL_ROLES = ("router", "judge", "grader")  # their fields are in `result`; their prose is not repeated
MIN_CHILD_CHARS = 1_000

_STR = {"type": "string"}
_NAMES = {"type": "array", "items": _STR}
BASE: dict[str, Any] = {
    "task": {"type": "string", "description": "The job, self-contained: goal, scope, what done looks like."},
    "context": {"type": "string", "description": "Background: diff, constraints, earlier findings."},
    "files": {**_NAMES, "description": "Paths to start from, relative to the project root."},
    "background": {"type": "boolean", "description": "Return a run_id at once; poll get_run."},
}
EXTRA: dict[str, dict[str, Any]] = {
    "route": {"candidates": {**_NAMES, "description": "Agents to choose from (default: all)."}},
    "fan_out": {
        "agents": {**_NAMES, "maxItems": MAX_CHILDREN, "description": "Agents to run; one name for samples."},
        "samples": {"type": "integer", "minimum": 1, "maximum": MAX_SAMPLES, "description": "Runs per agent."},
        "judge": {"type": "boolean", "description": "A blind judge picks the best answer."},
    },
    "debate": {"rounds": {"type": "integer", "minimum": 1, "maximum": MAX_ROUNDS}},
    "pipeline": {
        "stages": {**_NAMES, "maxItems": MAX_STAGES, "description": "In order: 'agent' or 'agent: its part'."}
    },
    "escalate": {
        "junior": {**_STR, "description": "The cheaper agent, tried first."},
        "senior": {**_STR, "description": "The agent that takes over."},
        "rubric": {**_STR, "description": "What a passing answer must do."},
        "attempts": {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS},
    },
    "team": {
        "tasks": {
            "type": "array",
            "maxItems": MAX_TEAM_TASKS,
            "items": {
                "type": "object",
                "properties": {"agent": _STR, "task": _STR},
                "required": ["agent", "task"],
                "additionalProperties": False,
            },
            "description": "Independent tasks, each self-contained, for the named agent.",
        },
        "workers": {"type": "integer", "minimum": 1, "maximum": MAX_WORKERS, "description": "At once (default 3)."},
    },
}
REQUIRED = {
    "route": ["task"],
    "fan_out": ["task", "agents"],
    "debate": ["question"],
    "pipeline": ["task", "stages"],
    "escalate": ["task", "junior", "senior"],
    "team": ["tasks"],
}
BACKGROUND = " background: true returns a run_id at once (poll get_run; cancel_run stops every child)."
DESCRIPTIONS = {
    "route": "Pick the specialist for a vague or queued task, then run it: a small, fast router chooses one agent "
    "(from candidates, or all) and rewrites the task; that agent runs with your task restated beside it. Returns "
    "result.decision (route, confidence, reason) and the specialist's report. One cheap extra call. When you "
    "know which specialist fits, call it directly. route none means no specialist fits: do it yourself.",
    "fan_out": "The same task on several agents, or samples independent attempts of one agent, in parallel on the "
    "server (wall time of about the slowest run); judge: true adds a blind judge that sees the answers "
    "anonymised in random order and picks one or NEITHER. Costs N calls (+ the judge). Worth it for high-stakes "
    "reviews and competing hypotheses, where independent opinions catch what one misses; for routine or quick "
    "work one call is cheaper. Samples differ by an instruction to take an independent approach (no "
    "temperature). A failed run does not sink the rest: result.failed says which and why.",
    "debate": "A proposer answers question, an independent critic tests it and states its own position, the "
    "proposer revises (per round; 1-3, default 1, which captures most of the gain), then a blind judge picks the "
    "stronger position with scores and the decisive factor. About 5x one call's tokens. For decisions where a "
    "wrong answer is costly (a design, a risky fix, a diagnosis); not for look-ups or routine work.",
    "pipeline": "Agents in sequence: each stage gets your task word for word plus the previous stage's output "
    "(and diff) as context, so handoffs do not pass through your context; stops at the first failed stage. Only "
    "when each step needs the one before (review, then tests for the findings); independent steps are faster "
    "as fan_out, and one agent is better when one can do it all.",
    "escalate": "A cheap junior agent first: a fast grader scores each attempt against rubric and its feedback "
    "goes into the next attempt (attempts, default 3); after the last failure the senior agent takes over. "
    "Returns who answered and why. Pays off when the junior usually suffices and the senior costs far more; if "
    "the junior usually fails, call the senior directly.",
    "team": "A queue of independent tasks, each for a named agent, worked by up to workers agents at once on the "
    "server (wall time of about tasks/workers runs); context and files go to every task. The queue is in the "
    "run store: a restarted server finishes it, retrying an interrupted task once. Costs one call per task and "
    "none of your context per hop. Pays off for many independent tasks (review each module, tests per file); "
    "for tasks that depend on each other use pipeline, and for one or two tasks call the agents directly. A "
    "failed task does not sink the rest: result.tasks says how each ended.",
}


def schema(name: str) -> dict[str, Any]:
    """The tool's input schema: small on purpose, since clients pay for every byte of tools/list."""
    props = dict(BASE)
    if name == "team":  # each task is its own; the team's `task` is only a label, not worth its bytes
        props.pop("task")
    if name == "debate":
        props = {"question": {"type": "string", "description": "The question or decision to debate."}, **props}
        props.pop("task")
    props.update(EXTRA[name])
    return {"type": "object", "properties": props, "required": REQUIRED[name], "additionalProperties": False}


def served(names: Sequence[str]) -> list[str]:
    """The patterns to serve, in the catalog's order; an unknown name is a configuration error."""
    unknown = [n for n in names if n not in PATTERNS]
    if unknown:
        raise ConfigError(f"unknown pattern {unknown[0]!r} in --patterns; use {', '.join(PATTERNS)}, all or none")
    return [n for n in PATTERNS if n in names]


def pattern_tools(app: Subagents) -> list[Tool]:
    return [_tool(app, name) for name in served(app.settings.patterns)]


def _tool(app: Subagents, name: str) -> Tool:
    async def call(ctx: Context, roots: ClientRoots, **arguments: Any) -> CallToolResult:
        arguments = {k: v for k, v in arguments.items() if v is not None}  # absent: the pattern's default
        background = bool(arguments.pop("background", False))
        where = _Where(client_name(ctx), app.roots_for(client_root_paths(roots)), caller())
        if background:
            return await _start(app, name, arguments, where)
        async with reporting(progress_sender(ctx), app.settings.heartbeat_s) as reporter:
            outcome = await run_pattern(
                app,
                name,
                arguments,
                events=reporter.event,
                client=where.client,
                roots=where.roots,
                principal=where.principal,
            )
        return pattern_result(outcome, app.settings.max_report_chars)

    call.__signature__ = _signature(name)  # type: ignore[attr-defined]
    tool = Tool.from_function(
        errors_as_results(call),
        name=name,
        description=DESCRIPTIONS[name] + BACKGROUND,
        annotations=ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True),
    )
    return tool.model_copy(update={"parameters": schema(name)})


def _signature(name: str) -> Any:
    """The SDK builds its argument model from the signature: every schema field, loosely typed (the pattern's
    own model checks them, with clearer messages)."""
    params = [
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context),
        inspect.Parameter("roots", inspect.Parameter.KEYWORD_ONLY, annotation=ClientRoots),
    ]
    for field in schema(name)["properties"]:
        params.append(inspect.Parameter(field, inspect.Parameter.KEYWORD_ONLY, annotation=Any, default=None))
    return inspect.Signature(params, return_annotation=CallToolResult)


@dataclass(frozen=True)
class _Where:
    client: str | None
    roots: tuple[Path, ...]
    principal: Principal


async def _start(app: Subagents, name: str, arguments: dict[str, Any], where: _Where) -> CallToolResult:
    async def run(job: Job, started: StartedSink) -> PatternOutcome:
        return await run_pattern(
            app,
            name,
            arguments,
            events=job.on_event,
            started=started,
            client=where.client,
            roots=where.roots,
            principal=where.principal,
        )

    job = await app.jobs.start(name, run, principal=where.principal)
    return result(
        {
            "run_id": job.run_id,
            "pattern": name,
            "status": "running",
            "next": f"Poll get_run with run_id {job.run_id} until status is not running.",
        }
    )


def pattern_result(outcome: PatternOutcome, max_chars: int) -> CallToolResult:
    """The answer first, then the pattern's fields, then each child's bounded part; the whole of every child's
    report is in subagents://runs/{run_id}."""
    with_reports = [c for c in outcome.children if _shows_report(c.role, c.outcome.run_id, outcome.main_run_id)]
    report = bound_text(outcome.report, max_chars // 2 if with_reports else max_chars, outcome.run_id)
    share = max(MIN_CHILD_CHARS, (max_chars - len(report)) // max(len(with_reports), 1))
    children = [_child_view(c, share, c in with_reports) for c in outcome.children]
    usage = outcome.usage
    structured: dict[str, Any] = {
        "report": report,
        "status": outcome.status,
        "pattern": outcome.pattern,
        "run_id": outcome.run_id,
        "result": outcome.result,
        "children": children,
        "usage": {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
        "cost_usd": outcome.cost_usd,
        "error": outcome.error,
        "warnings": list(outcome.warnings) or None,
    }
    structured = {k: v for k, v in structured.items() if v is not None}
    return CallToolResult(
        content=[TextContent(type="text", text=report)],
        structured_content=structured,
        is_error=outcome.status == "failed",
    )


def _shows_report(role: str, run_id: str, main_run_id: str | None) -> bool:
    return run_id != main_run_id and not role.startswith(CONTROL_ROLES)


def _child_view(child: Any, share: int, with_report: bool) -> dict[str, Any]:
    o = child.outcome
    view: dict[str, Any] = {
        "role": child.role,
        "agent": o.agent,
        "run_id": o.run_id,
        "status": o.status,
        "turns": o.turns,
        "tokens": o.usage.input_tokens + o.usage.output_tokens,
        "cost_usd": o.cost_usd,
        "error": o.error,
    }
    if with_report:
        view["report"] = bound_text(o.report, share, o.run_id)
    return {k: v for k, v in view.items() if v is not None}


def any_result(max_chars: int, bound_run: Callable[[Any], CallToolResult]) -> Callable[[Any], CallToolResult]:
    """A finished background job's outcome as a tool result, whether it was an agent run or a pattern."""

    def bound(outcome: Any) -> CallToolResult:
        return pattern_result(outcome, max_chars) if isinstance(outcome, PatternOutcome) else bound_run(outcome)

    return bound
