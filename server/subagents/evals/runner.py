"""Runs an eval file's cases, each `repeat` times, in parallel under a concurrency cap and one total budget.

Every attempt is a real run of the app, recorded in its run store as an eval run (client "eval"), in a
fresh copy of the case's project; its transcript is read back from the store to see which tools it used.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio

from subagents.app import RunOutcome, Subagents
from subagents.budget import BudgetMeter, RunBudget
from subagents.definitions.spec import AgentSpec
from subagents.errors import ConfigError, ModelNotConfiguredError
from subagents.evals.cases import Case, LoadedEval
from subagents.evals.expectations import Evidence, failures, tools_called
from subagents.evals.judge import judge_spec, judge_task, read_verdict
from subagents.evals.results import Attempt, CaseResult
from subagents.messages import Message

EVAL_CLIENT = "eval"
AttemptSink = Callable[[str, Attempt], None]  # hears each attempt as it ends, by its case's key


@dataclass(frozen=True)
class EvalOptions:
    repeat: int = 1
    concurrency: int = 4
    budget_usd: float | None = None  # for every run of this eval together, judges included
    model: str | None = None  # every agent on this model (alias or id); None: each agent's own
    judge_model: str | None = None  # None: the eval file's, else the server's default model


class EvalRunner:
    """One eval over one app: the budget and the concurrency cap hold across all the files it runs."""

    def __init__(
        self,
        app: Subagents,
        options: EvalOptions,
        on_attempt: AttemptSink | None = None,
        *,
        meter: BudgetMeter | None = None,
    ) -> None:
        """`meter`: the budget an earlier runner of the same eval has spent from (one budget, several files)."""
        self.app = app
        self.options = options
        self.on_attempt = on_attempt
        self.limiter = anyio.CapacityLimiter(options.concurrency)
        self.meter = meter
        if meter is None and options.budget_usd is not None:
            self.meter = BudgetMeter(RunBudget(max_cost_usd=options.budget_usd), app.prices)

    async def run(self, loaded: LoadedEval) -> list[CaseResult]:
        """Every case of the file, each attempt in the order it was asked for."""
        spec = self.app.agent(loaded.spec.agent)  # an unknown agent is said before anything runs
        if self.options.model:
            spec = spec.model_copy(update={"model": self.options.model})
        if self.meter is not None:
            judged = any(case.judge for case in loaded.spec.cases)
            for model in (spec.model, *([self._judge(loaded).model] if judged else [])):
                if self.app.prices.price(resolved := self.app.resolver.resolve(model)) is None:
                    raise ConfigError(
                        f"--budget cannot be enforced: model {resolved!r} has no price in the price table; "
                        "add it with --prices FILE, or run without --budget"
                    )
        attempts: dict[str, list[Attempt]] = {case.name: [] for case in loaded.spec.cases}
        unconfigured: list[str] = []

        async def one(case: Case, repeat: int) -> None:
            async with self.limiter:
                attempt = await self.attempt(loaded, case, spec, repeat)
            attempts[case.name].append(attempt)
            if attempt.error_kind == "not_configured":  # no run can succeed: stop, and say it once
                unconfigured.append(attempt.failures[0])
                tg.cancel_scope.cancel()
            elif self.on_attempt is not None:
                self.on_attempt(f"{loaded.spec.agent}/{case.name}", attempt)

        async with anyio.create_task_group() as tg:
            for repeat in range(1, self.options.repeat + 1):
                for case in loaded.spec.cases:
                    tg.start_soon(one, case, repeat)
        if unconfigured:
            raise ModelNotConfiguredError(unconfigured[0])
        return [
            self._result(loaded, case, sorted(attempts[case.name], key=lambda a: a.repeat))
            for case in loaded.spec.cases
        ]

    def _result(self, loaded: LoadedEval, case: Case, attempts: list[Attempt]) -> CaseResult:
        return CaseResult(
            agent=loaded.spec.agent,
            name=case.name,
            file=str(loaded.path),
            required_rate=loaded.required_rate(case),
            attempts=tuple(attempts),
        )

    async def attempt(self, loaded: LoadedEval, case: Case, spec: AgentSpec, repeat: int) -> Attempt:
        """One run of the case in a fresh copy of its project, checked, then judged when it has a rubric."""
        if self.meter is not None and (reason := self.meter.exceeded()):
            return Attempt(repeat=repeat, passed=False, skipped=self._spent(reason))
        with tempfile.TemporaryDirectory(prefix="subagents-eval-") as scratch:
            project = prepare_project(loaded, case, Path(scratch) / "project")
            started = time.monotonic()
            outcome = await self._run(spec, case.task, project, context=case.context, files=case.start_files)
            duration = time.monotonic() - started
            evidence = Evidence(
                status=outcome.status,
                error=outcome.error,
                report=outcome.report,
                diff=outcome.diff,
                output=outcome.output,
                turns=outcome.turns,
                tools=tools_called(await self._transcript(outcome.run_id)),
            )
            found = failures(case.expect, loaded.schema_for(case), evidence)
            if self.app.store is None and (case.expect.tools_used or case.expect.tools_not_used):
                found.append("the tools it used cannot be checked: this eval keeps no run store")
            score, judged = None, None
            if case.judge is not None and outcome.status == "completed":
                judged = await self._run(
                    self._judge(loaded), judge_task(case.task, case.judge.rubric, evidence.text), project
                )
                verdict = read_verdict(judged.output)
                if verdict is None:
                    found.append(f"the judge gave no score ({judged.error or judged.warning or 'no JSON answer'})")
                else:
                    score, reason = verdict
                    if score < case.judge.threshold:
                        found.append(f"the judge scored it {score}/10, below {case.judge.threshold}: {reason}")
        return Attempt(
            repeat=repeat,
            passed=not found,
            failures=tuple(found),
            run_id=outcome.run_id,
            status=outcome.status,
            error_kind=outcome.error_kind,
            turns=outcome.turns,
            score=score,
            judge_run_id=judged.run_id if judged else None,
            cost_usd=_total(outcome.cost_usd, judged.cost_usd if judged else 0.0),
            duration_s=round(duration, 3),
        )

    def _spent(self, reason: str) -> str:
        spent = self.meter.spent_usd if self.meter is not None else None
        if spent is None:
            return f"not run: {reason}"
        return f"not run: the eval's budget of ${self.options.budget_usd:g} is spent (${spent:.4f} so far)"

    def _judge(self, loaded: LoadedEval) -> AgentSpec:
        return judge_spec(self.options.judge_model or loaded.spec.judge_model)

    async def _run(
        self, spec: AgentSpec, task: str, project: Path, *, context: str | None = None, files: tuple[str, ...] = ()
    ) -> RunOutcome:
        return await self.app.run(
            spec, task, context=context, files=files, roots=[project], client=EVAL_CLIENT, shared_meter=self.meter
        )

    async def _transcript(self, run_id: str) -> tuple[Message, ...]:
        if self.app.store is None:
            return ()
        return (await self.app.recorder.get(run_id)).transcript


def prepare_project(loaded: LoadedEval, case: Case, project: Path) -> Path:
    """The case's project: its fixture folder copied (links stay links), then its inline files written."""
    if case.fixture is not None:
        shutil.copytree(
            loaded.base / case.fixture, project, symlinks=True, ignore=shutil.ignore_patterns("__pycache__")
        )
    project.mkdir(parents=True, exist_ok=True)
    root = project.resolve()
    for name, content in case.files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.parent.resolve().is_relative_to(root) or path.is_symlink():
            raise ConfigError(f"{loaded.path}: case {case.name!r}: file {name!r} would be written through a link")
        path.write_text(content, encoding="utf-8")
    return root


def _total(*costs: float | None) -> float | None:
    return None if any(c is None for c in costs) else round(sum(c or 0.0 for c in costs), 6)
