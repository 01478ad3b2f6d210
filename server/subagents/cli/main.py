"""`subagents …` commands. Output for people goes to stdout; logs go to stderr."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError

from subagents import __version__
from subagents.cli.agents import cmd_agents_list, cmd_agents_show, cmd_agents_validate
from subagents.cli.run import cmd_run
from subagents.cli.runs import add_runs_parser
from subagents.cli.serve import cmd_serve
from subagents.cli.settings import validation_reasons
from subagents.errors import SubagentsError

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
    runs.add_argument(
        "--timeout", type=float, metavar="S", help="time limit of one run; agents may set less (default 1800)"
    )
    runs.add_argument(
        "--max-turns", type=int, metavar="N", help="most model turns a run may take; agents may set fewer (default 50)"
    )

    _add_tool_flags(common)

    parser = argparse.ArgumentParser(prog="subagents", description="Specialist LLM subagents as MCP tools.")
    parser.add_argument("--version", action="version", version=f"subagents {__version__}")
    parser.set_defaults(verbose=0)
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", parents=[common], help="run the MCP server (stdio by default)")
    serve.add_argument("--transport", choices=["stdio", "http"], default="stdio")
    serve.add_argument("--host", default="127.0.0.1", help="HTTP bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="HTTP port (default 8765)")
    serve.add_argument(
        "--catalog-mode",
        choices=["auto", "on", "off"],
        default=os.environ.get("SUBAGENTS_CATALOG_MODE", "auto"),
        help="on: one delegate tool and list_agents instead of a tool per agent; auto (default): on past 20 agents",
    )
    serve.add_argument(
        "--agents",
        action="append",
        default=[],
        metavar="NAME,GLOB",
        help="serve only these agents: names or globs such as 'py-*', comma-separated (repeatable)",
    )
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
        "--trusted-proxy",
        action="append",
        default=[],
        metavar="ADDR",
        help="reverse proxy address or network whose X-Forwarded-For names the client (repeatable; default: "
        "trust nobody's)",
    )
    serve.add_argument(
        "--max-concurrent-runs",
        type=int,
        default=10,
        metavar="N",
        help="agent runs going at once per caller (the token's holder over HTTP, the local user over stdio), "
        "background runs included; more are refused with a message (default 10)",
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


def _add_tool_flags(common: argparse.ArgumentParser) -> None:
    """What agents' tools may do on this server: Bash, the web, delegation. `agents show` and `validate` take
    them too, so they show exactly what `serve` with the same flags gives each agent."""
    tools = common.add_argument_group("tools: Bash, the web and delegation (off unless turned on)")
    tools.add_argument(
        "--allow-bash",
        action="append",
        default=[],
        metavar="PREFIX",
        help="let writing agents (test-writer) run commands starting with PREFIX, e.g. 'python -m pytest', "
        "inside a bubblewrap sandbox on their isolated copy (repeatable; Bash is off by default)",
    )
    tools.add_argument("--bash-timeout", type=float, default=120, metavar="S", help="time limit of one command")
    tools.add_argument(
        "--bash-ro-bind",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="let Bash commands read DIR (read-only) inside their sandbox, e.g. a toolchain outside /usr (repeatable)",
    )
    tools.add_argument(
        "--web-tools",
        action="store_true",
        help="give agents that name WebFetch/WebSearch the Messages API's web fetch and search (they send "
        "queries and URLs out, and searches cost money; off by default)",
    )
    tools.add_argument(
        "--web-allowed-domain",
        action="append",
        default=[],
        metavar="DOMAIN",
        help="with --web-tools: only search and fetch this domain and its subdomains (repeatable)",
    )
    tools.add_argument(
        "--web-max-uses", type=int, default=5, metavar="N", help="web searches or fetches per model turn (default 5)"
    )
    tools.add_argument(
        "--max-delegation-depth",
        type=int,
        default=3,
        metavar="N",
        help="how deep agents may hand work to agents with Task; a client's call is depth 1 (default 3)",
    )


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(stream=sys.stderr, level=level, format="subagents %(levelname)s %(name)s: %(message)s")
