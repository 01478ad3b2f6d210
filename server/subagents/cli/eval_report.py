"""How `subagents eval` reads on a terminal: a row per case, why the failing ones failed, what changed."""

from __future__ import annotations

from pathlib import Path

from subagents.evals.results import CaseResult, Change, EvalRun

MAX_REASONS = 3


def print_table(run: EvalRun, store_hint: str | None) -> None:
    """A row per case (pass rate, 95% interval, cost, time per run), the failures' reasons, the totals."""
    rows: list[tuple[str, ...]] = [("case", "passed", "rate", "95% interval", "cost", "time/run", "")]
    rows += [_row(case) for case in run.cases]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    print()
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
    failing = [case for case in run.cases if not case.ok]
    for case in failing:
        print(f"\n{case.key}: {case.passes} of {len(case.attempts)} passed, {case.required_rate:.0%} needed")
        for reason, count in case.reasons()[:MAX_REASONS]:
            print(f"  - {reason}" + (f" ({count} runs)" if count > 1 else ""))
        first = next((a.run_id for a in case.attempts if not a.passed and a.run_id), None)
        if first and store_hint:
            print(f"  transcript: {store_hint.replace('RUN_ID', first)}")
    ok = len(run.cases) - len(failing)
    cost = "cost unknown" if run.cost_usd is None else f"${run.cost_usd:.4f}"
    model = "the offline fake model" if run.model == "fake" else run.model
    runs = f"{run.repeat} run{'s' * (run.repeat > 1)} each on {model}"
    print(f"\n{ok} of {len(run.cases)} cases passed · {runs} · {cost} · {run.duration_s:.1f} s")


def _row(case: CaseResult) -> tuple[str, ...]:
    low, high = case.interval
    rate = "-" if case.pass_rate is None else f"{case.pass_rate:.0%}"
    cost = "unknown" if case.cost_usd is None else f"${case.cost_usd:.4f}"
    mark = "ok" if case.ok else "FAIL"
    return (
        case.key,
        f"{case.passes}/{len(case.attempts)}",
        rate,
        f"{low:.2f}-{high:.2f}",
        cost,
        f"{case.mean_duration_s:.1f} s",
        mark,
    )


def print_changes(changes: list[Change], baseline: Path) -> None:
    """Each case against the baseline; regressions first, so they are the first thing read."""
    order = {"worse": 0, "better": 1, "new": 2, "gone": 3, "same": 4}
    print(f"\ncompared with {baseline}:")
    for change in sorted(changes, key=lambda c: order[c.verdict]):
        before = "-" if change.before is None else f"{change.before:.0%}"
        after = "-" if change.after is None else f"{change.after:.0%}"
        label = "WORSE" if change.verdict == "worse" else change.verdict
        note = " (the 95% intervals do not overlap)" if change.significant else ""
        print(f"  {label:<6}  {change.key}  {before} -> {after}{note}")
    worse = sum(c.verdict == "worse" for c in changes)
    print(f"{worse} case{'s' * (worse != 1)} got worse." if worse else "No case got worse.")
