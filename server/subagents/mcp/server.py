"""The MCP server: agent tools, run tools, resources and prompts on one MCPServer; stdio and Streamable HTTP."""

from __future__ import annotations

import functools
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable

import anyio
from mcp.server.auth.provider import TokenVerifier
from mcp.server.mcpserver import MCPServer

from subagents import __version__
from subagents.app import Subagents
from subagents.mcp import http
from subagents.mcp.agent_tools import to_tool_result
from subagents.mcp.live import LiveAgents
from subagents.mcp.pattern_tools import any_result, pattern_tools
from subagents.mcp.resources import add_agent_resources
from subagents.mcp.roots import RootsCache
from subagents.mcp.run_tools import add_run_resources, add_run_tools
from subagents.mcp.surface import agent_surface
from subagents.mcp.warmup import WarmUpAfterListing, warm_up_unlisted
from subagents.orchestration.resume import keep_resuming

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
Each tool here is a specialist subagent that runs on its own model, with its own system prompt and \
context window, and reads the project through sandboxed tools (Read, Grep, Glob, LS; writers work on an \
isolated copy and return a diff).

Delegating well:
- Call a specialist when its description fits the job; one well-briefed call beats several vague ones.
- `task` must stand alone: the specialist has not seen this conversation. Say the goal, the scope \
(which change, module or question), and what a good answer looks like.
- Put background in `context`: the diff, constraints, what you already know or ruled out.
- Name the files to start from in `files` (paths relative to the project root); the specialist opens \
them itself, so do not paste whole files into `context`.
- Read-only specialists can run in parallel. Do not call the same specialist twice for the same question.

Reading the result: `report` is the specialist's answer (`output`, for specialists that answer in JSON). \
`status` is completed or failed (then `error` says why and what to fix). `stop_reason` "max_turns" means \
it was cut short: narrow the task or ask again. `run_id` identifies the run. `unavailable_tools` lists tools \
its file names that this server lacks. Check a specialist's claims against the code before acting on them."""

CATALOG_INSTRUCTIONS = """\
This server holds many specialist subagents, so they are not one tool each. Find one with `list_agents` \
(a few words about the job: they match agent names and descriptions), then call `delegate` with its \
`agent` name. Each runs on its own model, with its own system prompt and context window, and reads the \
project through sandboxed tools (writers work on an isolated copy and return a diff).

Delegating well:
- Pick the agent whose description fits the job; one well-briefed call beats several vague ones.
- `task` must stand alone: the agent has not seen this conversation. Say the goal, the scope (which \
change, module or question), and what a good answer looks like.
- Put background in `context`: the diff, constraints, what you already know or ruled out.
- Name the files to start from in `files` (paths relative to the project root); the agent opens them \
itself, so do not paste whole files into `context`.
- `start_agent` takes the same `agent` name, for work that may outlast your tool timeout.

Reading the result: `report` is the agent's answer (`output`, for agents that answer in JSON). `status` is \
completed or failed (then `error` says why and what to fix). `stop_reason` "max_turns" means it was cut \
short: narrow the task or ask again. `unavailable_tools` lists tools its file names that this server lacks. \
Check an agent's claims against the code before acting on them."""


class SubagentsMCP(MCPServer):
    """MCPServer plus the per-connection state that our resolvers reach through `ctx.mcp_server`."""

    roots_cache: RootsCache


def build_server(app: Subagents, *, live: LiveAgents | None = None) -> MCPServer:
    """The MCP server: a tool and a prompt per agent, or, for a large catalog, `delegate` and `list_agents`
    with one prompt; then the pattern tools, the run tools and the resources. With `live`, the agents follow
    their files (live.run) and the lists say they change; without, they do not change and say so."""
    surface = agent_surface(app)
    tools = surface.tools + pattern_tools(app)
    max_chars = app.settings.max_report_chars
    add_run_tools(tools, app, bound=any_result(max_chars, lambda outcome: to_tool_result(outcome, max_chars)))
    server = SubagentsMCP(
        "subagents",
        title="subagents",
        version=__version__,
        instructions=CATALOG_INSTRUCTIONS if surface.catalog else INSTRUCTIONS,
        tools=tools,
        log_level="WARNING",
        subscriptions=live.bus if live is not None else False,
        middleware=[WarmUpAfterListing(app), *([live.track] if live is not None else [])],
    )
    server.roots_cache = RootsCache()
    server.roots_cache.install(server)
    add_agent_resources(server, app)
    add_run_resources(server, app)
    for prompt in surface.prompts:
        server.add_prompt(prompt)
    if live is not None:
        live.attach(server, surface)
    count = len(app.catalog.agents)
    log.info("MCP surface: %s", "catalog mode (delegate, list_agents)" if surface.catalog else f"{count} agent tools")
    return server


def resume_stopped_teams(app: Subagents) -> None:
    """A server (not a one-shot CLI command) finishes the team runs a stopped server left in its store."""
    app.jobs.spawn(functools.partial(keep_resuming, app))


def live_for(app: Subagents) -> LiveAgents | None:
    """Live reload, unless --no-watch turned it off."""
    return LiveAgents(app) if app.settings.watch else None


async def serve_stdio(app: Subagents) -> None:
    live = live_for(app)
    server = build_server(app, live=live)
    app.warm_up_on_enter = False  # WarmUpAfterListing starts it
    async with app, anyio.create_task_group() as tg:
        resume_stopped_teams(app)
        tg.start_soon(warm_up_unlisted, app)
        tg.start_soon(stop_on_signal, tg.cancel_scope, app)
        if live is not None:
            tg.start_soon(live.run)
        await server.run_stdio_async()
        if live is not None:
            live.stop()
        tg.cancel_scope.cancel()


async def stop_on_signal(scope: anyio.CancelScope, app: Subagents, grace_s: float = 3.0) -> None:
    """SIGTERM / SIGINT cancel every run (each records itself as cancelled), then stop the server.

    The SDK reads stdin in a worker thread that cancellation cannot interrupt, so if that read still
    blocks after `grace_s`, the process exits anyway: the runs were recorded by then. With no run going
    there is nothing to record, so it exits at once (Ctrl-C in a terminal)."""
    with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            idle = app.limiter.idle
            log.info(
                "received %s; stopping%s",
                signal.Signals(signum).name,
                " (no run was going)" if idle else ", cancelling the runs in flight",
            )
            app.jobs.cancel_all()
            scope.cancel()
            timer = threading.Timer(0.05 if idle else grace_s, os._exit, args=(0,))
            timer.daemon = True
            timer.start()
            return


async def serve_http(
    app: Subagents,
    security: http.HttpSecurity,
    port: int,
    *,
    sock: socket.socket | None = None,
    on_listening: Callable[[str], None] | None = None,
    verifier: TokenVerifier | None = None,
) -> None:
    """Serve over Streamable HTTP. Callers prove who they are with the configured tokens, or with any token
    `verifier` (the SDK's TokenVerifier: OAuth introspection, a JWT check) accepts; its subject is the principal."""
    live = live_for(app)
    server = build_server(app, live=live)
    verifier = http.verifier_for(security, verifier)  # a bad tokens file stops us before anything starts
    app.warm_up_on_enter = False  # WarmUpAfterListing starts it
    async with app, anyio.create_task_group() as tg:
        resume_stopped_teams(app)
        tg.start_soon(warm_up_unlisted, app)
        if live is not None:
            tg.start_soon(live.run)
        try:
            await http.serve_http(server, security, port, sock=sock, on_listening=on_listening, verifier=verifier)
        finally:
            if live is not None:
                live.stop()
            tg.cancel_scope.cancel()
