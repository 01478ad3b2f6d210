"""`pipeline`: agents in sequence. Every stage gets the caller's task word for word (no telephone game), its
own part in it, and the previous stage's output (and diff, for a writing agent) as context."""

from __future__ import annotations

from typing import Any

from subagents.app import RunOutcome
from subagents.orchestration.args import PipelineArgs
from subagents.orchestration.base import Body, PatternRun, PatternStatus, fenced, joined
from subagents.orchestration.runner import PatternDef

HANDOFF_CHARS = 40_000  # the most of one stage's output the next stage gets; the whole is in its run record


def handoff(stage: int, previous: RunOutcome) -> str:
    """The previous stage's output, bounded, as data for the next stage."""
    text = previous.report
    if len(text) > HANDOFF_CHARS:
        text = f"{text[:HANDOFF_CHARS]}\n[cut at {HANDOFF_CHARS} characters; the whole output is run {previous.run_id}]"
    parts = [fenced("previous-stage", text, number=stage, agent=previous.agent)]
    if previous.diff:
        parts.append(fenced("previous-stage-diff", previous.diff[:HANDOFF_CHARS]))
    return "\n\n".join(parts)


def stage_task(task: str, number: int, total: int, instruction: str | None) -> str:
    part = instruction or "Do your part of the task below, building on the previous stage's output in the context."
    return f"{task}\n\n(You are stage {number} of {total} in a pipeline. Your part: {part})"


async def pipeline(run: PatternRun, args: PipelineArgs) -> Body:
    stages = args.parsed_stages()
    previous: RunOutcome | None = None
    done: list[dict[str, Any]] = []
    for number, (agent, instruction) in enumerate(stages, start=1):
        context = joined(args.context, handoff(number - 1, previous) if previous else None)
        task = stage_task(args.task, number, len(stages), instruction)
        outcome = await run.child(agent, f"stage {number}", task, context=context, files=args.files)
        done.append({"stage": number, "agent": agent, "run_id": outcome.run_id, "status": outcome.status})
        if outcome.status != "completed":
            skipped = [{"stage": n, "agent": a} for n, (a, _) in enumerate(stages, start=1) if n > number]
            error = f"Stage {number} ({agent}) did not finish ({outcome.status}): {outcome.error}"
            partial = f"\n\nLast completed stage's output:\n{previous.report}" if previous else ""
            status: PatternStatus = "budget_exceeded" if outcome.status == "budget_exceeded" else "failed"
            result: dict[str, Any] = {"stages": done, "skipped": skipped}
            return Body(status, f"Error: {error}{partial}", result, error=error, error_kind=outcome.error_kind)
        previous = outcome
    assert previous is not None
    # A writing stage's changes come back as its diff; later stages see it as context, not applied.
    diffs = [c.outcome.run_id for c in run.children if c.outcome.diff]
    return Body("completed", previous.report, {"stages": done, "diffs_in": diffs}, main_run_id=previous.run_id)


def _agents(args: PipelineArgs) -> list[str]:
    return [agent for agent, _ in args.parsed_stages()]


DEFINITION = PatternDef(
    name="pipeline", args=PipelineArgs, body=pipeline, planned=lambda args: len(args.stages), agents=_agents
)
