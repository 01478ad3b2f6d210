"""`debate`: a proposer and an independent critic for 1-3 rounds, then the blind judge's verdict.

Round r: the critic tests the current proposal (as a position to test, not an answer to agree with) and
states its own position; the proposer answers the critique with a revised position. The judge then weighs
the final proposal against the critic's final position, anonymised and in random order."""

from __future__ import annotations

from typing import Any

from subagents.app import RunOutcome
from subagents.orchestration.args import DebateArgs
from subagents.orchestration.base import Body, PatternRun, PatternStatus, fenced, joined, restated
from subagents.orchestration.judge import JUDGE, Candidate, judge
from subagents.orchestration.roles import CRITIC, PROPOSER
from subagents.orchestration.runner import PatternDef

CRITIC_TASK = (
    "Test the proposal in the context against the question below. It is a position to test, not an answer "
    "to agree with: check its claims, find what it misses, then state your own position.\n\n{question}"
)


async def debate(run: PatternRun, args: DebateArgs) -> Body:
    question = restated(args.task, "question")
    proposal = await run.child(PROPOSER, "proposer 1", args.task, context=args.context, files=args.files)
    if proposal.status != "completed":
        return _stopped(proposal, None, "the proposer")
    critique: RunOutcome | None = None
    for r in range(1, args.rounds + 1):
        context = joined(args.context, fenced("proposal", proposal.report))
        critique = await run.child(
            CRITIC, f"critic {r}", CRITIC_TASK.format(question=question), context=context, files=args.files
        )
        if critique.status != "completed":
            return _stopped(critique, proposal, f"the critic in round {r}")
        context = joined(
            args.context,
            fenced("your-previous-position", proposal.report),
            fenced("critique", critique.report),
        )
        revised = await run.child(PROPOSER, f"proposer {r + 1}", args.task, context=context, files=args.files)
        if revised.status != "completed":
            return _stopped(revised, proposal, f"the proposer in round {r}")
        proposal = revised
    assert critique is not None  # rounds >= 1
    names = {PROPOSER.name, CRITIC.name, "proposer", "critic", proposal.model, critique.model}
    verdict = await judge(
        run,
        args.task,
        [Candidate(proposal.run_id, proposal.report), Candidate(critique.run_id, critique.report)],
        names=names,
        files=args.files,
    )
    fields = verdict.fields()
    roles = {proposal.run_id: "proposer", critique.run_id: "critic"}
    result: dict[str, Any] = {
        "rounds": args.rounds,
        "positions": {"proposer": proposal.run_id, "critic": critique.run_id},
        "verdict": fields,
        "winner": roles.get(verdict.winner or "", verdict.label),
    }
    if verdict.winner is not None:
        won = proposal if verdict.winner == proposal.run_id else critique
        head = f"Verdict: the {roles[won.run_id]}'s position. Decisive factor: {fields['decisive_factor']}"
        return Body("completed", f"{head}\n\n{won.report}", result, main_run_id=won.run_id)
    if verdict.label is not None:
        report = f"Verdict: NEITHER position holds. {fields['reasoning']}\n\nFinal proposal:\n{proposal.report}"
        return Body("completed", report, result)
    error = f"The debate has no verdict: {verdict.problem}."
    report = f"{error}\n\nFinal proposal:\n{proposal.report}\n\nCritic's position:\n{critique.report}"
    return Body("failed", report, result, error=error, error_kind="judge")


def _stopped(failed: RunOutcome, proposal: RunOutcome | None, who: str) -> Body:
    """A child broke: the debate stops there, with the latest proposal as its partial answer."""
    error = f"The debate stopped: {who} did not finish ({failed.status}): {failed.error}"
    report = f"{error}\n\nLatest proposal:\n{proposal.report}" if proposal else f"Error: {error}"
    status: PatternStatus = "budget_exceeded" if failed.status == "budget_exceeded" else "failed"
    result = {"stopped_at": {"role": who, "run_id": failed.run_id}}
    main = proposal.run_id if proposal else None
    return Body(status, report, result, main_run_id=main, error=error, error_kind=failed.error_kind)


DEFINITION = PatternDef(
    name="debate",
    args=DebateArgs,
    body=debate,
    planned=lambda args: 2 + 2 * args.rounds,
    agents=lambda args: [JUDGE],
)
