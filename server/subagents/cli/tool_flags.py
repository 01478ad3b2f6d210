"""The tool flags: what agents' tools may do on this server (Bash, the web, how deep delegation goes).

`serve`, `run` and the pattern commands take them, and so do `agents list|show|validate`, so those show
exactly what `serve` with the same flags gives each agent. Commands without them get the defaults.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from subagents.config import check_dirs
from subagents.depth import DEPTH_ENV
from subagents.errors import ConfigError
from subagents.tools.bash import BashPolicy
from subagents.tools.web import WebPolicy

# What a command without these flags (doctor, demo) gets: every tool flag off.
TOOL_FLAG_DEFAULTS: dict[str, Any] = {
    "allow_bash": [],
    "bash_timeout": 120.0,
    "bash_ro_bind": [],
    "web_tools": False,
    "web_allowed_domain": [],
    "web_max_uses": 5,
    "max_depth": None,
}


def tool_flags() -> argparse.ArgumentParser:
    """The tool flags, as a parent parser."""
    flags = argparse.ArgumentParser(add_help=False)
    tools = flags.add_argument_group("tools: Bash, the web and delegation (Bash and the web are off unless turned on)")
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
        "--max-depth",
        type=int,
        metavar="N",
        help="longest delegation chain: a client's call is depth 1, each pattern child or Task child one deeper "
        "(default 3; env SUBAGENTS_DELEGATION_DEPTH says how deep this server already is)",
    )
    return flags


def tool_settings(args: argparse.Namespace, env: Mapping[str, str]) -> dict[str, Any]:
    """The settings the tool flags and SUBAGENTS_DELEGATION_DEPTH give."""
    values: dict[str, Any] = {"bash": bash_policy(args), "web": web_policy(args)}
    if args.max_depth is not None:
        values["max_depth"] = args.max_depth
    if depth := env.get(DEPTH_ENV):
        if not depth.isdigit():
            raise ConfigError(f"{DEPTH_ENV}={depth!r} must be a whole number (0 at the top)")
        values["delegation_depth"] = int(depth)
    return values


def bash_policy(args: argparse.Namespace) -> BashPolicy:
    return BashPolicy(
        enabled=bool(args.allow_bash),
        allow=tuple(args.allow_bash),
        timeout_s=args.bash_timeout,
        read_only=check_dirs(tuple(args.bash_ro_bind), "--bash-ro-bind"),
    )


def web_policy(args: argparse.Namespace) -> WebPolicy:
    if args.web_allowed_domain and not args.web_tools:
        raise ConfigError("--web-allowed-domain needs --web-tools, which turns the web tools on")
    try:
        return WebPolicy(
            enabled=args.web_tools, allowed_domains=tuple(args.web_allowed_domain), max_uses=args.web_max_uses
        )
    except ValidationError as exc:
        reasons = "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
        raise ConfigError(f"web tools: {reasons}") from None
