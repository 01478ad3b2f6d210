"""`subagents eval FILE…`: regression tests for agent prompts, from YAML cases beside the agent.

Each case runs `--repeat` times (models vary), in parallel under `--concurrency` and one `--budget`; the
result is each case's pass rate with its 95% interval, its cost and time, as a table and as JSON, and with
`--compare BASELINE.json` the cases that got better or worse. `--model fake` runs it offline on the
package's fake Messages API, which tests the harness in CI. Exit code: 0 when every case reached its pass
rate (and, with --compare, none got worse), 1 otherwise, 2 for bad input.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from subagents.errors import ConfigError, ModelNotConfiguredError

if TYPE_CHECKING:
    from subagents.app import Subagents
    from subagents.budget import BudgetMeter
    from subagents.evals.cases import LoadedEval
    from subagents.evals.results import Attempt, CaseResult
    from subagents.evals.runner import EvalOptions

FAKE = "fake"


def add_eval_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    command = sub.add_parser(
        "eval",
        parents=parents,
        conflict_handler="resolve",  # --model means something of its own here (so `parents` must be eval's own)
        help="regression tests for agent prompts: YAML cases, repeats, pass rates, compare with a baseline",
    )
    command.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="eval files (YAML), or a bundled specialist's name for its bundled cases (security-reviewer, …)",
    )
    command.add_argument("--repeat", type=_positive, default=1, metavar="N", help="runs of each case (default 1)")
    command.add_argument(
        "--model",
        metavar="MODEL",
        help="'fake': offline, on the package's fake model and the responder the eval file names; else run "
        "every agent on this model (alias or id) instead of its own",
    )
    command.add_argument("--judge-model", metavar="MODEL", help="the model that scores rubrics (default: the file's)")
    command.add_argument("--concurrency", type=_positive, default=4, metavar="N", help="runs at once (default 4)")
    command.add_argument("--budget", type=float, metavar="USD", help="total cost budget for the whole eval")
    command.add_argument("--json", metavar="PATH", help="write the results as JSON to PATH ('-': stdout, no table)")
    command.add_argument("--compare", type=Path, metavar="BASELINE", help="an earlier --json: show what changed")
    command.add_argument("-q", "--quiet", action="store_true", help="no line per run on stderr")
    command.set_defaults(handler=cmd_eval)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number")
    return number


def cmd_eval(args: argparse.Namespace) -> int:
    import anyio

    from subagents.evals.cases import load_eval
    from subagents.evals.results import EvalRun, compare, load_baseline
    from subagents.evals.runner import EvalOptions

    if args.budget is not None and args.budget <= 0:
        raise ConfigError(f"--budget {args.budget}: give a positive amount in USD, e.g. --budget 5")
    if args.json not in (None, "-") and not Path(args.json).expanduser().parent.is_dir():
        raise ConfigError(f"--json {args.json}: its folder does not exist; create it, or give another path")
    evals = [load_eval(path) for path in eval_paths(args.files)]
    baseline = load_baseline(args.compare) if args.compare else None
    offline = args.model == FAKE
    options = EvalOptions(
        repeat=args.repeat,
        concurrency=args.concurrency,
        budget_usd=args.budget,
        model=None if offline else args.model,
        judge_model=args.judge_model,
    )
    started = time.monotonic()
    with ExitStack() as stack:
        try:
            results = anyio.run(_run_all, evals, args, options, offline, stack)
        except ModelNotConfiguredError:
            from subagents.cli.run import NO_MODEL

            raise ConfigError(f"{NO_MODEL} Or run the eval offline, on the fake model: --model fake.") from None
    run = EvalRun(
        model=FAKE if offline else args.model or "each agent's own model",
        repeat=args.repeat,
        duration_s=round(time.monotonic() - started, 3),
        cases=tuple(results),
    )
    changes = compare(baseline, run) if baseline is not None else []
    from subagents.cli.eval_report import print_changes, print_table

    if args.json:
        document = json.dumps(run.model_dump(mode="json") | {"changes": [c.model_dump() for c in changes]}, indent=2)
        if args.json == "-":
            print(document)
        else:
            Path(args.json).expanduser().write_text(document + "\n", encoding="utf-8")
    if args.json != "-":
        print_table(run, store_hint(args, offline))
        if baseline is not None:
            print_changes(changes, args.compare)
    worse = any(change.verdict == "worse" for change in changes)
    return 0 if run.ok and not worse else 1


async def _run_all(
    evals: list[LoadedEval], args: argparse.Namespace, options: EvalOptions, offline: bool, stack: ExitStack
) -> list[CaseResult]:
    """Each file on an app of its own (offline: its own fake, with its own responder); one budget for all."""
    from subagents.cli.run import _run_logs_to_the_summary
    from subagents.evals.runner import EvalRunner

    results: list[CaseResult] = []
    meter: BudgetMeter | None = None
    for loaded in evals:
        app = _app_for(loaded, args, offline, stack)
        runner = EvalRunner(app, options, on_attempt=None if args.quiet else _say, meter=meter)
        meter = runner.meter
        with _run_logs_to_the_summary(args.verbose):
            async with app:
                results += await runner.run(loaded)
    return results


def _app_for(loaded: LoadedEval, args: argparse.Namespace, offline: bool, stack: ExitStack) -> Subagents:
    from subagents.app import Subagents
    from subagents.cli.settings import settings_from_args
    from subagents.definitions.catalog import bundled_agents_dir

    beside = loaded.base.parent if loaded.base.name == "evals" else loaded.base  # the agent the cases are for
    flags = argparse.Namespace(**(vars(args) | {"model": None if offline else args.model}))
    if beside.resolve() != bundled_agents_dir().resolve():
        flags.agents_dir = [beside, *args.agents_dir]
    settings = settings_from_args(flags).model_copy(
        update={"max_concurrent_runs": max(args.concurrency + 1, 10), "store_enabled": True}
    )
    if args.no_store:  # the transcripts are still needed, for the tools each run used
        scratch = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="subagents-eval-store-")))
        settings = settings.model_copy(update={"store_url": str(scratch / "runs.db")})
    if not offline:
        return Subagents.build(settings, agent=loaded.spec.agent)
    from subagents.evals.offline import FAKE_MODEL, FreePrices, load_responder, offline_script
    from subagents.providers.base import DEFAULT_ALIASES
    from subagents.providers.testing import FakeMessagesServer

    fake = stack.enter_context(
        FakeMessagesServer(offline_script(load_responder(loaded.spec.fake_responder, loaded.base)))
    )
    settings = settings.model_copy(
        update={
            "default_model": FAKE_MODEL,
            "model_aliases": {alias: FAKE_MODEL for alias in DEFAULT_ALIASES},
            "provider": "anthropic",
            "store_url": settings.store_url if args.store or args.no_store else str(fake_store()),
        }
    )
    env = {"ANTHROPIC_API_KEY": "subagents-eval-key", "ANTHROPIC_BASE_URL": fake.url}
    app = Subagents.build(settings, env=env, agent=loaded.spec.agent)
    app.prices = FreePrices()
    return app


def eval_paths(names: Sequence[str]) -> list[Path]:
    """Each name as a file, or as a bundled specialist whose cases ship with the package."""
    from subagents.definitions.catalog import bundled_agents_dir

    bundled = bundled_agents_dir() / "evals"
    paths = []
    for name in names:
        path = Path(name).expanduser()
        if not path.is_file() and (bundled / f"{name}.yaml").is_file():
            path = bundled / f"{name}.yaml"
        if not path.is_file():
            known = ", ".join(sorted(p.stem for p in bundled.glob("*.yaml"))) or "none"
            raise ConfigError(f"eval file {name!r} not found: give a path to a YAML file, or one of {known}")
        paths.append(path)
    return paths


def fake_store() -> Path:
    """Offline eval runs are kept apart from the real history, beside it."""
    data_home = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data_home) if os.path.isabs(data_home) else Path.home() / ".local" / "share"
    return base / "subagents" / "eval-fake-runs.db"


def store_hint(args: argparse.Namespace, offline: bool) -> str | None:
    """How to read a run's transcript afterwards; None when the runs were not kept."""
    if args.no_store:
        return None
    where = args.store or (str(fake_store()) if offline else None)
    return "subagents runs show RUN_ID" + (f" --store {where}" if where else "")


def _say(key: str, attempt: Attempt) -> None:
    verdict = "skip" if attempt.skipped else "pass" if attempt.passed else "FAIL"
    turns = f"{attempt.turns} turn{'s' * (attempt.turns != 1)}"
    detail = attempt.skipped or (attempt.failures[0] if attempt.failures else turns)
    detail = detail if len(detail) <= 120 else detail[:119] + "…"
    print(f"  {verdict}  {key} #{attempt.repeat}  {detail}  ({attempt.duration_s:.1f} s)", file=sys.stderr, flush=True)
