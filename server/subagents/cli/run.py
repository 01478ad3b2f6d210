"""`subagents run AGENT TASK`: one agent from the terminal, its report on stdout."""

from __future__ import annotations

import argparse
import json
import sys

import anyio

from subagents.cli.patterns import PATTERN_NAMES, run_pattern_command
from subagents.cli.settings import build_app, claude_code_settings, settings_from_args
from subagents.providers.claude_code.nesting import refuse_if_nested


def cmd_run(args: argparse.Namespace) -> int:
    refuse_if_nested("run")
    if args.agent in PATTERN_NAMES:  # `subagents run route "task"`: the pattern, when the task is all it needs
        return run_pattern_command(args)
    # One call and done: no session is started ahead of time, none is kept for later.
    app = build_app(settings_from_args(args, claude_code=claude_code_settings(args, warm_sessions=0)), agent=args.agent)

    async def run_once():  # type: ignore[no-untyped-def]
        async with app:
            return await app.run(args.agent, args.task, context=args.context, files=args.file, client="cli")

    outcome = anyio.run(run_once)
    if args.json:
        print(json.dumps(outcome.model_dump(mode="json"), indent=2))
    else:
        print(outcome.report if outcome.output is None else json.dumps(outcome.output, indent=2, ensure_ascii=False))
        if outcome.warning:
            print(f"warning: {outcome.warning}", file=sys.stderr)
        print(
            f"\n[{outcome.agent} · {outcome.model} · {outcome.status} · {outcome.turns} turns · "
            f"{outcome.usage.input_tokens} in / {outcome.usage.output_tokens} out tokens · "
            f"{outcome.run_id}]",
            file=sys.stderr,
        )
    return 0 if outcome.status == "completed" else 1
