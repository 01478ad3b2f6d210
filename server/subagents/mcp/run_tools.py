"""MCP tools and resources for runs: start in the background, poll, cancel, continue, read history."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceNotFoundError
from mcp.server.mcpserver.tools.base import Tool
from mcp.types import CallToolResult, ToolAnnotations
from pydantic import Field

from subagents.app import RunOutcome, Subagents
from subagents.errors import SubagentsError
from subagents.history.records import RunRecord
from subagents.jobs import Job, StartedSink
from subagents.mcp.auth import caller
from subagents.mcp.progress import reporting
from subagents.mcp.results import bound_text, client_name, errors_as_results, progress_sender, result
from subagents.mcp.roots import ClientRoots, client_root_paths
from subagents.orchestration import recorded_summary

RunIdArg = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
MessageArg = Annotated[str, Field(min_length=1, max_length=100_000)]
AgentArg = Annotated[str, Field(min_length=1, max_length=64)]

_RUN_ID = {"type": "string", "description": "The run_id a call returned."}
SCHEMAS: dict[str, dict[str, Any]] = {
    "start_agent": {
        "type": "object",
        "properties": {
            "agent": {"type": "string", "description": "Agent name: its tool's name, or as list_agents gives it."},
            "task": {"type": "string", "description": "The job, self-contained."},
            "context": {"type": "string", "description": "Background."},
            "files": {"type": "array", "items": {"type": "string"}, "description": "Paths to start from."},
        },
        "required": ["agent", "task"],
        "additionalProperties": False,
    },
    "get_run": {
        "type": "object",
        "properties": {"run_id": _RUN_ID},
        "required": ["run_id"],
        "additionalProperties": False,
    },
    "cancel_run": {
        "type": "object",
        "properties": {"run_id": _RUN_ID},
        "required": ["run_id"],
        "additionalProperties": False,
    },
    "continue_run": {
        "type": "object",
        "properties": {"run_id": _RUN_ID, "message": {"type": "string", "description": "The follow-up."}},
        "required": ["run_id", "message"],
        "additionalProperties": False,
    },
}
DESCRIPTIONS = {
    "start_agent": "Start an agent in the background and return its run_id at once. Use it when a call may "
    "outlast your client's tool timeout (Claude Desktop cuts calls at 1-4 minutes); then poll get_run.",
    "get_run": "Status and progress of a run; once it has finished, its report. Works for any run_id, also "
    "after a server restart.",
    "cancel_run": "Cancel a running background run. Its partial work is kept in the run history.",
    "continue_run": "Send a follow-up to an earlier run: the same agent continues its own conversation (its "
    "files read, its findings) and answers. Works after a server restart.",
}


def add_run_tools(server_tools: list[Tool], app: Subagents, *, bound: Callable[[RunOutcome], CallToolResult]) -> None:
    async def start_agent(
        agent: AgentArg,
        task: MessageArg,
        ctx: Context,
        roots: ClientRoots,
        context: str | None = None,
        files: list[str] | None = None,
    ) -> CallToolResult:
        spec = app.agent(agent)  # unknown agent: a clear error now; the run keeps this definition (live reload)
        principal = caller()  # resolved here, in the request; the run holds its slot until it ends

        async def run(job: Job, started: StartedSink) -> RunOutcome:
            return await app.run(
                spec,
                task,
                context=context,
                files=files or (),
                events=job.on_event,
                started=started,
                client=client_name(ctx),
                roots=app.roots_for(client_root_paths(roots)),
                principal=principal,
            )

        job = await app.jobs.start(agent, run, principal=principal)
        return result(
            {
                "run_id": job.run_id,
                "agent": agent,
                "status": "running",
                "next": f"Poll get_run with run_id {job.run_id} until status is not running.",
            }
        )

    # Each read is the caller's: another principal's run answers exactly like an unknown id.
    async def get_run(run_id: RunIdArg) -> CallToolResult:
        principal = caller()
        job = app.jobs.get(run_id, principal)
        if job is not None and not job.done.is_set():
            return result(
                {
                    "run_id": run_id,
                    "agent": job.agent,
                    "status": "running",
                    "progress": job.progress,
                    "turns": job.turn,
                    "max_turns": job.max_turns,
                    "elapsed_s": round(job.elapsed_s, 1),
                }
            )
        if app.store is None and job is not None and job.outcome is not None:
            return bound(job.outcome)
        record = await app.recorder.get(run_id, principal=principal.scope)
        return result(record_view(record, app.settings.max_report_chars))

    async def cancel_run(run_id: RunIdArg) -> CallToolResult:
        principal = caller()
        job = await app.jobs.cancel(run_id, principal)
        if job is None:  # not a background run of this server: ask whichever process executes it
            was_running, record = await app.recorder.request_cancel(run_id, principal=principal.scope)
            if not was_running:
                return result({"run_id": run_id, "status": record.status, "note": "Not running; nothing to cancel."})
            status = "cancelling" if record.status == "running" else record.status
            return result({"run_id": run_id, "status": status})
        status = "cancelled" if job.done.is_set() else "cancelling"
        return result({"run_id": run_id, "status": status})

    async def continue_run(run_id: RunIdArg, message: MessageArg, ctx: Context, roots: ClientRoots) -> CallToolResult:
        async with reporting(progress_sender(ctx), app.settings.heartbeat_s) as reporter:
            outcome = await app.continue_run(
                run_id,
                message,
                events=reporter.event,
                client=client_name(ctx),
                roots=app.roots_for(client_root_paths(roots)),
                principal=caller(),
            )
        return bound(outcome)

    for fn in (start_agent, get_run, cancel_run, continue_run):
        name = fn.__name__
        read_only = name == "get_run"
        tool = Tool.from_function(
            errors_as_results(fn),
            name=name,
            description=DESCRIPTIONS[name],
            annotations=ToolAnnotations(
                read_only_hint=read_only, destructive_hint=False, open_world_hint=not read_only
            ),
        )
        server_tools.append(tool.model_copy(update={"parameters": SCHEMAS[name]}))


def record_view(record: RunRecord, max_chars: int) -> dict[str, Any]:
    view: dict[str, Any] = {
        "run_id": record.id,
        "agent": record.agent,
        "model": record.model,
        "backend": record.backend,
        "billed_to": record.billed_to,
        "status": record.status,
        "turns": record.turns,
        "usage": record.usage.model_dump(),
        "cost_usd": record.cost_usd,
        "stop_reason": record.stop_reason,
        "error": record.error,
        "continued_from": record.continued_from,
        "created_at": record.created_at.isoformat(),
    }
    if record.report is not None:
        view["report"] = bound_text(record.report, max_chars, record.id)
    if (pattern := recorded_summary(record)) is not None:  # a pattern: its fields, its children, their totals
        view |= {k: pattern.get(k) for k in ("result", "children", "warnings")}
        view |= {"pattern": record.agent, "usage": pattern.get("usage"), "cost_usd": pattern.get("cost_usd")}
    return {k: v for k, v in view.items() if v is not None}


def add_run_resources(server: MCPServer, app: Subagents) -> None:
    async def run_transcript(run_id: str) -> str:
        try:
            record = await app.recorder.get(run_id, principal=caller().scope)
        except SubagentsError as exc:
            raise ResourceNotFoundError(str(exc)) from None
        return record.model_dump_json(indent=2)

    async def recent_runs() -> str:
        runs = await app.recorder.list(limit=20, principal=caller().scope)
        return json.dumps([r.model_dump(mode="json") for r in runs], indent=2)

    server.resource(
        "subagents://runs/{run_id}",
        name="run",
        mime_type="application/json",
        description="One run: input, full transcript, report, usage, cost",
    )(run_transcript)
    server.resource(
        "subagents://runs",
        name="recent-runs",
        mime_type="application/json",
        description="The 20 most recent runs, newest first, to find a run_id again",
    )(recent_runs)
