"""How one agent's Claude Code session is configured, and the SDK options that make it so.

A `SessionConfig` is everything fixed when the process starts, so it is also the warm pool's key: two
runs may share a pre-started session only when every field matches. What differs per run (which
sandbox checks the paths, where progress goes) is bound to the session when a run takes it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from subagents.depth import DEPTH_ENV
from subagents.providers.claude_code.nesting import SESSION_MARKER

if TYPE_CHECKING:
    from claude_agent_sdk import ClaudeAgentOptions

log = logging.getLogger(__name__)

SettingSource = Literal["user", "project", "local"]
PermissionCheck = Callable[[str, dict[str, Any]], Awaitable[str | None]]  # refusal message, or None

# What every session gets in its environment, whatever the user's shell has.
SESSION_ENV: Mapping[str, str] = {
    SESSION_MARKER: "1",  # the recursion guard: `subagents serve` refuses to start under it
    "DISABLE_AUTOUPDATER": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "CLAUDE_CODE_DISABLE_CLAUDE_MDS": "1",  # the agent file is the whole prompt, as on the API backend
    "CLAUDE_CODE_DISABLE_AUTO_MEMORY": "1",
    "ENABLE_TOOL_SEARCH": "false",  # the agent's few tools are sent up front, not deferred
}


@dataclass(frozen=True)
class SessionConfig:
    """One agent's session, as the process is started. Hashable: the warm pool's key."""

    agent: str
    model: str
    system_prompt: str
    tools: tuple[str, ...]
    cwd: Path
    add_dirs: tuple[Path, ...] = ()
    max_turns: int = 20
    max_output_tokens: int = 8192
    max_retries: int = 3
    deny_rules: tuple[str, ...] = ()
    setting_sources: tuple[SettingSource, ...] = ()  # the user's Claude Code settings to load: none unless asked
    cli_path: str | None = None
    depth: int = 1  # the run's delegation depth, which a server started inside the session continues from

    def environment(self) -> dict[str, str]:
        return {
            **SESSION_ENV,
            DEPTH_ENV: str(self.depth),
            "CLAUDE_CODE_MAX_OUTPUT_TOKENS": str(self.max_output_tokens),
            "CLAUDE_CODE_MAX_RETRIES": str(self.max_retries),
        }


def sdk_options(
    config: SessionConfig, check: PermissionCheck, stderr: Callable[[str], None] | None = None
) -> ClaudeAgentOptions:
    """The SDK options for `config`; `check` decides every tool call (see policy.py)."""
    from claude_agent_sdk import ClaudeAgentOptions, HookMatcher, PermissionResultAllow, PermissionResultDeny

    async def can_use_tool(tool: str, args: dict[str, Any], _context: object) -> Any:
        refusal = await check(tool, args)
        return PermissionResultAllow() if refusal is None else PermissionResultDeny(message=refusal)

    async def pre_tool_use(data: Any, _tool_use_id: str | None, _context: Any) -> Any:
        refusal = await check(str(data.get("tool_name", "")), dict(data.get("tool_input") or {}))
        if refusal is None:
            return {}  # no decision: Claude Code's rules and the permission callback still apply
        output = {"hookEventName": "PreToolUse", "permissionDecision": "deny", "permissionDecisionReason": refusal}
        return {"hookSpecificOutput": output}

    settings = {"permissions": {"deny": list(config.deny_rules), "defaultMode": "default"}}
    return ClaudeAgentOptions(
        system_prompt=config.system_prompt,
        tools=list(config.tools),
        model=config.model,
        max_turns=config.max_turns,
        cwd=str(config.cwd),
        add_dirs=[str(d) for d in config.add_dirs],
        permission_mode="default",
        can_use_tool=can_use_tool,
        hooks={"PreToolUse": [HookMatcher(matcher=None, hooks=[pre_tool_use])]},
        settings=json.dumps(settings),
        setting_sources=list(config.setting_sources),  # [] loads no user, project or local settings
        strict_mcp_config=True,  # no MCP server from any config: above all, never subagents itself
        mcp_servers={},
        skills=[],
        plugins=[],
        include_partial_messages=True,  # the API's stream events: each turn's real usage, for budgets
        verbatim_prompts=True,  # the task is the caller's text: no @file expansion, no slash commands
        env=config.environment(),  # merged over this process's own environment (HOME: the login)
        cli_path=config.cli_path,
        stderr=stderr,
    )


class ClaudeCodeSettings(BaseModel):
    """The operator's settings for the Claude Code backend (flags `--warm-*`, `--claude-cli`)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    warm_sessions: int = Field(default=1, ge=0, le=8)  # pre-started sessions kept ready per agent and model
    warm_idle_s: float = Field(default=600.0, gt=0)  # a warm or kept session unused this long is stopped
    warm_memory_mb: int = Field(default=1024, ge=0)  # the pool starts no session past this much memory
    cli_path: str | None = None  # default: the CLI bundled with claude-agent-sdk, else `claude` on PATH
    setting_sources: tuple[SettingSource, ...] = ()  # the user's Claude Code settings to load
