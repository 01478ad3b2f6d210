"""`subagents route|fan-out|debate|pipeline|escalate|team …`: run an orchestration pattern from a terminal, and the
pattern settings (`--patterns`, `--pattern-concurrency`; `--max-depth` is a tool flag, in tool_flags.py)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio

from subagents.errors import ConfigError

if TYPE_CHECKING:
    from subagents.orchestration import PatternOutcome

# The orchestration package's names, kept here so the CLI parses flags without importing the engine.
PATTERN_NAMES = ("route", "fan_out", "debate", "pipeline", "escalate", "team")


def parse_patterns(value: str) -> tuple[str, ...]:
    """`route,fan_out`, `all` or `none` (dashes taken for underscores) as pattern names."""
    names = [v.strip().replace("-", "_") for v in value.split(",") if v.strip()]
    if names in (["all"], ["none"]):
        return PATTERN_NAMES if names == ["all"] else ()
    unknown = [n for n in names if n not in PATTERN_NAMES]
    if unknown:
        raise ConfigError(
            f"--patterns: unknown pattern {unknown[0]!r}; use a comma list of {', '.join(PATTERN_NAMES)}, "
            "or all, or none"
        )
    return tuple(dict.fromkeys(names))


def add_pattern_options(common: argparse.ArgumentParser) -> None:
    group = common.add_argument_group("orchestration patterns")
    group.add_argument(
        "--pattern-concurrency", type=int, metavar="N", help="child runs of one pattern at once (default 8, max 16)"
    )


def pattern_settings(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    """The pattern settings from flags and SUBAGENTS_PATTERNS."""
    values: dict[str, Any] = {}
    patterns = getattr(args, "patterns", None) or env.get("SUBAGENTS_PATTERNS")
    if patterns is not None:
        values["patterns"] = parse_patterns(patterns)
    if getattr(args, "pattern_concurrency", None):
        values["pattern_concurrency"] = args.pattern_concurrency
    return values


def add_pattern_parsers(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    """The pattern commands; each prints the pattern's answer on stdout and its tree on stderr."""
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument("--context", help="background for the agents")
    out.add_argument("--file", action="append", default=[], metavar="PATH", help="a file to start from")
    out.add_argument("--json", action="store_true", help="print the whole structured result as JSON")
    parents = [*parents, out]

    route = sub.add_parser("route", parents=parents, help="the router picks a specialist, which then runs")
    route.add_argument("task")
    route.add_argument("--candidate", action="append", metavar="AGENT", help="an agent the router may pick")
    route.set_defaults(handler=cmd_pattern, pattern="route")

    fan = sub.add_parser("fan-out", parents=parents, help="the same task on several agents at once")
    fan.add_argument("agents", nargs="+", metavar="AGENT")
    fan.add_argument("task")
    fan.add_argument("--samples", type=int, default=1, metavar="N", help="independent runs per agent")
    fan.add_argument("--judge", action="store_true", help="a blind judge picks the best answer")
    fan.set_defaults(handler=cmd_pattern, pattern="fan_out")

    debate = sub.add_parser("debate", parents=parents, help="proposer, critic, then a blind judge")
    debate.add_argument("task", metavar="QUESTION")
    debate.add_argument("--rounds", type=int, default=1, metavar="N", help="critique rounds, 1-3 (default 1)")
    debate.set_defaults(handler=cmd_pattern, pattern="debate")

    pipe = sub.add_parser("pipeline", parents=parents, help="agents in sequence, each building on the last")
    pipe.add_argument("stages", nargs="+", metavar="STAGE", help="an agent, or 'agent: its part'")
    pipe.add_argument("task")
    pipe.set_defaults(handler=cmd_pattern, pattern="pipeline")

    esc = sub.add_parser("escalate", parents=parents, help="a junior tries, graded; the senior takes over")
    esc.add_argument("task")
    esc.add_argument("--junior", required=True, metavar="AGENT")
    esc.add_argument("--senior", required=True, metavar="AGENT")
    esc.add_argument("--rubric", help="what a passing answer must do")
    esc.add_argument("--attempts", type=int, default=3, metavar="N", help="junior attempts, 1-5 (default 3)")
    esc.set_defaults(handler=cmd_pattern, pattern="escalate")

    team = sub.add_parser("team", parents=parents, help="independent tasks, worked by several agents at once")
    team.add_argument("tasks", nargs="+", metavar="TASK", help="'agent: the task' (quote each)")
    team.add_argument("--workers", type=int, default=3, metavar="N", help="tasks at once, 1-8 (default 3)")
    team.set_defaults(handler=cmd_pattern, pattern="team", task=None)


