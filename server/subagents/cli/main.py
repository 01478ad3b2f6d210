"""`subagents …` commands. Output for people goes to stdout; logs go to stderr."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeAlias

from pydantic import ValidationError

from subagents import __version__
from subagents.cli.logformat import FORMATS, setup_logging
from subagents.cli.patterns import add_pattern_options, add_pattern_parsers
from subagents.cli.serve import add_team_options, cmd_serve
from subagents.cli.settings import validation_reasons
from subagents.cli.tool_flags import tool_flags
from subagents.config import DEFAULT_MAX_CONCURRENT_RUNS
from subagents.errors import SubagentsError

log = logging.getLogger("subagents")


def main(argv: Sequence[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else list(argv)
    # Only the command given is built (and its module imported): `serve` starts without the others'.
    parser = build_parser(argv[0] if argv and argv[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    setup_logging(args.verbose, args.log_format)
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
    except Exception as exc:  # a bug of ours: one line, the traceback only when asked for
        if args.verbose:
            traceback.print_exc()
        detail = f": {exc}" if str(exc) else ""
        print(
            f"subagents: unexpected error, {type(exc).__name__}{detail}. "
            + ("" if args.verbose else "Run it again with -v for the traceback, and please report it."),
            file=sys.stderr,
        )
        code = 1
    sys.exit(code)


def lazy(target: str) -> Callable[[argparse.Namespace], int]:
    """A handler imported when its command runs (`module:function`), so `serve` does not pay for the others."""

    def handler(args: argparse.Namespace) -> int:
        module, _, name = target.partition(":")
        command: Callable[[argparse.Namespace], int] = getattr(importlib.import_module(module), name)
        return command(args)

    return handler


Parents: TypeAlias = list[argparse.ArgumentParser]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Every command (`subagents --help` lists them all), or only `command`'s, which imports no module of
    the others. Catalog flags (which agents, which roots) go on each command that loads agents; the run
    flags (store, budgets, retries) only on the commands that run them; the tool flags (Bash, the web,
    delegation depth) on those and on `agents …`, which show what each agent would get."""
    common = catalog_flags()
    runs = run_flags()
    tools = tool_flags()

    parser = argparse.ArgumentParser(prog="subagents", description="Specialist LLM subagents as MCP tools.")
    parser.add_argument("--version", action="version", version=f"subagents {__version__}")
    parser.set_defaults(verbose=0, log_format=os.environ.get("SUBAGENTS_LOG_FORMAT", "text"))
    sub = parser.add_subparsers(dest="command", required=True)
    for names, add in _GROUPS:
        if command is None or command in names:
            add(sub, common, runs, tools)
    return parser


def add_run_parser(sub: SubParsers, parents: Parents) -> None:
    run = sub.add_parser("run", parents=parents, help="run one agent on a task and print its report")
    run.add_argument("agent")
    run.add_argument("task")
    run.add_argument("--file", action="append", default=[], metavar="PATH", help="a file to start from")
    run.add_argument("--context", help="background for the agent")
    run.add_argument("--json", action="store_true", help="print the structured result as JSON")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    run.set_defaults(handler=lazy("subagents.cli.run:cmd_run"))


def _runs(sub: SubParsers, *_: argparse.ArgumentParser) -> None:
    from subagents.cli.runs import add_runs_parser

    add_runs_parser(sub)


def _store(sub: SubParsers, *_: argparse.ArgumentParser) -> None:
    from subagents.cli.store import add_store_parser

    add_store_parser(sub)


def _tokens(sub: SubParsers, *_: argparse.ArgumentParser) -> None:
    from subagents.cli.tokens import add_tokens_parser

    add_tokens_parser(sub)


def _eval(sub: SubParsers, common: argparse.ArgumentParser, runs: argparse.ArgumentParser, *_: object) -> None:
    from subagents.cli.evals import add_eval_parser

    add_eval_parser(sub, [catalog_flags(), runs])  # its own copy: eval redefines --model


