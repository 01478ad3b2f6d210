"""`fan_out`: the same task to several agents, or N samples of one, at once; optionally a blind judge.

The API refuses `temperature`, so samples differ by instruction: each is told it works independently and
given a different angle to start from. A child that fails or times out does not sink the rest."""

from __future__ import annotations

from typing import Any

import anyio

from subagents.app import RunOutcome
from subagents.orchestration.args import FanOutArgs
from subagents.orchestration.base import Body, PatternRun, PatternStatus, failed_children, joined
from subagents.orchestration.judge import JUDGE, Candidate, judge
from subagents.orchestration.runner import PatternDef

ANGLES = (
    "Take the approach you would normally take.",
    "Start from the part of the task that looks least obvious, and work outwards from it.",
    "Be sceptical first: look for what would make the expected answer wrong before you build on it.",
    "Work backwards from what a complete answer must contain, then check each part.",
    "Start from the edges: unusual inputs, error paths and boundaries, then the main path.",
    "Prefer the simplest explanation or solution that fits all of the evidence, and test it.",
    "Go wide before deep: survey everything in scope briefly, then dig into what matters most.",
    "Assume the first idea is wrong: find two alternatives and keep the one the evidence supports.",
)


def sample_note(index: int, samples: int) -> str:
    """What makes sample `index` (0-based) of `samples` its own attempt."""
    angle = ANGLES[index % len(ANGLES)]
    return (
        f"<sample>You are attempt {index + 1} of {samples}, made independently of the others; nobody will "
        f"merge them, so give a complete answer of your own. {angle}</sample>"
    )


async def fan_out(run: PatternRun, args: FanOutArgs) -> Body:
    plan = [(agent, k) for agent in args.agents for k in range(args.samples)]
    outcomes: list[RunOutcome | None] = [None] * len(plan)

    async def one(i: int) -> None:
        agent, k = plan[i]
        note = sample_note(k, args.samples) if args.samples > 1 else None
        role = f"candidate {i + 1}"
        outcomes[i] = await run.child(agent, role, args.task, context=joined(args.context, note), files=args.files)

    async with anyio.create_task_group() as tg:
        for i in range(len(plan)):
            tg.start_soon(one, i)
    done = [o for o in outcomes if o is not None]
    completed = [o for o in done if o.status == "completed"]
    result: dict[str, Any] = {
        "candidates": [{"agent": o.agent, "run_id": o.run_id, "status": o.status} for o in done],
        "failed": failed_children(run.children),
    }
    status: PatternStatus = "completed" if completed else "failed"
    if not args.judge:
        return Body(status, _listing(done), result, error=None if completed else "Every candidate failed.")
    return await _judged(run, args, completed, result)


async def _judged(run: PatternRun, args: FanOutArgs, completed: list[RunOutcome], result: dict[str, Any]) -> Body:
    if len(completed) < 2:
        result["verdict"] = None
        note = f"The judge was not asked: {len(completed)} candidate(s) completed, and judging needs two."
        status: PatternStatus = "completed" if completed else "failed"
        report = completed[0].report if completed else "Every candidate failed."
        main = completed[0].run_id if completed else None
        return Body(status, report, result, main_run_id=main, warnings=[note], error=None if completed else report)
    names = {o.agent for o in completed} | {o.model for o in completed}
    verdict = await judge(
        run,
        args.task,
        [Candidate(o.run_id, o.report) for o in completed],
        names=names,
        files=args.files,
    )
    result["verdict"] = verdict.fields()
    if verdict.winner is not None:
        winner = next(o for o in completed if o.run_id == verdict.winner)
        result["winner"] = {"agent": winner.agent, "run_id": winner.run_id}
        return Body("completed", winner.report, result, main_run_id=winner.run_id)
    if verdict.label is not None:  # NEITHER
        reasoning = (verdict.judge.output or {}).get("reasoning", "")
        return Body("completed", f"The judge chose none of the {len(completed)} candidates: {reasoning}", result)
    warning = f"No verdict: {verdict.problem}. The candidates' reports are in the result."
    return Body("completed", _listing(completed), result, warnings=[warning])


def _listing(done: list[RunOutcome]) -> str:
    ok = sum(o.status == "completed" for o in done)
    lines = [f"{ok} of {len(done)} candidates completed; each report is in children[].report."]
    lines += [f"- candidate {i + 1}: {o.agent} {o.status} ({o.run_id or 'not started'})" for i, o in enumerate(done)]
    return "\n".join(lines)


def _agents(args: FanOutArgs) -> list[str]:
    return [*args.agents, *([JUDGE] if args.judge else [])]


DEFINITION = PatternDef(
    name="fan_out",
    args=FanOutArgs,
    body=fan_out,
    planned=lambda args: len(args.agents) * args.samples + (1 if args.judge else 0),
    agents=_agents,
    width=lambda args: len(args.agents) * args.samples,
)
