"""`subagents install claude-code|claude-desktop`: add this installation to a client's config.

The files are written here, not through `claude mcp add`: that works without the `claude` binary (Desktop
users, installing before Claude Code, CI), can write `alwaysLoad`, is idempotent (`claude mcp add` refuses a
name that exists), and can show a dry run and keep a backup. The entry names this installation's
`subagents` by absolute path (or `uvx`), because a client starts servers with its own PATH, not the
shell's with the venv active.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

from subagents.cli.client_configs import (
    SCOPES,
    SERVER_NAME,
    Change,
    claude_code_keys,
    claude_json,
    command_problem,
    desktop_config,
    installed_command,
    project_root,
    read_json,
    template_entry,
    uvx_command,
    with_server,
    write_json,
)
from subagents.errors import ConfigError

PLACEHOLDERS = ("/ABSOLUTE/PATH", "REPLACE")


def add_install_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    install = sub.add_parser("install", help="add subagents to Claude Code or Claude Desktop")
    clients = install.add_subparsers(dest="client", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default=SERVER_NAME, help=f"the server's name in the client (default {SERVER_NAME})")
    common.add_argument(
        "--uvx", action="store_true", help="start it with `uvx --from SPEC subagents` instead of this installation"
    )
    common.add_argument(
        "--from", dest="source", metavar="SPEC", help="with --uvx: the package or path uvx installs from"
    )
    common.add_argument(
        "--env", action="append", default=[], metavar="KEY=VALUE", help="an environment variable for the server"
    )
    common.add_argument("--dry-run", action="store_true", help="show what would be written, and write nothing")
    common.add_argument("serve_args", nargs="*", metavar="-- SERVE_ARGS", help="extra `subagents serve` arguments")
    code = clients.add_parser("claude-code", parents=[common], help="Claude Code (CLI and the Desktop Code tab)")
    code.add_argument(
        "--scope",
        choices=SCOPES,
        default="local",
        help="local: you, in this project (default); project: .mcp.json in the project, for the team; user: "
        "you, in every project",
    )
    code.add_argument("--project", type=Path, metavar="DIR", help="the project (default: the git root of the cwd)")
    code.set_defaults(handler=cmd_install_claude_code, verbose=0)
    desktop = clients.add_parser("claude-desktop", parents=[common], help="Claude Desktop (stdio)")
    desktop.add_argument(
        "--root", type=Path, metavar="DIR", help="the folder the subagents may read (default: the current one)"
    )
    desktop.add_argument("--config", type=Path, metavar="PATH", help="the config file (default: Desktop's, per OS)")
    desktop.set_defaults(handler=cmd_install_claude_desktop, verbose=0)


def cmd_install_claude_code(args: argparse.Namespace) -> int:
    project = project_root(args.project or Path.cwd())
    if not project.is_dir():
        raise ConfigError(f"--project {args.project} is not a directory; pass the project's folder.")
    entry, notes = server_entry(args, template_entry(".mcp.json"))
    path, keys = claude_code_keys(args.scope, project)
    changes = [Change(path, (data := read_json(path)), with_server(data, keys, args.name, entry))]
    if args.scope == "project":
        changes.append(approval(project, args.name))
        notes += project_notes(project)
    done = apply(changes, args.dry_run, private=args.scope != "project")
    where = {"local": f"you, in {project}", "project": f"everyone who opens {project}", "user": "you, everywhere"}
    report(f"Claude Code ({args.scope} scope: {where[args.scope]})", args.name, entry, done, args.dry_run, notes)
    if not args.dry_run:
        waits = args.scope == "project" and not trusted(project)
        expect = "⏸ Pending approval, until you trust the folder" if waits else "✔ Connected"
        print(f"Check it: cd {project} && claude mcp list    (expect: {args.name}: … - {expect})")
    return 0


def cmd_install_claude_desktop(args: argparse.Namespace) -> int:
    root = (args.root or Path.cwd()).resolve()
    if not root.is_dir():
        raise ConfigError(f"--root {args.root} is not a directory; pass the folder the subagents may read.")
    template = template_entry("claude_desktop_config.json")
    entry, notes = server_entry(args, template, root=root)
    path = args.config or desktop_config()
    data = read_json(path)
    done = apply([Change(path, data, with_server(data, (), args.name, entry))], args.dry_run, private=True)
    if not any(key.startswith("ANTHROPIC_") for key in entry.get("env", {})):
        notes.append(
            "Desktop does not see your shell's environment: give the server a key with "
            "--env ANTHROPIC_API_KEY=sk-ant-..., or add it to the entry's env in the file."
        )
    notes.append("Quit Claude Desktop fully (not just its window) and start it again to load the change.")
    report("Claude Desktop", args.name, entry, done, args.dry_run, notes)
    return 0


def server_entry(
    args: argparse.Namespace, template: dict[str, Any], *, root: Path | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The template's entry with this installation's command, the serve arguments and the environment."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", args.name):
        raise ConfigError(f"--name {args.name!r}: a client server name is letters, digits, - and _ only.")
    notes: list[str] = []
    if args.uvx:
        command, warning = uvx_command(args.source)
        notes += [warning] if warning else []
    elif args.source:
        raise ConfigError("--from only applies with --uvx: add --uvx, or drop --from.")
    else:
        command = installed_command()
    serve = [str(a) for a in template.get("args", ["serve"])]
    if root is not None and "--root" in serve:
        serve[serve.index("--root") + 1] = str(root)
    serve += [a for a in args.serve_args if a != "--"]
    entry = {key: value for key, value in template.items() if key == "type"}
    entry |= {"command": command[0], "args": [*command[1:], *serve]}
    entry |= {key: value for key, value in template.items() if key not in ("type", "command", "args", "env")}
    env = {k: str(v) for k, v in (template.get("env") or {}).items() if not _placeholder(str(v))}
    env |= dict(_pair(item) for item in args.env)
    if env:
        entry["env"] = env
    if problem := command_problem(entry):
        notes.append(f"Warning: {problem}.")
    return entry, notes


def approval(project: Path, name: str) -> Change:
    """The server approved for this user in the project's `.claude/settings.local.json` (not committed): what
    answering Claude Code's "use this .mcp.json server?" prompt records."""
    path = project / ".claude" / "settings.local.json"
    data = read_json(path)
    after = json.loads(json.dumps(data))
    enabled = after.get("enabledMcpjsonServers")
    enabled = [str(e) for e in enabled] if isinstance(enabled, list) else []
    after["enabledMcpjsonServers"] = enabled if name in enabled else [*enabled, name]
    return Change(path, data, after)


