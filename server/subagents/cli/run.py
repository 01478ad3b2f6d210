"""`subagents run AGENT TASK`: one agent from the terminal, its report on stdout, progress on stderr."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from subagents.cli.patterns import PATTERN_NAMES, run_pattern_command
from subagents.cli.progress import RunProgress, cost, tokens
from subagents.cli.settings import build_app, claude_code_settings, settings_from_args
from subagents.errors import ConfigError
from subagents.events import discard
from subagents.messages import Usage
from subagents.otel import configure_tracing
from subagents.providers.claude_code.nesting import refuse_if_nested

if TYPE_CHECKING:
    from subagents.app import RunOutcome, Subagents

# What to do about a missing model, said to someone at a shell (the server's own message speaks of the
# server's environment, which is right for an MCP client's config, not here).
NO_MODEL = (
    "no model is configured: export ANTHROPIC_API_KEY=sk-ant-... in this shell (or ANTHROPIC_AUTH_TOKEN, and "
    "ANTHROPIC_BASE_URL for another Messages-API endpoint), or log in to Claude Code (`claude`, then /login) "
    "and add --provider claude-code (pip install 'subagents[claude-code]'). To try it without either: "
    "subagents demo. To check the setup: subagents doctor."
)


def cmd_run(args: argparse.Namespace) -> int:
    refuse_if_nested("run")
    if args.agent in PATTERN_NAMES:  # `subagents run route "task"`: the pattern, when the task is all it needs
        return run_pattern_command(args)
    # One call and done: no Claude Code session is started ahead of time, none is kept for later.
    settings = settings_from_args(args, claude_code=claude_code_settings(args, warm_sessions=0))
    check_files(args.file, settings.effective_roots())
    configure_tracing()
    app = build_app(settings, agent=args.agent)
    outcome, elapsed = run_with_progress(app, args, client="cli")
    print_outcome(outcome, elapsed, as_json=args.json)
    return 0 if outcome.status == "completed" else 1


def check_files(files: list[str], roots: tuple[Path, ...]) -> None:
    """A --file that is not there is a typo: say so before any model call is paid for."""
    for name in files:
        path = Path(name).expanduser()
        candidates = [path] if path.is_absolute() else [root / path for root in roots]
        if not any(c.is_file() for c in candidates):
            where = ", ".join(str(r) for r in roots)
            raise ConfigError(
                f"--file {name}: no such file in {where}. Give a path relative to the project root "
                "(--root), or check the spelling."
            )


def run_with_progress(app: Subagents, args: argparse.Namespace, *, client: str) -> tuple[RunOutcome, float]:
    """Run `args.agent` on `args.task`, drawing progress on stderr unless --quiet or --json."""
    quiet = args.quiet or args.json
    started = time.monotonic()
    with RunProgress(args.agent) as progress, _run_logs_to_the_summary(args.verbose):

        async def run_once() -> RunOutcome:
            async with app:
                return await app.run(
                    args.agent,
                    args.task,
                    context=getattr(args, "context", None),
                    files=getattr(args, "file", []),
                    client=client,
                    events=discard if quiet else progress,
                )

        outcome = anyio.run(run_once)
    return outcome, time.monotonic() - started


def print_outcome(outcome: RunOutcome, elapsed_s: float, *, as_json: bool) -> None:
    """The report on stdout; the summary line, and the error once, on stderr."""
    if as_json:
        print(json.dumps(outcome.model_dump(mode="json"), indent=2))
        return
    # A run that failed before the agent wrote anything has no report: its error is said once, below.
    failed_early = outcome.error is not None and outcome.report == f"Error: {outcome.error}"
    if not failed_early:
        print(outcome.report if outcome.output is None else json.dumps(outcome.output, indent=2, ensure_ascii=False))
    if outcome.warning:
        print(f"warning: {outcome.warning}", file=sys.stderr)
    summary = " · ".join(
        [
            outcome.agent,
            outcome.model,
            outcome.status,
            f"{outcome.turns} turns",
            tokens(outcome.usage),
            cost(0.0 if outcome.usage == Usage() else outcome.cost_usd),  # no tokens used: nothing to pay
            f"{elapsed_s:.1f} s",
            outcome.run_id,
        ]
    )
    print(f"\n[{summary}]", file=sys.stderr)
    if failed_early:
        error = NO_MODEL if outcome.error_kind == "not_configured" else outcome.error
        print(f"subagents: {error}", file=sys.stderr)


@contextmanager
def _run_logs_to_the_summary(verbose: int) -> Iterator[None]:
    """The app logs how each run ended, for a server's log; here the summary says it, once. With -v the
    log lines (and tracebacks) stay."""
    logger = logging.getLogger("subagents.execution")  # the module that logs how a run ended
    quiet = _DropRunEndings()
    if not verbose:
        logger.addFilter(quiet)
    try:
        yield
    finally:
        logger.removeFilter(quiet)


class _DropRunEndings(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("run %s (%s)")