# Each group of commands: its names (as typed), and what adds it from (sub, catalog, run and tool flags).
_GROUPS: tuple[tuple[tuple[str, ...], Callable[..., None]], ...] = (
    (("serve",), lambda sub, common, runs, tools: add_serve_parser(sub, [common, runs, tools])),
    (("agents",), lambda sub, common, runs, tools: add_agents_parser(sub, [common, tools])),
    (("runs",), _runs),
    (("run",), lambda sub, common, runs, tools: add_run_parser(sub, [common, runs, tools])),
    (("store",), _store),
    (("tokens",), _tokens),
    (
        ("route", "fan-out", "debate", "pipeline", "escalate", "team"),
        lambda sub, common, runs, tools: add_pattern_parsers(sub, [common, runs, tools]),
    ),
    (("install", "doctor", "demo"), lambda sub, common, runs, tools: add_first_run_parsers(sub, [common])),
    (("eval",), _eval),
)
COMMANDS = frozenset(name for names, _ in _GROUPS for name in names)


def catalog_flags() -> argparse.ArgumentParser:
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
    common.add_argument(
        "--allow-hardlinks",
        action="store_true",
        help="let file tools read files with several hard links; such a link may name a file outside "
        "the roots (env SUBAGENTS_ALLOW_HARDLINKS=1)",
    )
    common.add_argument("--model", help="model for agents with model: inherit (alias or id; env SUBAGENTS_MODEL)")
    common.add_argument(
        "--model-alias",
        action="append",
        metavar="ALIAS=ID",
        help="override an alias, e.g. opus=claude-opus-5-5 (env SUBAGENTS_MODEL_ALIASES)",
    )
    common.add_argument("-v", "--verbose", action="count", default=0, help="more logging on stderr")
    common.add_argument(
        "--log-format",
        choices=FORMATS,
        default=os.environ.get("SUBAGENTS_LOG_FORMAT", "text"),
        help="log lines on stderr as text (default) or one JSON object a line (env SUBAGENTS_LOG_FORMAT)",
    )
    return common


def run_flags() -> argparse.ArgumentParser:
    flags = argparse.ArgumentParser(add_help=False)
    runs = flags.add_argument_group("runs: history, budgets and retries")
    runs.add_argument(
        "--store",
        metavar="PATH|URL",
        help="run history: a SQLite file or a postgresql:// URL (env SUBAGENTS_STORE; "
        "default ~/.local/share/subagents/runs.db)",
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
    runs.add_argument(
        "--timeout", type=float, metavar="S", help="time limit of one run; agents may set less (default 1800)"
    )
    runs.add_argument(
        "--max-turns", type=int, metavar="N", help="most model turns a run may take; agents may set fewer (default 50)"
    )
    add_pattern_options(flags)
    add_backend_flags(flags)
    return flags


def add_serve_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    serve = sub.add_parser("serve", parents=parents, help="run the MCP server (stdio by default)")
    surface = serve.add_argument_group("serving: the transport, and the tools clients see")
    surface.add_argument(
        "--transport", choices=["stdio", "http"], default="stdio", help="stdio (default) or Streamable HTTP at /mcp"
    )
    surface.add_argument(
        "--catalog-mode",
        choices=["auto", "on", "off"],
        default=os.environ.get("SUBAGENTS_CATALOG_MODE", "auto"),
        help="on: one delegate tool and list_agents instead of a tool per agent; auto (default): on past 20 agents",
    )
    surface.add_argument(
        "--agents",
        action="append",
        default=[],
        metavar="NAME,GLOB",
        help="serve only these agents: names or globs such as 'py-*', comma-separated (repeatable)",
    )
    surface.add_argument(
        "--no-watch",
        action="store_true",
        default=os.environ.get("SUBAGENTS_NO_WATCH") == "1",
        help="do not follow changes to the agent files (live reload is on by default: an added, edited or "
        "removed agent file updates the tools of the running server; env SUBAGENTS_NO_WATCH=1)",
    )
    surface.add_argument(
        "--patterns",
        metavar="LIST",
        help="orchestration patterns served as tools: a comma list of route, fan_out, debate, pipeline, "
        "escalate, team, or all, or none (default fan_out; env SUBAGENTS_PATTERNS)",
    )
    surface.add_argument(
        "--max-concurrent-runs",
        type=int,
        default=DEFAULT_MAX_CONCURRENT_RUNS,
        metavar="N",
        help="agent runs going at once per caller (the token's holder over HTTP, the local user over stdio), "
        "background runs and pattern and Task children included, on each replica; more are refused with a "
        f"message (default {DEFAULT_MAX_CONCURRENT_RUNS}: one Claude Code turn's parallel calls, fan-outs included)",
    )
    http = serve.add_argument_group("HTTP: where to listen, and who may call")
    http.add_argument("--host", help="HTTP bind address (default 127.0.0.1; needs --transport http)")
    http.add_argument("--port", type=int, help="HTTP port (default 8765; needs --transport http)")
    http.add_argument(
        "--auth-token",
        metavar="TOKEN",
        help="bearer token HTTP clients must send; required to bind beyond loopback "
        "(prefer env SUBAGENTS_AUTH_TOKEN: a flag shows up in ps)",
    )
    http.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="extra browser Origin to accept, e.g. https://app.example.com (repeatable)",
    )
    http.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="extra Host header to accept when serving behind a name (repeatable)",
    )
    http.add_argument(
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="reverse proxy address or network whose X-Forwarded-For names the client (repeatable; default: "
        "trust nobody's)",
    )
    add_team_options(serve)
    serve.set_defaults(handler=cmd_serve)