_ARGS = {
    "route": {"candidates": "candidate"},
    "fan_out": {"agents": "agents", "samples": "samples", "judge": "judge"},
    "debate": {"rounds": "rounds"},
    "pipeline": {"stages": "stages"},
    "escalate": {"junior": "junior", "senior": "senior", "rubric": "rubric", "attempts": "attempts"},
    "team": {"workers": "workers"},
}


def pattern_arguments(args: argparse.Namespace) -> dict[str, Any]:
    raw: dict[str, Any] = {"task": args.task, "context": args.context, "files": args.file}
    for key, attr in _ARGS[args.pattern].items():
        raw[key] = getattr(args, attr, None)
    if args.pattern == "team":
        raw["tasks"] = [team_task(t) for t in args.tasks]
    return {k: v for k, v in raw.items() if v is not None}


def team_task(value: str) -> dict[str, str]:
    """`agent: the task` as a team task; without the colon, one clear sentence."""
    agent, sep, task = value.partition(":")
    if not sep or not agent.strip() or not task.strip():
        raise ConfigError(f"team: {value[:60]!r} is not 'agent: the task'; name the agent, a colon, then the task")
    return {"agent": agent.strip(), "task": task.strip()}


def cmd_pattern(args: argparse.Namespace) -> int:
    return run_and_print(args, args.pattern, pattern_arguments(args))


def run_pattern_command(args: argparse.Namespace) -> int:
    """`subagents run PATTERN TASK`, for the patterns that need nothing but the task (route, debate)."""
    if args.agent not in ("route", "debate"):
        command = args.agent.replace("_", "-")
        raise ConfigError(f"{args.agent} needs more than a task: use `subagents {command} --help`")
    arguments = {"task": args.task, "context": args.context, "files": args.file}
    return run_and_print(args, args.agent, {k: v for k, v in arguments.items() if v is not None})


def run_and_print(args: argparse.Namespace, pattern: str, arguments: dict[str, Any]) -> int:
    from subagents.cli.settings import build_app, settings_from_args  # it imports this module: not at the top
    from subagents.orchestration import run_pattern
    from subagents.otel import configure_tracing

    configure_tracing()
    app = build_app(settings_from_args(args))

    async def once() -> PatternOutcome:
        async with app:
            return await run_pattern(app, pattern, arguments, client="cli")

    outcome = anyio.run(once)
    if getattr(args, "json", False):
        print(json.dumps(outcome.model_dump(mode="json"), indent=2))
    else:
        print(outcome.report)
        print(render_tree(outcome), file=sys.stderr)
    return 0 if outcome.status == "completed" else 1


def render_tree(outcome: PatternOutcome) -> str:
    """The pattern and its children, one line each, for stderr."""
    usage = outcome.usage
    cost = "?" if outcome.cost_usd is None else f"${outcome.cost_usd:.4f}"
    lines = [
        f"\n[{outcome.pattern} · {outcome.status} · {len(outcome.children)} runs · {usage.input_tokens} in / "
        f"{usage.output_tokens} out tokens · {cost} · {outcome.run_id}]"
    ]
    for c in outcome.children:
        o = c.outcome
        lines.append(
            f"  {c.role:<12} {o.agent:<20} {o.status:<15} {o.usage.input_tokens} in / {o.usage.output_tokens} out"
            f"  {o.run_id or '-'}" + (f"  {o.error}" if o.error else "")
        )
    lines += [f"  warning: {w}" for w in outcome.warnings]
    return "\n".join(lines)
