"""`subagents doctor`: is this installation ready, and if not, what to do. Exits 0 only when nothing failed.

Each check prints one line: `ok`, `warn` (works, but worth a look) or `FAIL` (will not work), and every
warn and FAIL says its fix. `--live` adds one small real request to the model.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import inspect
import os
import socket
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import anyio

from subagents.cli.client_configs import command_problem, configured_servers, project_root
from subagents.cli.settings import settings_from_args
from subagents.config import Settings
from subagents.errors import SubagentsError
from subagents.history.records import SchemaStatus
from subagents.providers.anthropic import AnthropicSettings

Level = Literal["ok", "info", "warn", "FAIL"]
PACKAGES = {"mcp": (2, 3), "anthropic": (2, 12), "pydantic": (2, 11), "anyio": (4, 9), "uvicorn": None, "rich": None}
API_HOST = "https://api.anthropic.com"


@dataclass(frozen=True)
class Check:
    level: Level
    topic: str
    text: str
    fix: str | None = None

    def line(self) -> str:
        fix = f"\n{'':8}fix: {self.fix}" if self.fix else ""
        return f"  {self.level:<5} {self.topic}: {self.text}{fix}"


def cmd_doctor(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    env = dict(os.environ)
    api = AnthropicSettings.from_env(env)
    checks: list[Check] = []
    print("subagents doctor")
    groups: list[Callable[[], Iterator[Check]]] = [
        installation,
        lambda: model(api),
        lambda: backend(env),
        lambda: reachable(api),
        lambda: live(api, settings) if args.live else iter(()),
        sdk_parameters,
        lambda: agent_files(settings),
        lambda: store(settings),
        lambda: roots(args, settings),
        lambda: client_configs(settings),
    ]
    for group in groups:
        for check in group():
            checks.append(check)
            print(check.line(), flush=True)
    failed = [c for c in checks if c.level == "FAIL"]
    warned = [c for c in checks if c.level == "warn"]
    verdict = "all is well" if not failed else f"{len(failed)} problem{'s' * (len(failed) > 1)} to fix"
    print(f"\n{verdict}; {len(warned)} warning{'s' * (len(warned) != 1)}.")
    return 1 if failed else 0


def installation() -> Iterator[Check]:
    from subagents import __version__

    versions = [f"Python {sys.version.split()[0]}", f"subagents {__version__}"]
    for package, least in PACKAGES.items():
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            yield Check("FAIL", "packages", f"{package} is not installed", f"pip install --upgrade {package}")
            continue
        versions.append(f"{package} {version}")
        if least and _major_minor(version) < least:
            need = ".".join(map(str, least))
            yield Check(
                "FAIL", "packages", f"{package} {version} is older than {need}", f"pip install '{package}>={need}'"
            )
    yield Check("ok", "installation", ", ".join(versions) + f" ({sys.executable})")


def model(api: AnthropicSettings) -> Iterator[Check]:
    if not api.configured:
        yield Check(
            "FAIL",
            "model",
            "no key: neither ANTHROPIC_API_KEY nor ANTHROPIC_AUTH_TOKEN is set here",
            "export ANTHROPIC_API_KEY=sk-ant-... (give a client the same with `subagents install claude-code "
            "--env ANTHROPIC_API_KEY=...`, or let it inherit it); to try it without a key: subagents demo",
        )
        return
    which = "ANTHROPIC_API_KEY" if api.api_key else "ANTHROPIC_AUTH_TOKEN"
    yield Check("ok", "model", f"{which} is set; requests go to {api.base_url or API_HOST}")


def backend(env: dict[str, str]) -> Iterator[Check]:
    """Which backend `--provider auto` picks. The Claude Code backend adds `subagents.backends.auto_backend`;
    until it is part of this build, every run goes to the Messages API."""
    try:
        backends = importlib.import_module("subagents.backends")
    except ImportError:
        yield Check("info", "backend", "the Messages API (this build has no Claude Code backend)")
        return
    choice = anyio.run(backends.auto_backend, env)
    if choice.backend is None:
        yield Check("warn", "backend", f"auto finds no backend: {choice.reason}", "set ANTHROPIC_API_KEY")
    else:
        yield Check("ok", "backend", f"auto picks {choice.backend} ({choice.reason}); billed to {choice.billed_to}")


def reachable(api: AnthropicSettings) -> Iterator[Check]:
    url = urlsplit(api.base_url or API_HOST)
    host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
    if url.scheme not in ("http", "https") or not host:
        yield Check("FAIL", "network", f"ANTHROPIC_BASE_URL {api.base_url!r} is not an http(s) URL", "fix the URL")
        return
    try:
        with socket.create_connection((host, port), timeout=5):
            pass
    except OSError as exc:
        yield Check(
            "FAIL",
            "network",
            f"cannot reach {host}:{port} ({exc.strerror or exc})",
            "check the network, a proxy (HTTPS_PROXY), or ANTHROPIC_BASE_URL",
        )
        return
    yield Check("ok", "network", f"{host}:{port} answers")


def live(api: AnthropicSettings, settings: Settings) -> Iterator[Check]:
    """One real request: the cheapest model, one output token."""
    from subagents.messages import Message, ModelRequest, TextBlock
    from subagents.providers.anthropic import AnthropicProvider
    from subagents.providers.base import ModelResolver

    if not api.configured:
        yield Check("warn", "live request", "skipped: no key")
        return
    model_id = ModelResolver(aliases=settings.model_aliases, default=settings.default_model).resolve("haiku")
    request = ModelRequest(
        model=model_id,
        system="Answer OK.",
        messages=(Message(role="user", content=(TextBlock(text="ping"),)),),
        max_tokens=1,
    )
    provider = AnthropicProvider(api)

    async def ask() -> str:
        try:
            response = await provider.complete(request)
            return f"{response.model or model_id} answered ({response.usage.input_tokens} tokens in)"
        finally:
            await provider.aclose()

    try:
        yield Check("ok", "live request", anyio.run(ask))
    except SubagentsError as exc:
        yield Check("FAIL", "live request", str(exc), "see the message; `subagents doctor` without --live skips this")


def sdk_parameters() -> Iterator[Check]:
    """The request this server sends, against what the installed SDK's `messages.stream` takes."""
    from anthropic.resources.messages import AsyncMessages

    from subagents.messages import Message, ModelRequest, TextBlock, ToolSpec
    from subagents.providers.anthropic import to_api_kwargs

    probe = ModelRequest(
        model="m",
        system="s",
        messages=(Message(role="user", content=(TextBlock(text="t"),)),),
        tools=(ToolSpec(name="Read", description="d", input_schema={"type": "object"}),),
        max_tokens=1,
    )
    taken = inspect.signature(AsyncMessages.stream).parameters
    missing = [name for name in to_api_kwargs(probe) if name not in taken]
    version = importlib.metadata.version("anthropic")
    if missing:
        yield Check(
            "FAIL",
            "sdk",
            f"anthropic {version} does not take {', '.join(missing)}, which every request sends",
            "pip install 'anthropic>=2.12,<3'",
        )
    else:
        yield Check("ok", "sdk", f"anthropic {version} takes every parameter this server sends")


