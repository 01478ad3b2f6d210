"""One agent run end to end: its record, its budget meter, its tools (its own, Task, the API's web tools), the
loop on its backend, and however it ends, a recorded outcome. `Subagents.run` and `continue_run` call
`execute`; app.py is the wiring, this is the run."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
from pydantic import BaseModel, ConfigDict

from subagents import telemetry
from subagents.backends import BackendChoice
from subagents.budget import BudgetMeter
from subagents.definitions.spec import AgentSpec
from subagents.delegation import Delegation
from subagents.depth import run_depth
from subagents.errors import ModelCallError, ModelNotConfiguredError, SubagentsError
from subagents.events import EventSink, RunEvent, discard
from subagents.grants import ToolGrant
from subagents.history.records import RunInput
from subagents.jobs import StartedSink
from subagents.loop import MessageSink, RunResult, run_agent
from subagents.messages import Message, Usage
from subagents.principals import Principal
from subagents.providers.claude_code.runner import ClaudeCodeJob
from subagents.tools.base import Tool
from subagents.tools.registry import Toolbox
from subagents.tools.web import web_tool_specs
from subagents.tools.workspace import Workspace
from subagents.toolset import Toolset, open_toolset

if TYPE_CHECKING:
    from subagents.app import Subagents

log = logging.getLogger(__name__)

RunStatus = Literal["completed", "failed", "cancelled", "budget_exceeded"]


class RunOutcome(BaseModel):
    """What a caller gets back from one agent call, success or not."""

    model_config = ConfigDict(frozen=True)

    run_id: str
    agent: str
    model: str
    status: RunStatus
    report: str
    turns: int = 0
    usage: Usage = Usage()
    cost_usd: float | None = None
    stop_reason: str | None = None
    error: str | None = None
    error_kind: str | None = None
    continued_from: str | None = None
    diff: str | None = None  # a writing agent's changes, to apply with `git apply` in the project root
    output: dict[str, Any] | None = None  # the answer as JSON, for an agent that declares an output schema
    warning: str | None = None  # e.g. the answer did not match the agent's output schema
    parent_id: str | None = None  # the pattern run, or the run that handed it work (Task), it is part of
    backend: str | None = None  # anthropic or claude-code
    billed_to: str | None = None  # who pays for the run, in words
    unavailable_tools: tuple[str, ...] = ()  # tools the agent's file names that it did not get here


@dataclass(frozen=True)
class Nesting:
    """Where a run sits in a delegation chain; a client's call has the defaults."""

    parent_id: str | None = None  # the pattern's run, or the run that handed it work with Task
    depth: int | None = None  # None: a client's call (depth.py)
    meter: BudgetMeter | None = None  # the parent's meter: the run's turns count against it too
    workspace: Workspace | None = None  # a writing parent's isolated copy, which a Task child works in


async def execute(
    app: Subagents,
    spec: AgentSpec,
    conversation: list[Message],
    run_input: RunInput,
    *,
    events: EventSink,
    roots: Sequence[Path] | None,
    started: StartedSink | None,
    client: str | None,
    principal: Principal,
    continued_from: str | None = None,
    nesting: Nesting = Nesting(),
) -> RunOutcome:
    """Record a new run of `spec` on `conversation`, run it, and record how it ended, whatever happens."""
    model = app.resolver.resolve(spec.model)
    with telemetry.agent_span(spec.name, model=model) as span:
        meter = BudgetMeter(app.budget(spec, principal), app.prices, parent=nesting.meter)
        await meter.refresh(app.spent_today)
        choice = await app.backend_for(spec)
        depth = run_depth(app.settings, nesting.depth)
        run_id = await app.recorder.start(
            agent=spec.name,
            model=model,
            input=run_input,
            continued_from=continued_from,
            client=client,
            principal=principal.scope,
            parent_id=nesting.parent_id,
            backend=choice.backend,
            billed_to=choice.billed_to,
            messages=conversation,  # one transaction with the run, before the run spends anything
        )
        grant = app.grant(spec, depth=depth)  # what the tools here are built from
        reported = grant if choice.backend != "claude-code" else app.grant(spec, depth=depth, backend="claude-code")
        base = RunOutcome(
            run_id=run_id,
            agent=spec.name,
            model=model,
            status="failed",
            report="",
            continued_from=continued_from,
            parent_id=nesting.parent_id,
            backend=choice.backend,
            billed_to=choice.billed_to,
            unavailable_tools=tuple(lack.name for lack in reported.lacking),
        )
        run = _Run(
            spec=spec,
            conversation=conversation,
            base=base,
            model=model,
            meter=meter,
            events=_metered(events, meter),
            choice=choice,
            grant=grant,
            reported=reported,
            principal=principal,
            client=client,
            depth=depth,
            workspace=nesting.workspace,
        )
        telemetry.started(span, run_id, backend=choice.backend, parent_id=nesting.parent_id)
        telemetry.task_content(span, conversation)
        outcome = await _supervised(app, run, conversation, roots, started)
        telemetry.ended(
            span,
            status=outcome.status,
            usage=outcome.usage,
            turns=outcome.turns,
            cost_usd=outcome.cost_usd,
            kind=outcome.error_kind,
        )
        log.info("run %s (%s) %s after %d turns", run_id, spec.name, outcome.status, outcome.turns)
        return outcome


