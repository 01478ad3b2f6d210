"""`subagents agents list|show|validate`: what the server would load, and what is wrong with it."""

from __future__ import annotations

import argparse
import json

from subagents.cli.settings import build_app, settings_from_args
from subagents.definitions.catalog import Catalog
from subagents.definitions.spec import AgentSpec
from subagents.grants import ToolGrant, grant_tools


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
    grant = app.grant(spec)
    print(f"tools:       {_tools_line(grant)}")
    if grant.lacking:
        print(f"unavailable: {', '.join(lack.explained() for lack in grant.lacking)}")
    print(f"max turns:   {app.limits(spec).max_turns}\nread-only:   {not grant.writes}")
    print(f"description: {spec.description}\n\n{spec.prompt}")
    return 0


def _tools_line(grant: ToolGrant) -> str:
    if grant.refused:
        return "none of those it names, so calls are refused"
    return ", ".join(grant.tools) or "none"


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
    lacking = 0
    for spec in sorted(catalog.agents.values(), key=lambda s: s.name):
        written = f"  (written {spec.agent_name!r})" if spec.renamed else ""
        grant = grant_tools(spec, settings)
        print(f"OK      {spec.name:<24} {spec.source} ({spec.layer}){written}")
        print(f"        tools: {_tools_line(grant)}")
        if grant.lacking:
            lacking += 1
            lacks = ", ".join(lack.explained() for lack in grant.lacking)
            refused = " (so calls are refused)" if grant.refused else ""
            print(f"WARNING {spec.source}: not available on this server{refused}: {lacks}")
    for problem in catalog.problems:
        print(f"{problem.level.upper():<7} {problem.path}: {problem.message}")
    print(f"\n{_summary(catalog, missing=len(missing), lacking=lacking)}")
    return 1 if catalog.errors or missing else 0


def _summary(catalog: Catalog, *, missing: int, lacking: int) -> str:
    count = {level: sum(p.level == level for p in catalog.problems) for level in ("error", "warning")}
    warnings = count["warning"] + lacking
    repaired = len({p.path for p in catalog.problems if p.message.startswith("repaired:")})
    skipped = sum(p.level == "info" and p.message.startswith("not an agent file") for p in catalog.problems)
    return (
        f"{len(catalog.agents)} agents valid, {count['error'] + missing} invalid, {warnings} warnings; "
        f"{repaired} repaired, {skipped} not agent files (skipped)"
    )