def project_notes(project: Path) -> list[str]:
    notes = [
        f"{project / '.mcp.json'} names a path on this machine; commit it only if it was written with --uvx "
        "and a --from your team can reach."
    ]
    if not trusted(project):
        notes.append(
            f"Claude Code has not been told to trust {project} yet, and runs a project's .mcp.json servers only "
            f"in trusted folders: run `claude` in {project} once and accept (until then `claude mcp list` "
            "shows Pending approval). Or install with --scope local, which needs no trust."
        )
    return notes


def trusted(project: Path) -> bool:
    """Whether the user has accepted Claude Code's "trust this folder?" dialog for `project`."""
    projects = read_json(claude_json()).get("projects", {})
    entry = projects.get(str(project)) if isinstance(projects, dict) else None
    return isinstance(entry, dict) and entry.get("hasTrustDialogAccepted") is True


def apply(changes: list[Change], dry_run: bool, *, private: bool) -> list[Change]:
    if dry_run:
        return changes
    return [write_json(c, private=private) if c.changed else c for c in changes]


def report(client: str, name: str, entry: dict[str, Any], done: list[Change], dry_run: bool, notes: list[str]) -> None:
    verb = "Would write" if dry_run else "Wrote"
    print(f"{client}: the {name!r} server starts {' '.join([entry['command'], *entry['args']])}")
    for change in done:
        if not change.changed:
            print(f"  {change.path}: already up to date, left as it was")
            continue
        backup = f" (the old file is kept as {change.backup.name})" if change.backup else ""
        print(f"  {verb} {change.path}{backup}")
    if dry_run:
        print(json.dumps({"mcpServers": {name: entry}}, indent=2))
        print("Dry run: nothing was written.")
    for note in notes:
        print(f"Note: {note}", file=sys.stderr)


def _placeholder(value: str) -> bool:
    return any(mark in value for mark in PLACEHOLDERS)


def _pair(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--env {item!r} must look like KEY=VALUE, e.g. --env ANTHROPIC_API_KEY=sk-ant-...")
    return key.strip(), value
