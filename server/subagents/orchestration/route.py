"""`route`: the router picks one specialist (or none), then that specialist does the work.

One router run, never a loop: a route that is not a candidate, `router` itself, low confidence or an answer
that is not the router's JSON all end as `none`, with the reason."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from subagents.app import RunOutcome
from subagents.orchestration.args import PatternInputError, RouteArgs
from subagents.orchestration.base import Body, PatternRun, PatternStatus, joined, restated
from subagents.orchestration.runner import PatternDef

ROUTER = "router"
MIN_CONFIDENCE = 0.5  # the router's own prompt: below this, it should say none
DESCRIPTION_CHARS = 300


class Decision(BaseModel):
    model_config = ConfigDict(frozen=True)

    route: str  # a candidate's name, or "none"
    confidence: float
    reason: str
    task: str  # the task as the router rewrote it for the specialist

    @classmethod
    def none(cls, reason: str, task: str, confidence: float = 0.0) -> Decision:
        return cls(route="none", confidence=confidence, reason=reason, task=task)


def candidates(run: PatternRun, args: RouteArgs) -> list[str]:
    """The names the router may pick: the caller's list, else every agent in the catalog but the router."""
    names = list(args.candidates) if args.candidates else sorted(run.app.catalog.agents)
    return [n for n in dict.fromkeys(names) if n != ROUTER]


def decide(outcome: RunOutcome, names: Sequence[str], task: str) -> Decision:
    """The router's decision from its JSON fields, checked: anything unusable becomes `none` and says why."""
    if outcome.status != "completed":
        return Decision.none(f"The router did not finish ({outcome.status}): {outcome.error}", task)
    out = outcome.output
    if out is None:
        return Decision.none(f"The router's answer was not its JSON decision ({outcome.warning}).", task)
    route, reason = str(out["route"]).strip(), str(out["reason"]).strip()
    confidence, rewritten = float(out["confidence"]), str(out["task"]).strip() or task
    if route.lower() == "none":
        return Decision.none(reason or "The router found no fitting specialist.", rewritten, confidence)
    if route == ROUTER:
        return Decision.none("The router named itself, which would loop; no specialist was run.", task)
    if route not in names:
        known = ", ".join(names[:12])
        return Decision.none(f"The router named {route[:64]!r}, which is not a candidate ({known}).", task)
    if confidence < MIN_CONFIDENCE:
        why = f"The router's confidence in {route} was {confidence:.2f}, below {MIN_CONFIDENCE}: {reason}"
        return Decision.none(why, task, confidence)
    return Decision(route=route, confidence=confidence, reason=reason, task=rewritten)


async def route(run: PatternRun, args: RouteArgs) -> Body:
    names = candidates(run, args)
    if not names:
        raise PatternInputError("route has no candidates: name at least one agent other than the router.")
    listing = "\n".join(f"- {n} - {run.app.agent(n).description[:DESCRIPTION_CHARS]}" for n in names)
    context = joined(f"Candidates:\n{listing}", args.context and f"Background for the task:\n{args.context}")
    router = await run.child(ROUTER, "router", args.task, context=context, files=args.files)
    decision = decide(router, names, args.task)
    result: dict[str, Any] = {"decision": decision.model_dump(), "candidates": names}
    if decision.route == "none":
        report = f"No specialist was run: {decision.reason}"
        status: PatternStatus = "completed" if router.status == "completed" else "failed"
        return Body(status, report, result, error=None if status == "completed" else router.error)
    # The specialist gets the router's rewrite, with the caller's own words beside it.
    context = joined(restated(args.task), args.context)
    specialist = await run.child(decision.route, "specialist", decision.task, context=context, files=args.files)
    result["specialist_run_id"] = specialist.run_id
    return Body(specialist.status, specialist.report, result, main_run_id=specialist.run_id, error=specialist.error)


def _agents(args: RouteArgs) -> list[str]:
    return [ROUTER, *(args.candidates or ())]


DEFINITION = PatternDef(name="route", args=RouteArgs, body=route, planned=lambda args: 2, agents=_agents)
