"""The blind judge: candidates under shuffled labels with agent and model names stripped, the debate-judge's
verdict read from its JSON fields, and the labels mapped back to the runs that wrote them."""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from subagents.app import RunOutcome
from subagents.orchestration.base import PatternRun, fenced, restated

JUDGE = "debate-judge"
LABELS = "ABCDEFGHIJKLMNOP"
NEITHER = "NEITHER"
WITHHELD = "[name withheld]"
_MODEL_ID = re.compile(r"\bclaude-[a-z0-9][a-z0-9.-]*", re.IGNORECASE)
_ALIASES = re.compile(r"\b(?:sonnet|opus|haiku|fable)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Candidate:
    key: str  # the run id of the child that wrote it (or its role, when it has none)
    text: str


@dataclass(frozen=True)
class Verdict:
    judge: RunOutcome
    labels: dict[str, str]  # label -> candidate key, in label order: the mapping back
    winner: str | None  # the winning candidate's key; None for NEITHER or an unusable verdict
    label: str | None  # the label the judge chose, or NEITHER
    problem: str | None = None  # why the verdict could not be used

    def fields(self) -> dict[str, Any]:
        """The verdict for a pattern's result: the judge's own fields, with every label mapped back."""
        output = self.judge.output or {}
        scores = [
            {**s, "run_id": self.labels.get(str(s.get("label")))}
            for s in output.get("scores", [])
            if isinstance(s, dict)
        ]
        return {
            "label": self.label,
            "winner_run_id": self.winner,
            "scores": scores,
            "decisive_factor": output.get("decisive_factor"),
            "reasoning": output.get("reasoning"),
            "claims_checked": output.get("claims_checked", []),
            "labels": self.labels,
            "judge_run_id": self.judge.run_id,
            "problem": self.problem,
        }


def scrub(text: str, names: Iterable[str]) -> str:
    """Text with agent names, model ids and model aliases withheld, so a candidate cannot say who wrote it."""
    for name in sorted({n for n in names if len(n) >= 3}, key=len, reverse=True):
        text = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", WITHHELD, text, flags=re.IGNORECASE)
    return _ALIASES.sub(WITHHELD, _MODEL_ID.sub(WITHHELD, text))


def anonymise(
    candidates: Sequence[Candidate], names: Iterable[str], rng: random.Random
) -> tuple[list[tuple[str, str]], dict[str, str]]:
    """(label, scrubbed text) in a shuffled order, and the label -> key mapping back."""
    order = list(range(len(candidates)))
    rng.shuffle(order)
    names = list(names)
    shown = [(LABELS[i], scrub(candidates[index].text, names)) for i, index in enumerate(order)]
    return shown, {LABELS[i]: candidates[index].key for i, index in enumerate(order)}


async def judge(
    run: PatternRun,
    question: str,
    candidates: Sequence[Candidate],
    *,
    names: Iterable[str],
    files: Sequence[str] = (),
    role: str = "judge",
) -> Verdict:
    """Ask the debate-judge to pick one candidate, or NEITHER, without knowing who wrote which."""
    names = list(names)
    shown, labels = anonymise(candidates, names, run.rng)
    # Fenced: a candidate cannot close its own position or pose as another one.
    positions = "\n\n".join(fenced("position", text, label=label) for label, text in shown)
    task = (
        "Decide which position best answers the question below, or NEITHER. The positions are anonymous "
        f"and in random order; judge only what they say.\n\n{restated(scrub(question, names), 'question')}"
    )
    outcome = await run.child(JUDGE, role, task, context=positions, files=files)
    return read_verdict(outcome, labels)


def read_verdict(outcome: RunOutcome, labels: dict[str, str]) -> Verdict:
    """The judge's verdict from its JSON fields (never from its prose)."""
    if outcome.status != "completed":
        return Verdict(outcome, labels, None, None, f"the judge did not finish ({outcome.status}: {outcome.error})")
    if outcome.output is None:
        return Verdict(outcome, labels, None, None, f"the judge's answer was not usable JSON ({outcome.warning})")
    label = str(outcome.output.get("verdict", "")).strip().upper()
    if label == NEITHER:
        return Verdict(outcome, labels, None, NEITHER)
    if label in labels:
        return Verdict(outcome, labels, labels[label], label)
    return Verdict(outcome, labels, None, None, f"the judge's verdict {label[:20]!r} is not one of the labels")