async def _supervised(
    app: Subagents,
    run: _Run,
    conversation: list[Message],
    roots: Sequence[Path] | None,
    started: StartedSink | None,
) -> RunOutcome:
    """Run it; however it ends (an unexpected error, cancellation, a stopping server), record how."""
    run_id, spec, meter = run.base.run_id, run.spec, run.meter
    try:
        if started is not None:
            await started(run_id)

        progress = run.progress  # not `run`: the run holds this function, and a cycle waits for the collector

        async def on_messages(messages: Sequence[Message]) -> None:
            progress.add(messages)
            await app.recorder.record_turn(
                run_id, messages, turns=progress.turns, usage=meter.usage, cost_usd=meter.cost_usd
            )
            await meter.refresh(app.spent_today)  # what the runs on every replica spent meanwhile

        run.on_messages = on_messages
        with app.recorder.cancellable(run_id) as asked:  # cancel_run from another process, via the store
            outcome = await _guarded(app, run, roots)
        if asked.cancelled_caught:
            ended = _ended(run.partial(), "cancelled", "The run was cancelled.", "cancelled")
            outcome = ended.model_copy(update={"stop_reason": "cancelled"})
    except BaseException as exc:
        # Nothing is lost: however the run ends, it ends with a recorded status and the reason.
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            ended = _ended(run.partial(), "cancelled", "The run was cancelled.", "cancelled")
            await _record(app, ended.model_copy(update={"stop_reason": "cancelled"}))
            raise
        if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit: record, then let it stop us
            await _record(
                app, _ended(run.partial(), "failed", f"The server stopped ({type(exc).__name__}).", "stopped")
            )
            raise
        log.exception("run %s (%s) failed with an unexpected error", run_id, spec.name)
        detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        message = f"Internal error: {detail}. The server's log has the traceback."
        outcome = _ended(run.partial(), "failed", message, "internal")
    await _record(app, outcome)
    return outcome


async def _record(app: Subagents, outcome: RunOutcome) -> None:
    await app.recorder.finish(
        outcome.run_id,
        status=outcome.status,
        report=outcome.report or None,
        error=outcome.error,
        usage=outcome.usage,
        cost_usd=outcome.cost_usd,
        turns=outcome.turns,
        stop_reason=outcome.stop_reason,
        diff=outcome.diff,
    )


async def _guarded(app: Subagents, run: _Run, roots: Sequence[Path] | None) -> RunOutcome:
    """Run the loop; every way it can end becomes an outcome (cancellation is recorded, then re-raised)."""
    if reason := run.meter.exceeded():
        return _ended(run.base, "budget_exceeded", f"Not started: {reason}.", "budget")
    limits = app.limits(run.spec)
    if unpriced := app.unpriced((run.model, limits.fallback_model, app.settings.fallback_model)):
        message = (
            f"Not started: model {unpriced!r} has no price in this server's price table, so the cost budget "
            "(--max-cost / --daily-budget) could not be enforced. Add its price with --prices FILE, or "
            "choose a priced model."
        )
        return _ended(run.base, "failed", message, "unpriced_model")
    if run.reported.refused:
        return _ended(run.base, "failed", run.reported.refusal(run.spec.name), "tools_unavailable")
    run_roots = tuple(roots or app.roots())
    async with AsyncExitStack() as stack:
        local = [t for t in run.grant.local if t != run.grant.delegation]
        try:
            toolset = await stack.enter_async_context(
                open_toolset(
                    local,
                    run_roots,
                    app.settings.bash,
                    allow_hardlinks=app.settings.allow_hardlinks,
                    shared=run.workspace,
                )
            )
        except (SubagentsError, ValueError) as exc:
            return _ended(run.base, "failed", f"The agent's file tools cannot be set up: {exc}", "config")
        outcome = await _loop(app, run, toolset, run_roots)
        if outcome.status == "cancelled":
            return outcome
        try:
            changes = await toolset.changes()
        except SubagentsError as exc:
            return _ended(outcome, "failed", f"The agent's changes could not be collected: {exc}", "diff")
        if changes is None:
            return outcome
        report = "\n\n".join(filter(None, (outcome.report, changes.note)))
        return outcome.model_copy(update={"diff": changes.diff, "report": report})


