"""Which backend runs an agent, and who pays: the Messages API on a key, or Claude Code on the user's login.

`--provider` (and an agent's own `subagents: {provider: ...}`) says `anthropic`, `claude-code` or
`auto`. `auto` takes the API when a key is set, else Claude Code when it is installed and logged in,
else nothing, and the run fails with the error that names both ways to configure a model.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from subagents.errors import ModelNotConfiguredError
from subagents.providers.anthropic import NO_CREDENTIALS, AnthropicSettings
from subagents.providers.claude_code.detect import ClaudeCodeStatus, claude_code_status
from subagents.providers.claude_code.runner import ClaudeCodeBackend

Provider = Literal["anthropic", "claude-code", "auto"]
Backend = Literal["anthropic", "claude-code"]
PROVIDERS: tuple[Provider, ...] = ("anthropic", "claude-code", "auto")


@dataclass(frozen=True)
class BackendChoice:
    """The backend a run gets (None: nothing can run it), why, and who is billed."""

    backend: Backend | None
    reason: str
    billed_to: str

    def require(self) -> Backend:
        """The backend, or the configure-a-model error saying why there is none."""
        if self.backend is None:
            raise ModelNotConfiguredError(f"{NO_CREDENTIALS} ({self.reason}.)")
        return self.backend


def api_billing(api: AnthropicSettings) -> str:
    key = "ANTHROPIC_API_KEY" if api.api_key else "ANTHROPIC_AUTH_TOKEN"
    where = f" at {api.base_url}" if api.base_url else ""
    return f"the API key in {key}{where}" if api.configured else "nobody: no API key is set"


def decide(requested: Provider, api: AnthropicSettings, claude: ClaudeCodeStatus | None) -> BackendChoice:
    """The choice for `requested`, given the API settings and (when it was needed) Claude Code's status."""
    if requested == "anthropic" or (requested == "auto" and api.configured):
        why = "--provider anthropic" if requested == "anthropic" else "auto: an API key is set"
        return BackendChoice("anthropic", why, api_billing(api))
    if claude is None:
        raise ValueError("Claude Code's status is needed for this choice")
    if requested == "claude-code":
        if claude.usable:
            return BackendChoice("claude-code", "--provider claude-code", claude.billed_to)
        return BackendChoice(None, f"--provider claude-code, but {claude.problem}", claude.billed_to)
    if claude.usable:
        why = "auto: no API key is set; Claude Code is installed and logged in"
        return BackendChoice("claude-code", why, claude.billed_to)
    return BackendChoice(None, f"auto: no API key is set, and {claude.problem}", "nobody")


class Backends:
    """The server's backends and its default provider; chooses per agent."""

    def __init__(self, provider: Provider, api: AnthropicSettings, claude_code: ClaudeCodeBackend | None) -> None:
        self.provider = provider
        self.api = api
        self.claude_code = claude_code

    async def choose(self, requested: Provider | None = None) -> BackendChoice:
        """For an agent's own provider (None: the server's)."""
        wanted = requested or self.provider
        needs_claude = wanted == "claude-code" or (wanted == "auto" and not self.api.configured)
        if not needs_claude:
            return decide(wanted, self.api, None)
        if self.claude_code is None:
            return decide(wanted, self.api, ClaudeCodeStatus(problem="this server has no Claude Code backend"))
        return decide(wanted, self.api, await self.claude_code.status())


async def auto_backend(env: Mapping[str, str] | None = None, cli_path: str | None = None) -> BackendChoice:
    """What `auto` would pick on this machine and why (for `subagents doctor`): asks Claude Code if needed."""
    env = os.environ if env is None else env
    api = AnthropicSettings.from_env(dict(env))
    claude = None if api.configured else await claude_code_status(env, cli_path)
    return decide("auto", api, claude)
