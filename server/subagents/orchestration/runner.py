"""Runs one pattern end to end: the guards, its own run record, the children's shared budget, and however it
ends (completed, failed, timed out, cancelled), a recorded status."""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from subagents import telemetry
from subagents.budget import BudgetMeter
from subagents.depth import check_pattern_depth, run_depth
from subagents.events import EventSink, discard
from subagents.history.records import RunRecord
from subagents.jobs import StartedSink
from subagents.messages import Message, TextBlock, Usage
from subagents.orchestration.args import PatternArgs, PatternInputError
from subagents.orchestration.base import (
    PATTERN_MODEL,
    Body,
    ChildRun,
    PatternOutcome,
    PatternRun,
)
from subagents.principals import LOCAL, Principal

if TYPE_CHECKING:
    from subagents.app import Subagents

log = logging.getLogger(__name__)
STOPPED_MID_PATTERN = "The server stopped mid-pattern; the next server on this run store finishes it."


@dataclass(frozen=True)
class PatternDef:
    """One pattern: its arguments, its logic, how many children it plans, and the agents it needs."""

    name: str
    args: type[PatternArgs]
    body: Callable[[PatternRun, Any], Awaitable[Body]]
    planned: Callable[[Any], int]
    agents: Callable[[Any], Sequence[str]]  # catalog agents it calls, checked before anything starts
    width: Callable[[Any], int] = lambda args: 1  # children it runs at once, at most
    needs_store: bool = False  # its state lives in the run store (the team's queue)
    resumable: bool = False  # stopped with the server, it is left interrupted for the next server to finish


async def execute(
    app: Subagents,
    definition: PatternDef,
    args: PatternArgs,
    *,
    events: EventSink = discard,
    roots: Sequence[Path] | None = None,
    started: StartedSink | None = None,
    client: str | None = None,
    parent_id: str | None = None,
    depth: int | None = None,
    rng: random.Random | None = None,
    parent_meter: BudgetMeter | None = None,
    principal: Principal = LOCAL,
    resumed: str | None = None,
) -> PatternOutcome:
    """Run `definition` on `args`; `started` hears the pattern's run id as soon as it exists. The children
    run in `principal`'s slots: as many as run at once are reserved up front, all or none (TooManyRuns).
    `resumed` is the id of an interrupted run of this pattern that this process adopted, to finish it."""
    for name in definition.agents(args):
        app.agent(name)  # an unknown agent is a clear error now, before any run starts
    if definition.needs_store and app.store is None:
        raise PatternInputError(
            f"{definition.name} keeps its tasks in the run store, which is off (--no-store); restart without it."
        )
    depth = run_depth(app.settings, depth)
    check_pattern_depth(app.settings, depth)
    width = max(1, min(definition.width(args), app.settings.pattern_concurrency))
    with (
        app.limiter.reserve(principal, width, for_children=True),
        telemetry.agent_span(definition.name, model=None, pattern=True) as span,
    ):
        outcome = await _execute(
            app,
            definition,
            args,
            events,
            roots,
            started,
            client,
            parent_id,
            depth,
            rng,
            parent_meter,
            principal,
            resumed,
            span,
        )
        usage, turns, cost = outcome.usage, len(outcome.children), outcome.cost_usd
        telemetry.ended(span, status=outcome.status, usage=usage, turns=turns, cost_usd=cost, kind=outcome.error_kind)
        return outcome


async def _execute(
    app: Subagents,
    definition: PatternDef,
    args: PatternArgs,
    events: EventSink,
    roots: Sequence[Path] | None,
    started: StartedSink | None,
    client: str | None,
    parent_id: str | None,
    depth: int,
    rng: random.Random | None,
    parent_meter: BudgetMeter | None,
    principal: Principal,
    resumed: str | None,
    span: telemetry.SpanHandle,
) -> PatternOutcome:
    run_id = resumed or await app.recorder.start(
        agent=definition.name,
        model=PATTERN_MODEL,
        input=args.run_input(),
        continued_from=None,
        client=client,
        principal=principal.scope,
        parent_id=parent_id,
    )
    run = PatternRun(
        app,
        definition.name,
        run_id,
        events=events,
        roots=roots,
        client=client,
        depth=depth,
        planned=definition.planned(args),
        rng=rng or random.SystemRandom(),
        parent_meter=parent_meter,
        principal=principal,
    )
    telemetry.started(span, run_id, parent_id=parent_id)
    try:
        if started is not None:
            await started(run_id)
        if resumed is None:
            await app.recorder.messages(run_id, [_arguments_message(definition.name, args, roots)])
        with anyio.fail_after(app.settings.run_timeout_s):
            body = await definition.body(run, args)
    except BaseException as exc:
        if isinstance(exc, anyio.get_cancelled_exc_class()):
            if definition.resumable and app.jobs.stopping:
                await _left_for_the_next_server(app, run)
            else:
                await _record(app, _outcome(run, _cut_off(run, "cancelled", "The pattern was cancelled.", "cancelled")))
            raise
        if not isinstance(exc, Exception):
            await _record(app, _outcome(run, _cut_off(run, "failed", "The server stopped.", "stopped")))
            raise
        if isinstance(exc, TimeoutError):
            timeout = app.settings.run_timeout_s
            body = _cut_off(run, "failed", f"The pattern took longer than its {timeout:g} s timeout.", "timeout")
        else:
            log.exception("pattern %s (%s) failed with an unexpected error", run_id, definition.name)
            body = _cut_off(run, "failed", f"Internal error: {type(exc).__name__}: {exc}", "internal")
    outcome = _outcome(run, body)
    await _record(app, outcome)
    return outcome