def agent_files(settings: Settings) -> Iterator[Check]:
    from subagents.definitions.catalog import default_layers, load_catalog

    catalog = load_catalog(
        default_layers(project_dir=settings.project_dir, extra_dirs=settings.agents_dirs, bundled=settings.bundled)
    )
    for problem in catalog.problems:
        if problem.level == "error":
            yield Check("FAIL", "agents", f"{problem.path}: {problem.message}", "fix the file (agents validate)")
        elif problem.level == "warning":
            yield Check("warn", "agents", f"{problem.path}: {problem.message}")
    yield Check("ok", "agents", f"{len(catalog.agents)} load: {', '.join(sorted(catalog.agents))}")


def store(settings: Settings) -> Iterator[Check]:
    from subagents.history.store import default_location, is_postgres, store_exists

    if not settings.store_enabled:
        yield Check("info", "store", "off (--no-store)")
        return
    where = settings.store_url or default_location()
    if not store_exists(where):
        path = Path(where)
        parent = next((p for p in path.parents if p.exists()), Path("/"))
        if os.access(parent, os.W_OK):
            yield Check("ok", "store", f"{path} does not exist yet; the first run creates it")
        else:
            yield Check("FAIL", "store", f"cannot create {path}: {parent} is not writable", "pass --store PATH")
        return
    try:
        status = anyio.run(_store_status, where)
    except (SubagentsError, OSError) as exc:
        yield Check("FAIL", "store", f"{where} cannot be used as a run store: {exc}", "fix it, or pass --store PATH")
        return
    if status.newer:
        yield Check("FAIL", "store", f"{where} was written by a newer subagents", "upgrade subagents")
        return
    pending = f"; {len(status.pending)} migrations due (applied at the next start)" if status.pending else ""
    writable = "" if is_postgres(where) or os.access(where, os.W_OK) else " (read-only: runs cannot be recorded)"
    version = f"schema version {status.version}" if status.version is not None else "no schema yet"
    yield Check("warn" if writable else "ok", "store", f"{status.where}: {version}{pending}{writable}")


async def _store_status(where: str) -> SchemaStatus:
    from subagents.history.store import store_for

    async with store_for(where, migrate=False) as probe:
        return await probe.schema_status()


def roots(args: argparse.Namespace, settings: Settings) -> Iterator[Check]:
    where = ", ".join(str(r) for r in settings.effective_roots())
    if args.root:
        why = "from --root"
    elif os.environ.get("SUBAGENTS_ROOTS"):
        why = "from SUBAGENTS_ROOTS"
    elif os.environ.get("CLAUDE_PROJECT_DIR"):
        why = "from CLAUDE_PROJECT_DIR"
    else:
        why = "the current folder (no --root, SUBAGENTS_ROOTS or CLAUDE_PROJECT_DIR)"
    yield Check("ok", "roots", f"file tools may read {where}: {why}; under stdio, a client's own roots replace it")


def client_configs(settings: Settings) -> Iterator[Check]:
    project = project_root(settings.project_dir or Path.cwd())
    servers = configured_servers(project)
    if not servers:
        yield Check("info", "clients", "no client is configured to start subagents", "subagents install claude-code")
    for server in servers:
        problem = command_problem(server.entry)
        scope = "desktop" if "Desktop" in server.where else server.where.split("(")[-1].split()[0]
        fix = f"subagents install {'claude-desktop' if scope == 'desktop' else f'claude-code --scope {scope}'}"
        if problem:
            yield Check(
                "FAIL", "clients", f"{server.where}: {server.name!r}: {problem}", f"{fix} (writes an absolute path)"
            )
        else:
            yield Check("ok", "clients", f"{server.where}: {server.name!r} starts {server.entry.get('command')}")


def _major_minor(version: str) -> tuple[int, int]:
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:2]]
    return (parts + [0, 0])[0], (parts + [0, 0])[1]
