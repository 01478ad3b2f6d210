"""`subagents agents list|show|validate`: what the server would load, and what is wrong with it."""

from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING

import anyio

from subagents.cli.settings import build_app, settings_from_args
from subagents.config import Settings
from subagents.definitions.catalog import Catalog
from subagents.definitions.spec import AgentSpec
from subagents.grants import Backend, grant_tools
from subagents.principals import LOCAL
from subagents.providers.anthropic import AnthropicSettings

if TYPE_CHECKING:
    from subagents.app import Subagents


def cmd_agents_list(args: argparse.Namespace) -> int:
    app = build_app(settings_from_args(args))
    specs = sorted(app.catalog.agents.values(), key=lambda s: s.name)
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": s.name,
                        "written_name": s.agent_name,
                        "description": s.description,
                        "model": s.model,
                        "resolved_model": app.resolver.resolve(s.model),
                        "tools": list(app.grant(s).tools),
                        "unavailable_tools": [str(lack) for lack in app.grant(s).lacking],
                        "read_only": not app.grant(s).writes,
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
    app = build_app(settings_from_args(args), agent=args.name)
    spec = app.agent(args.name)
    print(f"name:        {_name_line(spec)}\nsource:      {spec.source} ({spec.layer})")
    print(f"model:       {spec.model} -> {app.resolver.resolve(spec.model)}")
    choice = anyio.run(app.backend_for, spec)
    grant = app.grant(spec, backend=choice.backend or "anthropic")
    backend = choice.backend or "none (the tools below are the Messages API's)"
    print(f"backend:     {backend} ({choice.reason})")
    print(f"tools:       {grant.shown()}")
    if grant.lacking:
        print(f"unavailable: {', '.join(lack.explained() for lack in grant.lacking)}")
    print(f"read-only:   {not grant.writes}")
    for label, value in limit_lines(app, spec):
        print(f"{label + ':':<12} {value}")
    print(f"description: {spec.description}\n\n{spec.prompt}")
    return 0


def limit_lines(app: Subagents, spec: AgentSpec) -> list[tuple[str, str]]:
    """The limits a run of `spec` gets, each with who set it: the agent file, or the server."""
    limits, options, settings = app.limits(spec), spec.options, app.settings
    budget = app.budget(spec, LOCAL)

    def who(own: object, effective: object) -> str:
        return "agent" if own is not None and own == effective else "server"

    fallback = limits.fallback_model or (
        app.resolver.resolve(settings.fallback_model) if settings.fallback_model else None
    )
    rows = [
        ("max turns", f"{limits.max_turns} ({who(spec.max_turns, limits.max_turns)})"),
        ("max tokens", f"{limits.max_tokens} a turn ({who(options.max_tokens, limits.max_tokens)})"),
        ("timeout", f"{app.timeout_s(spec):g} s ({who(options.timeout, app.timeout_s(spec))})"),
        (
            "output cap",
            "none"
            if budget.max_output_tokens is None
            else f"{budget.max_output_tokens} tokens a run "
            f"({who(options.max_output_tokens, budget.max_output_tokens)})",
        ),
        (
            "cost cap",
            "none"
            if budget.max_cost_usd is None
            else f"${budget.max_cost_usd:g} a run ({who(options.max_cost_usd, budget.max_cost_usd)})",
        ),
        ("fallback", f"{fallback} ({'agent' if options.fallback_model else 'server'})" if fallback else "none"),
    ]
    return rows


def _name_line(spec: AgentSpec) -> str:
    if not spec.renamed:
        return spec.name
    return f"{spec.name} (the file names it {spec.agent_name!r}, not a valid MCP tool name; served as {spec.name!r})"


def cmd_agents_validate(args: argparse.Namespace) -> int:
    from subagents.definitions.catalog import Layer, default_layers, load_catalog

    settings = settings_from_args(args)
    if args.dirs:
        layers = tuple(Layer("checked", d) for d in args.dirs)
        missing = [d for d in args.dirs if not d.exists()]
        for d in missing:
            print(f"ERROR   {d}: no such directory or file")
        catalog = load_catalog(layers)
    else:
        catalog = load_catalog(
            default_layers(project_dir=settings.project_dir, extra_dirs=settings.agents_dirs, bundled=settings.bundled)
        )
        missing = []
    lacking, undecided = 0, 0
    for spec in sorted(catalog.agents.values(), key=lambda s: s.name):
        written = f"  (written {spec.agent_name!r})" if spec.renamed else ""
        backend = static_backend(spec, settings)
        undecided += backend is None
        grant = grant_tools(spec, settings, backend=backend or "anthropic")
        print(f"OK      {spec.name:<24} {spec.source} ({spec.layer}){written}")
        print(f"        tools{' on Claude Code' if grant.backend == 'claude-code' else ''}: {grant.shown()}")
        if grant.lacking:
            shipped = grant.as_shipped(spec)  # a bundled agent without opt-in Bash: a note, not a warning
            lacking += not shipped
            lacks = ", ".join(lack.explained() for lack in grant.lacking)
            refused = " (so calls are refused)" if grant.refused else ""
            level = "INFO" if shipped else "WARNING"
            print(f"{level:<7} {spec.source}: not available on this server{refused}: {lacks}")
    for problem in catalog.problems:
        print(f"{problem.level.upper():<7} {problem.path}: {problem.message}")
    if undecided:
        print(
            f"\nnote: tools are shown as the Messages API backend gives them. No API key is set, so {undecided} "
            "agent(s) on provider auto would run on Claude Code if it is logged in; there Bash is never offered, "
            "LS runs as Glob and MultiEdit as Edit (`subagents agents show NAME` says which backend an agent gets)."
        )
    print(f"\n{_summary(catalog, missing=len(missing), lacking=lacking)}")
    return 1 if catalog.errors or missing else 0


def static_backend(spec: AgentSpec, settings: Settings) -> Backend | None:
    """The backend `spec` runs on, as far as the settings and the environment say without asking Claude Code:
    None when `auto` would have to (no API key is set)."""
    requested = spec.options.provider or settings.provider
    if requested != "auto":
        return requested
    return "anthropic" if AnthropicSettings.from_env(dict(os.environ)).configured else None


def _summary(catalog: Catalog, *, missing: int, lacking: int) -> str:
    count = {level: sum(p.level == level for p in catalog.problems) for level in ("error", "warning")}
    warnings = count["warning"] + lacking
    repaired = len({p.path for p in catalog.problems if p.message.startswith("repaired:")})
    skipped = sum(p.level == "info" and p.message.startswith("not an agent file") for p in catalog.problems)
    return (
        f"{len(catalog.agents)} agents valid, {count['error'] + missing} invalid, {warnings} warnings; "
        f"{repaired} repaired, {skipped} not agent files (skipped)"
    )
