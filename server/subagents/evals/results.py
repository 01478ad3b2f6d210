"""What an eval found: each attempt, each case's pass rate with its 95% interval, and the change from a baseline."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, computed_field

from subagents.errors import ConfigError

FORMAT = 1
Z_95 = 1.959964


class Attempt(BaseModel):
    """One run of one case: passed or not, and why not."""

    model_config = ConfigDict(frozen=True)

    repeat: int
    passed: bool
    failures: tuple[str, ...] = ()
    run_id: str | None = None
    status: str | None = None
    error_kind: str | None = None  # why a failed run failed: not_configured, timeout, budget, ...
    turns: int = 0
    score: int | None = None  # the judge's, when the case has a rubric
    judge_run_id: str | None = None
    cost_usd: float | None = 0.0  # the run and its judge; None when a model had no price
    duration_s: float = 0.0
    skipped: str | None = None  # why it did not run (the eval's budget was spent)


def wilson(passes: int, runs: int) -> tuple[float, float]:
    """The 95% Wilson score interval of a pass rate: honest at small N, where models vary most."""
    if runs == 0:
        return 0.0, 1.0
    rate, z2 = passes / runs, Z_95**2
    centre = (rate + z2 / (2 * runs)) / (1 + z2 / runs)
    half = Z_95 * math.sqrt(rate * (1 - rate) / runs + z2 / (4 * runs**2)) / (1 + z2 / runs)
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


class CaseResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    agent: str
    name: str
    file: str
    required_rate: float
    attempts: tuple[Attempt, ...]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def key(self) -> str:
        return f"{self.agent}/{self.name}"

    @computed_field  # type: ignore[prop-decorator]
    @property
    def runs(self) -> int:
        return sum(a.skipped is None for a in self.attempts)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def passes(self) -> int:
        return sum(a.passed for a in self.attempts)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def pass_rate(self) -> float | None:
        return round(self.passes / self.runs, 4) if self.runs else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.passes, self.runs)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        """Every repeat ran and the pass rate reached the case's required rate."""
        return self.runs == len(self.attempts) and (self.pass_rate or 0.0) >= self.required_rate

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_usd(self) -> float | None:
        costs = [a.cost_usd for a in self.attempts if a.skipped is None]
        return None if any(c is None for c in costs) else round(sum(c or 0.0 for c in costs), 6)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def mean_duration_s(self) -> float:
        ran = [a.duration_s for a in self.attempts if a.skipped is None]
        return round(sum(ran) / len(ran), 3) if ran else 0.0

    def reasons(self) -> list[tuple[str, int]]:
        """Why attempts failed, the commonest first, with how many attempts said so."""
        counted = Counter(f for a in self.attempts for f in (a.failures or ((a.skipped,) if a.skipped else ())))
        return counted.most_common()


class EvalRun(BaseModel):
    """One `subagents eval`: the JSON it writes, and the baseline `--compare` reads."""

    model_config = ConfigDict(frozen=True)

    format: int = FORMAT
    model: str  # "fake", or the model the agents ran on ("agent's own" when not overridden)
    repeat: int
    duration_s: float
    cases: tuple[CaseResult, ...]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ok(self) -> bool:
        return all(case.ok for case in self.cases)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost_usd(self) -> float | None:
        costs = [case.cost_usd for case in self.cases]
        return None if any(c is None for c in costs) else round(sum(c or 0.0 for c in costs), 6)


Verdict = Literal["better", "worse", "same", "new", "gone"]


class Change(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    before: float | None
    after: float | None
    verdict: Verdict
    significant: bool = False  # the two 95% intervals do not overlap


def load_baseline(path: Path) -> EvalRun:
    try:
        return EvalRun.model_validate_json(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"--compare {path}: cannot read it ({exc.strerror or exc})") from None
    except ValidationError:
        raise ConfigError(
            f"--compare {path}: not the JSON of an earlier `subagents eval --json`; write one with "
            "`subagents eval FILE --json BASELINE.json`"
        ) from None


def compare(baseline: EvalRun, current: EvalRun) -> list[Change]:
    """Each case's pass rate before and after, in the current run's order, then the cases that are gone."""
    before = {case.key: case for case in baseline.cases}
    changes = []
    for case in current.cases:
        old = before.pop(case.key, None)
        if old is None or old.pass_rate is None or case.pass_rate is None:
            changes.append(
                Change(key=case.key, before=old.pass_rate if old else None, after=case.pass_rate, verdict="new")
            )
            continue
        verdict: Verdict = (
            "better" if case.pass_rate > old.pass_rate else "worse" if case.pass_rate < old.pass_rate else "same"
        )
        apart = case.interval[1] < old.interval[0] or old.interval[1] < case.interval[0]
        changes.append(
            Change(key=case.key, before=old.pass_rate, after=case.pass_rate, verdict=verdict, significant=apart)
        )
    changes += [Change(key=k, before=c.pass_rate, after=None, verdict="gone") for k, c in before.items()]
    return changes