def _cut_off(run: PatternRun, status: Any, message: str, kind: str) -> Body:
    """A pattern that did not reach its own end: what its finished children did, and which were cut off."""
    cut = [{"run_id": r, "role": role, "agent": agent} for r, role, agent in run.in_flight()]
    done = ", ".join(f"{c.role} {c.outcome.status}" for c in run.children) or "no child finished"
    return Body(
        status=status,
        report=f"Error: {message} ({done}.) Each child's partial work is in its run record.",
        result={"cut_off": cut} if cut else {},
        error=message,
        error_kind=kind,
    )


def _outcome(run: PatternRun, body: Body) -> PatternOutcome:
    status = body.status
    if status == "completed" and any(c.outcome.status == "budget_exceeded" for c in run.children):
        status = "budget_exceeded"  # a child was cut short by the shared budget: the result is partial
    return PatternOutcome(
        run_id=run.run_id,
        pattern=run.pattern,
        status=status,
        report=body.report,
        result=body.result,
        children=tuple(run.children),
        main_run_id=body.main_run_id,
        error=body.error,
        error_kind=body.error_kind,
        warnings=tuple(body.warnings) + _child_warnings(run.children),
    )


def _child_warnings(children: Sequence[ChildRun]) -> tuple[str, ...]:
    return tuple(f"{c.role} ({c.outcome.agent}): {c.outcome.warning}" for c in children if c.outcome.warning)


def _arguments_message(pattern: str, args: PatternArgs, roots: Sequence[Path] | None) -> Message:
    payload: dict[str, Any] = {"pattern": pattern, "arguments": args.extras()}
    if roots is not None:  # where its children read: a server that resumes the pattern reads there too
        payload["roots"] = [str(root) for root in roots]
    return Message(role="user", content=(TextBlock(text=json.dumps(payload)),))


def summary(outcome: PatternOutcome) -> dict[str, Any]:
    """What the pattern's own record keeps: its fields and each child's id and role (the children's reports
    and transcripts live in their own records). Totals live here, not in the pattern's usage columns, so
    sums over the store (daily budget, stats) never count a child twice."""
    return {
        "pattern": outcome.pattern,
        "status": outcome.status,
        "result": outcome.result,
        "children": [
            {"role": c.role, "run_id": c.outcome.run_id, "agent": c.outcome.agent, "status": c.outcome.status}
            for c in outcome.children
        ],
        "main_run_id": outcome.main_run_id,
        "usage": outcome.usage.model_dump(),
        "cost_usd": outcome.cost_usd,
        "warnings": list(outcome.warnings),
        "error": outcome.error,
    }


async def _record(app: Subagents, outcome: PatternOutcome) -> None:
    with anyio.CancelScope(shield=True):  # a cancelled pattern must still be recorded
        result = Message(role="assistant", content=(TextBlock(text=json.dumps(summary(outcome))),))
        await app.recorder.messages(outcome.run_id, [result])
        await app.recorder.finish(
            outcome.run_id,
            status=outcome.status,
            report=outcome.report or None,
            error=outcome.error,
            usage=Usage(),
            cost_usd=0.0,
            turns=len(outcome.children),
            stop_reason=outcome.error_kind,
        )


async def _left_for_the_next_server(app: Subagents, run: PatternRun) -> None:
    """A background team on a server that stops: `interrupted`, its queue kept, for the next server to finish."""
    with anyio.CancelScope(shield=True):
        await app.recorder.finish(
            run.run_id,
            status="interrupted",
            report=None,
            error=STOPPED_MID_PATTERN,
            usage=Usage(),
            cost_usd=0.0,
            turns=len(run.children),
            stop_reason="stopped",
        )


def recorded_summary(record: RunRecord) -> dict[str, Any] | None:
    """A pattern record's summary (see `summary`), or None for an agent's record or an unfinished pattern."""
    if record.model != PATTERN_MODEL:
        return None
    for message in reversed(record.transcript):
        if message.role == "assistant":
            try:
                data = json.loads(message.text)
            except ValueError:
                return None
            return data if isinstance(data, dict) else None
    return None


def recorded_arguments(record: RunRecord) -> dict[str, Any]:
    """A pattern's arguments beyond task, context and files, from its first recorded message."""
    found = _recorded_call(record).get("arguments", {})
    return found if isinstance(found, dict) else {}


def recorded_roots(record: RunRecord) -> tuple[Path, ...] | None:
    """Where a pattern's children read, as recorded when it started; None when it used the server's roots."""
    found = _recorded_call(record).get("roots")
    return tuple(Path(p) for p in found if isinstance(p, str)) if isinstance(found, list) else None


def _recorded_call(record: RunRecord) -> dict[str, Any]:
    for message in record.transcript:
        if message.role == "user":
            try:
                data = json.loads(message.text)
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}
    return {}
