"""`subagents …` commands. Output for people goes to stdout; logs go to stderr."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
from pydantic import ValidationError

from subagents import __version__
from subagents.cli_runs import add_runs_parser
from subagents.config import Settings, check_dirs, parse_aliases, project_dir_from_env, split_paths
from subagents.errors import ConfigError, SubagentsError
from subagents.tools.bash import BashPolicy

log = logging.getLogger("subagents")


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    try:
        code = args.handler(args)
    except SubagentsError as exc:
        print(f"subagents: {exc}", file=sys.stderr)
        code = 2
    except ValidationError as exc:  # a setting built from flags that its model refuses
        print(f"subagents: invalid setting: {validation_reasons(exc)}", file=sys.stderr)
        code = 2
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:  # `subagents runs show X | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        code = 0
    sys.exit(code)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--agents-dir",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="extra agents directory, highest precedence (repeatable; env SUBAGENTS_AGENTS_DIR)",
    )
    common.add_argument("--no-bundled", action="store_true", help="do not load the bundled agents")
    common.add_argument(
        "--root",
        action="append",
        type=Path,
        default=[],
        metavar="DIR",
        help="where subagent file tools may read (repeatable; default CLAUDE_PROJECT_DIR, else cwd)",
    )
    common.add_argument("--model", help="model for agents with model: inherit (alias or id; env SUBAGENTS_MODEL)")
    common.add_argument(
        "--model-alias",
        action="append",
        metavar="ALIAS=ID",
        help="override an alias, e.g. opus=claude-opus-5-5 (env SUBAGENTS_MODEL_ALIASES)",
    )
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr")
    runs = common.add_argument_group("runs: history, budgets and retries")
    runs.add_argument(
        "--store",
        type=Path,
        metavar="PATH",
        help="run history database (env SUBAGENTS_STORE; default ~/.local/share/subagents/runs.db)",
    )
    runs.add_argument("--no-store", action="store_true", help="keep no run history (continue_run then fails)")
    runs.add_argument("--max-output-tokens", type=int, metavar="N", help="per-run output token budget")
    runs.add_argument("--max-cost", type=float, metavar="USD", help="per-run cost budget in USD")
    runs.add_argument(
        "--daily-budget",
        type=float,
        metavar="USD",
        help="cost budget for all runs of this store in a UTC day (env SUBAGENTS_DAILY_BUDGET)",
    )
    runs.add_argument("--prices", type=Path, metavar="FILE", help="JSON price table merged over the built-in one")
    runs.add_argument("--fallback-model", metavar="MODEL", help="model to try when an agent's model is down")
    runs.add_argument("--timeout", type=float, metavar="S", help="default time limit of one run (default 1800)")

    parser = argparse.ArgumentParser(prog="subagents", description="Specialist LLM subagents as MCP tools.")
    parser.add_argument("--version", action="version", version=f"subagents {__version__}")
    parser.set_defaults(verbose=0)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the MCP server (stdio by default)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    serve.add_argument(
        "--allow-bash",
        action="append",
        default=[],
        metavar="PREFIX",
        help="let writing agents (test-writer) run commands starting with PREFIX, e.g. 'python -m pytest', "
        "in their isolated copy (repeatable; Bash is off by default)",
    )
    serve.add_argument("--bash-timeout", type=float, default=120, metavar="S", help="time limit of one command")
    serve.add_argument(
        "--auth-token",
        metavar="TOKEN",
        help="bearer token HTTP clients must send; required to bind beyond loopback "
        "(prefer env SUBAGENTS_AUTH_TOKEN: a flag shows up in ps)",
    )
    serve.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="extra browser Origin to accept, e.g. https://app.example.com (repeatable)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="extra Host header to accept when serving behind a name (repeatable)",
    )
    serve.add_argument(
        "--max-concurrent-runs",
        type=int,
        default=4,
        metavar="N",
        help="agent calls in flight per HTTP client; more get 429 (default 4)",
    )
    serve.set_defaults(handler=cmd_serve)

    agents = sub.add_parser("agents", help="list, show or validate agent definitions")
    agents_sub = agents.add_subparsers(dest="agents_command", required=True)
    listing = agents_sub.add_parser("list", parents=[common], help="the agents the server would serve")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_agents_list)
    show = agents_sub.add_parser("show", parents=[common], help="one agent's resolved definition")
    show.add_argument("name")
    show.set_defaults(handler=cmd_agents_show)
    validate = agents_sub.add_parser(
        "validate", parents=[common], help="check agent files; exits 1 if any file is invalid"
    )
    validate.add_argument(
        "dirs",
        nargs="*",
        type=Path,
        metavar="DIR",
        help="directories or files to check (default: every layer the server loads)",
    )
    validate.set_defaults(handler=cmd_agents_validate)

    add_runs_parser(sub)

    run = sub.add_parser("run", parents=[common], help="run one agent on a task and print its report")
    run.add_argument("agent")
    run.add_argument("task")
    run.add_argument("--file", action="append", default=[], metavar="PATH", help="a file to start from")
    run.add_argument("--context", help="background for the agent")
    run.add_argument("--json", action="store_true", help="print the structured result as JSON")
    run.set_defaults(handler=cmd_run)
    return parser


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(stream=sys.stderr, level=level, format="subagents %(levelname)s %(name)s: %(message)s")


def settings_from_args(args: argparse.Namespace, **extra: object) -> Settings:
    env = os.environ
    agents_dirs = split_paths(env.get("SUBAGENTS_AGENTS_DIR")) + tuple(args.agents_dir)
    roots = check_dirs(tuple(args.root) or split_paths(env.get("SUBAGENTS_ROOTS")), "--root")
    project_dir = project_dir_from_env(env) or (roots[0] if roots else Path.cwd().resolve())
    return make_settings(
        agents_dirs=check_dirs(agents_dirs, "--agents-dir"),
        bundled=not (args.no_bundled or env.get("SUBAGENTS_NO_BUNDLED") == "1"),
        roots=roots,
        project_dir=project_dir,
        default_model=args.model or env.get("SUBAGENTS_MODEL") or "sonnet",
        model_aliases=parse_aliases(args.model_alias, env.get("SUBAGENTS_MODEL_ALIASES")),
        store_path=args.store or (Path(env["SUBAGENTS_STORE"]) if env.get("SUBAGENTS_STORE") else None),
        store_enabled=not args.no_store,
        max_output_tokens=args.max_output_tokens,
        max_cost_usd=args.max_cost,
        daily_budget_usd=args.daily_budget or _float_env(env, "SUBAGENTS_DAILY_BUDGET"),
        prices_file=args.prices,
        fallback_model=args.fallback_model,
        **({"run_timeout_s": args.timeout} if args.timeout else {}),
        **extra,
    )


def make_settings(**values: object) -> Settings:
    try:
        return Settings(**values)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {validation_reasons(exc)}") from None


def validation_reasons(exc: ValidationError) -> str:
    return "; ".join(f"{exc.title} {'.'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in exc.errors())


def _float_env(env: Mapping[str, str], name: str) -> float | None:
    value = env.get(name)
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number; give an amount in USD, e.g. {name}=5") from None


def build_app(settings: Settings):  # type: ignore[no-untyped-def]
    from subagents.app import Subagents

    return Subagents.build(settings)


def cmd_serve(args: argparse.Namespace) -> int:
    bash = BashPolicy(enabled=bool(args.allow_bash), allow=tuple(args.allow_bash), timeout_s=args.bash_timeout)
    settings = settings_from_args(args, transport=args.transport, host=args.host, port=args.port, bash=bash)
    app = build_app(settings)
    from subagents import mcp_server
    from subagents.http_app import HttpSecurity

    if args.transport == "http":
        security = HttpSecurity(
            host=args.host,
            auth_token=args.auth_token or os.environ.get("SUBAGENTS_AUTH_TOKEN"),
            allowed_origins=tuple(args.allowed_origin),
            allowed_hosts=tuple(args.allowed_host),
            max_concurrent_runs_per_client=args.max_concurrent_runs,
        )
        anyio.run(mcp_server.serve_http, app, security, args.port)
    else:
        anyio.run(mcp_server.serve_stdio, app)
    return 0


def cmd_agents_list(args: argparse.Namespace) -> int:
    app = build_app(settings_from_args(args))
    specs = sorted(app.catalog.agents.values(), key=lambda s: s.name)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": s.name,
                        "description": s.description,
                        "model": s.model,
                        "resolved_model": app.resolver.resolve(s.model),
                        "tools": list(app.tool_names(s)),
                        "read_only": not s.writes,
                        "source": str(s.source),
                        "layer": s.layer,
                    }
                    for s in specs
                ],
                indent=2,
            )
        )
        return 0
    for s in specs:
        print(f"{s.name:<24} {app.resolver.resolve(s.model):<20} {s.layer:<10} {s.source}")
    return 0


def cmd_agents_show(args: argparse.Namespace) -> int:
    app = build_app(settings_from_args(args))
    spec = app.agent(args.name)
    print(f"name:        {spec.name}\nsource:      {spec.source} ({spec.layer})")
    print(f"model:       {spec.model} -> {app.resolver.resolve(spec.model)}")
    print(f"tools:       {', '.join(app.tool_names(spec)) or 'none'}")
    print(f"max turns:   {app.limits(spec).max_turns}\nread-only:   {not spec.writes}")
    print(f"description: {spec.description}\n\n{spec.prompt}")
    return 0


def cmd_agents_validate(args: argparse.Namespace) -> int:
    from subagents.definitions.catalog import Layer, default_layers, load_catalog

    if args.dirs:
        layers = tuple(Layer("checked", d) for d in args.dirs)
        missing = [d for d in args.dirs if not d.exists()]
        for d in missing:
            print(f"ERROR   {d}: no such directory or file")
        catalog = load_catalog(layers)
    else:
        settings = settings_from_args(args)
        catalog = load_catalog(
            default_layers(project_dir=settings.project_dir, extra_dirs=settings.agents_dirs, bundled=settings.bundled)
        )
        missing = []
    for spec in sorted(catalog.agents.values(), key=lambda s: s.name):
        print(f"OK      {spec.name:<24} {spec.source} ({spec.layer})")
    for problem in catalog.problems:
        print(f"{problem.level.upper():<7} {problem.path}: {problem.message}")
    errors = len(catalog.errors) + len(missing)
    warnings = len(catalog.problems) - len(catalog.errors)
    print(f"\n{len(catalog.agents)} agents valid, {errors} invalid, {warnings} warnings")
    return 1 if errors else 0


def cmd_run(args: argparse.Namespace) -> int:
    app = build_app(settings_from_args(args))

    async def run_once():  # type: ignore[no-untyped-def]
        async with app:
            return await app.run(args.agent, args.task, context=args.context, files=args.file, client="cli")

    outcome = anyio.run(run_once)
    if args.json:
        print(json.dumps(outcome.model_dump(mode="json"), indent=2))
    else:
        print(outcome.report)
        print(
            f"\n[{outcome.agent} · {outcome.model} · {outcome.status} · {outcome.turns} turns · "
            f"{outcome.usage.input_tokens} in / {outcome.usage.output_tokens} out tokens · "
            f"{outcome.run_id}]",
            file=sys.stderr,
        )
    return 0 if outcome.status == "completed" else 1


if __name__ == "__main__":
    main()
