"""`subagents serve`: the MCP server over stdio or Streamable HTTP."""

from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from subagents.cli.logformat import JsonFormatter
from subagents.cli.settings import build_app, float_env, settings_from_args
from subagents.config import Settings
from subagents.errors import ConfigError
from subagents.otel import configure_tracing
from subagents.providers.claude_code.nesting import refuse_if_nested
from subagents.tools.jail import find_jail

if TYPE_CHECKING:
    from subagents.app import Subagents

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
# The collector's young generation is collected every this many new container objects (Python's default
# is 700 or 2,000). Each collection walks every young object still alive, and a server's runs in flight
# keep thousands alive: with 64 at once, 0.45 ms of collector work a call at 700.
YOUNG_GENERATION = 10_000


def tune_collector(app: Subagents) -> None:
    """Garbage collection for a long-running server. Start-up and the warm-up's imports leave ~240,000
    objects that live as long as the process; every full collection walked all of them (150 ms with the
    event loop stopped, every ~2 s under load), so once the warm-up is done they are frozen out of its
    sight (`gc.freeze`: reference counting still frees them; only a cycle among them would stay)."""
    gc.set_threshold(YOUNG_GENERATION, *gc.get_threshold()[1:])
    app.after_warm_up = gc.freeze


def add_team_options(serve: argparse.ArgumentParser) -> None:
    """Flags for a team deployment: one principal per token, a budget per caller, replica leases."""
    team = serve.add_argument_group("team deployments: several users, several replicas on one PostgreSQL store")
    team.add_argument(
        "--auth-tokens",
        type=Path,
        metavar="FILE",
        help="one `name: sha256:<hex>` line per token; each name is a principal who sees only its own runs. "
        "Read again on SIGHUP. Make a line with `subagents tokens new NAME` (env SUBAGENTS_AUTH_TOKENS)",
    )
    team.add_argument(
        "--daily-budget-per-caller",
        type=float,
        metavar="USD",
        help="cost budget of each token holder's runs in a UTC day, on every replica of the store "
        "(env SUBAGENTS_DAILY_BUDGET_PER_CALLER)",
    )
    team.add_argument(
        "--lease-ttl",
        type=float,
        metavar="S",
        help="seconds after which a replica that stopped renewing its runs' leases is taken for dead and its "
        "runs marked interrupted by another (default 20; env SUBAGENTS_LEASE_TTL)",
    )


def team_settings(args: argparse.Namespace) -> dict[str, Any]:
    env = os.environ
    values: dict[str, Any] = {}
    if (budget := args.daily_budget_per_caller or float_env(env, "SUBAGENTS_DAILY_BUDGET_PER_CALLER")) is not None:
        values["caller_daily_budget_usd"] = budget
    if (ttl := args.lease_ttl or float_env(env, "SUBAGENTS_LEASE_TTL")) is not None:
        values["lease_ttl_s"] = ttl
    return values


def _path_env(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def cmd_serve(args: argparse.Namespace) -> int:
    refuse_if_nested("serve")
    if args.transport == "stdio" and (args.port is not None or args.host is not None):
        given = " and ".join(f"--{flag}" for flag in ("host", "port") if getattr(args, flag) is not None)
        raise ConfigError(
            f"{given} only apply to HTTP, and this would serve stdio: add --transport http "
            f"(subagents serve --transport http --port {args.port or DEFAULT_PORT})."
        )
    host = args.host or DEFAULT_HOST
    port = DEFAULT_PORT if args.port is None else args.port
    settings = settings_from_args(
        args,
        transport=args.transport,
        host=host,
        port=port,
        max_concurrent_runs=args.max_concurrent_runs,
        catalog_mode=args.catalog_mode,
        watch=not args.no_watch,
        agents_filter=tuple(p.strip() for item in args.agents for p in item.split(",") if p.strip()),
        **team_settings(args),
    )
    if settings.bash.enabled and isinstance(jail := find_jail(), str):
        log.warning("--allow-bash is set, but every Bash call will be refused. %s", jail)
    if settings.web.enabled:
        domains = ", ".join(settings.web.allowed_domains) or "any domain"
        log.info(
            "web tools on for agents that name WebFetch/WebSearch (%s; %d uses a turn)", domains, settings.web.max_uses
        )
    configure_tracing()  # with OTEL_EXPORTER_OTLP_* set and the otel extra installed; else nothing
    if args.transport == "http":
        return _serve_http(args, settings, host=host, port=port)
    app = build_app(settings)
    tune_collector(app)
    from subagents.mcp import server as mcp_server

    if sys.stdin.isatty():
        say(
            args.log_format,
            f"an MCP server on stdio with {len(app.catalog.agents)} agents, waiting for an MCP client such as "
            "Claude Code (`subagents install claude-code` adds it there); what you type here is not read as "
            "commands (try `subagents run AGENT TASK` or `subagents demo`). Stop it with Ctrl-C.",
        )
    anyio.run(mcp_server.serve_stdio, app)
    return 0


def _serve_http(args: argparse.Namespace, settings: Settings, *, host: str, port: int) -> int:
    from subagents.mcp import server as mcp_server
    from subagents.mcp.http import HttpSecurity, bind_socket, check_bind

    security = HttpSecurity(
        host=host,
        auth_token=args.auth_token or os.environ.get("SUBAGENTS_AUTH_TOKEN"),
        auth_tokens_file=args.auth_tokens or _path_env("SUBAGENTS_AUTH_TOKENS"),
        allowed_origins=tuple(args.allowed_origin),
        allowed_hosts=tuple(args.allowed_host),
        trusted_proxies=tuple(args.trusted_proxy),
    )
    check_bind(security)  # a refused deployment says why before any socket opens
    sock = bind_socket(host, port)  # a port in use is one sentence, before the app starts
    app = build_app(settings)
    tune_collector(app)
    authenticated = security.auth_token or security.auth_tokens_file
    token = "bearer token required" if authenticated else "no token: this machine only"

    def listening(url: str) -> None:
        say(args.log_format, f"listening on {url} (Streamable HTTP, {token}). Stop it with Ctrl-C.")

    anyio.run(lambda: mcp_server.serve_http(app, security, port, sock=sock, on_listening=listening))
    return 0


def say(log_format: str, line: str) -> None:
    """One line for the person at the terminal, on stderr: stdout may be the JSON-RPC channel. With
    --log-format json it is a JSON line too, whatever the log level, so a collector reads every line."""
    if log_format == "json":
        record = logging.makeLogRecord({"name": "subagents.serve", "levelname": "INFO", "msg": line})
        print(JsonFormatter().format(record), file=sys.stderr, flush=True)
        return
    print(f"subagents serve: {line}", file=sys.stderr, flush=True)
