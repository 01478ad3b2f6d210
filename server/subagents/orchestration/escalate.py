"""`escalate`: a junior tries up to `attempts` times; a cheap grader scores each attempt against the rubric
and its feedback goes to the next attempt; after the last failure, the senior takes over."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from subagents.app import RunOutcome
from subagents.orchestration.args import EscalateArgs
from subagents.orchestration.base import Body, PatternRun, fenced, joined, restated
from subagents.orchestration.roles import DEFAULT_RUBRIC, GRADER
from subagents.orchestration.runner import PatternDef

ANSWER_CHARS = 30_000  # the most of an attempt the grader (and the next attempt) sees


@dataclass(frozen=True)
class Grade:
    passed: bool
    score: int | None
    feedback: str
    run_id: str | None


def _bounded(text: str) -> str:
    return text if len(text) <= ANSWER_CHARS else f"{text[:ANSWER_CHARS]}\n[cut at {ANSWER_CHARS} characters]"


async def grade(run: PatternRun, args: EscalateArgs, attempt: int, answer: RunOutcome, rubric: str) -> Grade:
    """The grader's fields (never its prose). A grader that cannot grade fails the attempt: escalation is the
    safe side."""
    if answer.status != "completed":
        return Grade(False, None, f"The attempt did not finish ({answer.status}): {answer.error}", None)
    context = joined(restated(args.task, "task"), fenced("rubric", rubric), fenced("answer", _bounded(answer.report)))
    task = "Grade the answer in the context against the rubric, for the task in the context."
    outcome = await run.child(GRADER, f"grader {attempt}", task, context=context, files=args.files)
    out = outcome.output
    if outcome.status != "completed" or out is None:
        why = outcome.error or outcome.warning or "no usable grade"
        return Grade(False, None, f"The grader could not grade this attempt ({why}).", outcome.run_id)
    return Grade(bool(out["pass"]), int(out["score"]), str(out["feedback"]), outcome.run_id)


async def escalate(run: PatternRun, args: EscalateArgs) -> Body:
    rubric = args.rubric or DEFAULT_RUBRIC
    attempts: list[dict[str, Any]] = []
    last: tuple[RunOutcome, Grade] | None = None
    for attempt in range(1, args.attempts + 1):
        retry = None
        if last is not None:
            previous, feedback = (
                fenced("previous-attempt", _bounded(last[0].report)),
                fenced("grader-feedback", last[1].feedback),
            )
            retry = f"{previous}\n\n{feedback}\nFix what the feedback names."
        context = joined(args.context, fenced("rubric", rubric), retry)
        answer = await run.child(args.junior, f"junior {attempt}", args.task, context=context, files=args.files)
        verdict = await grade(run, args, attempt, answer, rubric)
        attempts.append(
            {
                "attempt": attempt,
                "run_id": answer.run_id,
                "status": answer.status,
                "passed": verdict.passed,
                "score": verdict.score,
                "feedback": verdict.feedback,
                "grader_run_id": verdict.run_id,
            }
        )
        if verdict.passed:
            why = f"The junior ({args.junior}) met the rubric on attempt {attempt} (score {verdict.score}/10)."
            result = {"answered_by": "junior", "why": why, "attempts": attempts}
            return Body("completed", answer.report, result, main_run_id=answer.run_id)
        last = (answer, verdict)
    assert last is not None
    tried = f"A junior agent tried this {args.attempts} time(s) and did not meet the rubric."
    note = f"{tried}\n\n{fenced('grader-feedback', last[1].feedback)}"
    context = joined(args.context, fenced("rubric", rubric), note)
    senior = await run.child(args.senior, "senior", args.task, context=context, files=args.files)
    why = f"The junior ({args.junior}) failed {args.attempts} attempt(s); the senior ({args.senior}) took over."
    if senior.status != "completed":
        why += f" The senior did not finish either ({senior.status}): {senior.error}"
    result = {"answered_by": "senior", "why": why, "attempts": attempts, "senior_run_id": senior.run_id}
    return Body(senior.status, senior.report, result, main_run_id=senior.run_id, error=senior.error)


DEFINITION = PatternDef(
    name="escalate",
    args=EscalateArgs,
    body=escalate,
    planned=lambda args: 2 * args.attempts + 1,
    agents=lambda args: [args.junior, args.senior],
)
