"""`subagents serve`: the MCP server over stdio or Streamable HTTP."""

from __future__ import annotations

import argparse
import logging
import os

import anyio

from subagents.cli.settings import build_app, settings_from_args
from subagents.tools.jail import find_jail

log = logging.getLogger(__name__)


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from_args(
        args,
        transport=args.transport,
        host=args.host,
        port=args.port,
        max_concurrent_runs=args.max_concurrent_runs,
        catalog_mode=args.catalog_mode,
        agents_filter=tuple(p.strip() for item in args.agents for p in item.split(",") if p.strip()),
    )
    if settings.bash.enabled and isinstance(jail := find_jail(), str):
        log.warning("--allow-bash is set, but every Bash call will be refused. %s", jail)
    if settings.web.enabled:
        domains = ", ".join(settings.web.allowed_domains) or "any domain"
        log.info(
            "web tools on for agents that name WebFetch/WebSearch (%s; %d uses a turn)", domains, settings.web.max_uses
        )
    app = build_app(settings)
    from subagents.mcp import server as mcp_server
    from subagents.mcp.http import HttpSecurity

    if args.transport == "http":
        security = HttpSecurity(
            host=args.host,
            auth_token=args.auth_token or os.environ.get("SUBAGENTS_AUTH_TOKEN"),
            allowed_origins=tuple(args.allowed_origin),
            allowed_hosts=tuple(args.allowed_host),
            trusted_proxies=tuple(args.trusted_proxy),
        )
        anyio.run(mcp_server.serve_http, app, security, args.port)
    else:
        anyio.run(mcp_server.serve_stdio, app)
    return 0
