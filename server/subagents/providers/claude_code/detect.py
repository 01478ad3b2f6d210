"""Can Claude Code run a subagent here, and who pays when it does? Asked without importing the SDK.

The answer comes from the CLI itself (`claude auth status --json`), so it is right for every way of
logging in: a claude.ai subscription, an OAuth token, an API key, Bedrock or Vertex.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio

log = logging.getLogger(__name__)

SDK_PACKAGE = "claude_agent_sdk"
INSTALL_HINT = "pip install 'subagents[claude-code]'"
STATUS_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class ClaudeCodeStatus:
    """What `auto` needs to know about Claude Code on this machine."""

    cli: str | None = None  # the CLI a session would run
    logged_in: bool = False
    auth_method: str | None = None  # claude.ai, oauth_token, api_key, ... as the CLI names it
    billed_to: str = "nobody: Claude Code cannot run here"
    problem: str | None = None  # why it cannot run, with the fix; None when it can

    @property
    def usable(self) -> bool:
        return self.problem is None


def sdk_installed() -> bool:
    """True when the `claude-code` extra is installed (looked up, not imported)."""
    return importlib.util.find_spec(SDK_PACKAGE) is not None


def find_cli(cli_path: str | None = None) -> str | None:
    """The CLI a session runs: the one given, else the SDK's bundled one, else `claude` on PATH."""
    if cli_path:
        return cli_path if os.access(cli_path, os.X_OK) else None
    spec = importlib.util.find_spec(SDK_PACKAGE)
    for location in (spec.submodule_search_locations or []) if spec else []:
        bundled = Path(location) / "_bundled" / ("claude.exe" if os.name == "nt" else "claude")
        if bundled.is_file() and os.access(bundled, os.X_OK):
            return str(bundled)
    return shutil.which("claude")


async def claude_code_status(env: Mapping[str, str] | None = None, cli_path: str | None = None) -> ClaudeCodeStatus:
    """Installed and logged in? Runs `claude auth status --json` (about half a second)."""
    if not sdk_installed():
        return ClaudeCodeStatus(problem=f"the Claude Code backend is not installed ({INSTALL_HINT})")
    cli = find_cli(cli_path)
    if cli is None:
        where = f"at {cli_path}" if cli_path else "(neither bundled with claude-agent-sdk nor on PATH)"
        return ClaudeCodeStatus(problem=f"the Claude Code CLI was not found {where}; reinstall with {INSTALL_HINT}")
    status = await _auth_status(cli, dict(os.environ if env is None else env))
    if isinstance(status, str):
        return ClaudeCodeStatus(cli=cli, problem=status)
    method = str(status.get("authMethod") or "none")
    if not status.get("loggedIn"):
        return ClaudeCodeStatus(
            cli=cli,
            auth_method=method,
            problem="Claude Code is installed but not logged in: run `claude` once and log in (or `claude auth login`)",
        )
    return ClaudeCodeStatus(cli=cli, logged_in=True, auth_method=method, billed_to=billed_to(status))


def billed_to(status: Mapping[str, Any]) -> str:
    """Who pays for a run, in words, from `claude auth status --json`."""
    method = str(status.get("authMethod") or "unknown")
    provider = str(status.get("apiProvider") or "firstParty")
    if method == "claude.ai":
        plan = status.get("subscriptionType") or status.get("planTier")
        who = f"the Claude Code login's claude.ai {plan} subscription" if plan else "the Claude Code login (claude.ai)"
    elif method == "oauth_token":
        who = "the Claude Code OAuth token (CLAUDE_CODE_OAUTH_TOKEN)"
    elif method == "api_key":
        who = f"the API key Claude Code uses ({status.get('apiKeySource') or 'ANTHROPIC_API_KEY'})"
    else:
        who = f"Claude Code's {method} login"
    return who if provider == "firstParty" else f"{who} on {provider}"


async def _auth_status(cli: str, env: dict[str, str]) -> dict[str, Any] | str:
    try:
        with anyio.fail_after(STATUS_TIMEOUT_S):
            done = await anyio.run_process([cli, "auth", "status", "--json"], env=env, check=False)
    except TimeoutError:
        return f"`{cli} auth status` did not answer within {STATUS_TIMEOUT_S:g} s"
    except OSError as exc:
        return f"the Claude Code CLI at {cli} cannot run: {exc.strerror or exc}"
    try:
        data = json.loads(done.stdout.decode("utf-8", "replace"))
    except ValueError:
        err = done.stderr.decode("utf-8", "replace").strip()[-300:]
        return f"`{cli} auth status` gave no status (exit {done.returncode}): {err or 'no output'}"
    return data if isinstance(data, dict) else f"`{cli} auth status` gave an unexpected answer"