async def _loop(app: Subagents, run: _Run, toolset: Toolset, roots: tuple[Path, ...]) -> RunOutcome:
    spec = run.spec
    timeout = app.timeout_s(spec)
    try:
        with anyio.fail_after(timeout):
            if run.choice.require() == "claude-code":
                result = await _claude_code(app, run, toolset, roots)
            else:
                result = await run_agent(
                    spec,
                    run.conversation,
                    model=run.model,
                    provider=app.provider,
                    tools=_toolbox(app, run, toolset),
                    limits=app.limits(spec),
                    events=run.events,
                    on_messages=run.on_messages,
                    guard=run.meter,
                )
    except ModelNotConfiguredError as exc:
        return _ended(run.base, "failed", str(exc), "not_configured")
    except ModelCallError as exc:
        return _ended(run.partial(), "failed", str(exc), exc.kind)
    except TimeoutError:
        message = f"The run took longer than its {timeout:g} s timeout and was stopped."
        return _ended(run.partial(), "failed", message, "timeout")
    return _completed(run.base, result, run.meter)


def _toolbox(app: Subagents, run: _Run, toolset: Toolset) -> Toolbox:
    """The run's own tools, then its Task tool (when it may delegate), then the API's web tools."""
    extra: dict[str, Tool] = {}
    if run.grant.delegation is not None:
        delegation = Delegation(
            app,
            run_id=run.base.run_id,
            depth=run.depth,
            grant=run.grant,
            toolset=toolset,
            meter=run.meter,
            events=run.events,
            principal=run.principal,
            client=run.client,
        )
        extra[run.grant.delegation] = delegation.tool()
        run.events = delegation.parent_event
    return toolset.toolbox.extended(extra, web_tool_specs(run.grant.web, app.settings.web))


async def _claude_code(app: Subagents, run: _Run, toolset: Toolset, roots: tuple[Path, ...]) -> RunResult:
    """The run as a Claude Code session, in the writer's isolated copy or on the roots."""
    assert app.backends is not None and app.backends.claude_code is not None  # chosen only when there
    workspace = toolset.workspace
    job = ClaudeCodeJob(
        spec=run.spec,
        conversation=run.conversation,
        model=run.model,
        limits=app.limits(run.spec),
        roots=(workspace.path,) if workspace is not None else roots,
        writes=workspace is not None,
        run_id=run.base.run_id,
        continued_from=run.base.continued_from,
        depth=run.depth,
        events=run.events,
        on_messages=run.on_messages,
        guard=run.meter,
    )
    return await app.backends.claude_code.run(job)


class _Progress:
    """What the loop has produced so far, for partial reports."""

    def __init__(self) -> None:
        self.turns = 0
        self.last_text = ""

    def add(self, messages: Sequence[Message]) -> None:
        for message in messages:
            if message.role == "assistant":
                self.turns += 1
                if message.text.strip():
                    self.last_text = message.text.strip()


@dataclass
class _Run:
    """One run in flight: what the loop needs, and what a partial outcome is built from."""

    spec: AgentSpec
    conversation: list[Message]
    base: RunOutcome
    model: str
    meter: BudgetMeter
    events: EventSink
    choice: BackendChoice
    grant: ToolGrant  # the tools this server builds for it (the API backend's grant)
    reported: ToolGrant  # what it gets on its backend: what it is told it lacks, and refused on
    principal: Principal
    client: str | None
    depth: int
    workspace: Workspace | None  # a writing parent's copy, for a Task child
    progress: _Progress = field(default_factory=lambda: _Progress())
    on_messages: MessageSink | None = None

    def partial(self) -> RunOutcome:
        return self.base.model_copy(
            update={
                "report": self.progress.last_text,
                "turns": self.progress.turns,
                "usage": self.meter.usage,
                "cost_usd": self.meter.cost_usd,
            }
        )


def _completed(base: RunOutcome, result: RunResult, meter: BudgetMeter) -> RunOutcome:
    status: RunStatus = "budget_exceeded" if result.stop_reason == "budget_exceeded" else "completed"
    return base.model_copy(
        update={
            "status": status,
            "report": result.report,
            "turns": result.turns,
            "usage": result.usage,
            "cost_usd": meter.cost_usd,
            "stop_reason": result.stop_reason,
            "output": result.output,
            "warning": result.output_warning,
        }
    )


def _metered(events: EventSink, meter: BudgetMeter) -> EventSink:
    """The run's events, each carrying what the run has used and cost so far (for progress displays)."""
    if events is discard:
        return events

    async def sink(event: RunEvent) -> None:
        await events(event.model_copy(update={"usage": meter.usage, "cost_usd": meter.cost_usd}))

    return sink


def _ended(base: RunOutcome, status: RunStatus, message: str, kind: str) -> RunOutcome:
    if status != "cancelled":
        log.warning("run %s (%s) %s: %s", base.run_id, base.agent, status, message)
    report = f"{base.report}\n\n{message}" if base.report else f"Error: {message}"
    return base.model_copy(update={"status": status, "error": message, "error_kind": kind, "report": report})