def add_agents_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    agents = sub.add_parser("agents", help="list, show or validate agent definitions")
    agents_sub = agents.add_subparsers(dest="agents_command", required=True)
    listing = agents_sub.add_parser("list", parents=parents, help="the agents the server would serve")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=lazy("subagents.cli.agents:cmd_agents_list"))
    show = agents_sub.add_parser("show", parents=parents, help="one agent's resolved definition")
    show.add_argument("name")
    show.set_defaults(handler=lazy("subagents.cli.agents:cmd_agents_show"))
    validate = agents_sub.add_parser(
        "validate", parents=parents, help="check agent files; exits 1 if any file is invalid"
    )
    validate.add_argument(
        "dirs",
        nargs="*",
        type=Path,
        metavar="DIR",
        help="directories or files to check (default: every layer the server loads)",
    )
    validate.set_defaults(handler=lazy("subagents.cli.agents:cmd_agents_validate"))


def add_first_run_parsers(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], parents: list[argparse.ArgumentParser]
) -> None:
    """`install`, `doctor` and `demo`: the commands of a user's first ten minutes."""
    from subagents.cli.install import add_install_parser

    add_install_parser(sub)
    doctor = sub.add_parser(
        "doctor", parents=parents, help="check this installation, the model, agents, store and client configs"
    )
    doctor.add_argument("--live", action="store_true", help="also send one small real request to the model")
    doctor.add_argument("--store", type=Path, metavar="PATH", help="the run store to check (env SUBAGENTS_STORE)")
    doctor.set_defaults(handler=lazy("subagents.cli.doctor:cmd_doctor"))
    demo = sub.add_parser(
        "demo", parents=parents, help="run a specialist offline on a small sample project with a planted bug"
    )
    demo.add_argument(
        "agent", nargs="?", default="security-reviewer", help="the agent to try (default security-reviewer)"
    )
    demo.add_argument("-q", "--quiet", action="store_true", help="no progress lines on stderr")
    demo.set_defaults(handler=lazy("subagents.cli.demo:cmd_demo"))


def add_backend_flags(common: argparse.ArgumentParser) -> None:
    backends = common.add_argument_group("backends: the Messages API, or Claude Code on your login")
    backends.add_argument(
        "--provider",
        choices=["anthropic", "claude-code", "auto"],
        help="who runs the agents (env SUBAGENTS_PROVIDER; default auto: the API when a key is set, else "
        "Claude Code when it is installed and logged in)",
    )
    backends.add_argument(
        "--warm-sessions", type=int, default=1, metavar="N", help="Claude Code sessions kept started per agent"
    )
    backends.add_argument(
        "--warm-idle", type=float, default=600, metavar="S", help="stop a warm Claude Code session unused this long"
    )
    backends.add_argument(
        "--warm-memory", type=int, default=1024, metavar="MB", help="memory the warm Claude Code sessions may use"
    )
    backends.add_argument("--claude-cli", metavar="PATH", help="the Claude Code CLI (default: the bundled one)")
    backends.add_argument(
        "--claude-settings",
        action="append",
        default=[],
        choices=["user", "project", "local"],
        help="load these Claude Code settings into subagent sessions (default: none; repeatable)",
    )
