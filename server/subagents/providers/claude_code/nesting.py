"""The recursion guard: a Claude Code session we start must never serve subagents again.

Every session gets `SESSION_MARKER` in its environment. A `subagents serve` (or `run`) that finds it
was started from inside one of our sessions, through a config we did not load or a command the model
ran, and refuses: delegating to ourselves would never end.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from subagents.errors import ConfigError

SESSION_MARKER = "SUBAGENTS_SESSION"


def refuse_if_nested(command: str, env: Mapping[str, str] | None = None) -> None:
    """Raise ConfigError when this process runs inside a subagent's Claude Code session."""
    env = os.environ if env is None else env
    marker = env.get(SESSION_MARKER, "")
    if not marker:
        return
    raise ConfigError(
        f"`subagents {command}` refuses to start inside a subagent's Claude Code session "
        f"({SESSION_MARKER}={marker} is set): a subagent that delegates to subagents would never end. "
        f"Remove the subagents MCP server from that session's configuration; if this is not a subagent "
        f"session, unset {SESSION_MARKER}."
    )
