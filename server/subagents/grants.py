"""Which tools one agent gets on this server, and what it names but lacks, with why and the flag that would
give it. The one place that decides: `agents validate` and `agents show`, the server log, the MCP tool
description, `unavailable_tools` in results, and the tools a run offers its model all read a `ToolGrant`.

That is the Messages API backend, where every tool runs here (or, for the web tools, in the API). An agent
on the Claude Code backend gets Claude Code's own tools instead, which `providers/claude_code/policy.py`
maps (no Bash; LS as Glob; MultiEdit as Edit); `grant_tools(..., backend="claude-code")` reports that
mapping as a grant too, from the same function the session is configured with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from subagents.config import Settings
from subagents.definitions.spec import DELEGATION_TOOLS, READ_TOOLS, AgentSpec
from subagents.depth import DEPTH_FIX, limit_reached, may_delegate, run_depth
from subagents.providers.claude_code.policy import session_tool, writes_allowed

Backend = Literal["anthropic", "claude-code"]
WRITING_TOOLS = ("Write", "Edit", "MultiEdit", "Bash")  # these need the isolated copy
WEB_TOOLS = ("WebFetch", "WebSearch")
# The order the model sees them in: tools run here (as the toolbox lists them), then the API's own tools.
ORDER = (*READ_TOOLS, *WRITING_TOOLS, "TodoWrite", *DELEGATION_TOOLS, *WEB_TOOLS)
_NEVER = {
    "NotebookEdit": "notebooks are not supported here",
}


@dataclass(frozen=True)
class Lack:
    """A tool the agent's file names that it does not get here."""

    name: str
    reason: str  # a few words, for tool descriptions
    fix: str | None = None  # the server flag that would give it, if one would

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"

    def explained(self) -> str:
        """`WebFetch (web tools are off; serve --web-tools gives it)`: with the flag, for logs and errors."""
        return f"{self.name} ({self.reason}" + (f"; {self.fix} gives it)" if self.fix else ")")


@dataclass(frozen=True)
class ToolGrant:
    tools: tuple[str, ...]  # what the agent gets, named as its file names them, in the order the model sees
    lacking: tuple[Lack, ...] = ()  # what its file names and it does not get
    asked: tuple[str, ...] = ()  # what its file asks for, deny-list applied (empty: no tools on purpose)
    backend: Backend = "anthropic"
    runs_as: tuple[tuple[str, str], ...] = ()  # on Claude Code: (tool, the Claude Code tool that does its job)

    def shown(self) -> str:
        """`Read, LS (as Glob)`: the tools, each with the tool that runs it where that differs."""
        if self.refused:
            return "none of those it names, so calls are refused"
        other = dict(self.runs_as)
        return ", ".join(f"{t} (as {other[t]})" if t in other else t for t in self.tools) or "none"

    @property
    def local(self) -> tuple[str, ...]:
        """The tools this server runs (the rest, the web tools, the Messages API runs itself)."""
        return tuple(t for t in self.tools if t not in WEB_TOOLS)

    @property
    def web(self) -> tuple[str, ...]:
        return tuple(t for t in self.tools if t in WEB_TOOLS)

    @property
    def delegation(self) -> str | None:
        """The name the agent's delegation tool goes by (Task, or Agent as newer files write it)."""
        return next((t for t in self.tools if t in DELEGATION_TOOLS), None)

    @property
    def writes(self) -> bool:
        """True when a run changes files or runs commands (in its isolated copy): then it is not read-only."""
        return any(t in WRITING_TOOLS for t in self.tools)

    @property
    def refused(self) -> bool:
        """The file names tools, and none of them is available: such an agent cannot do its job, so a call
        is refused. (An agent whose `tools:` names nothing has no tools on purpose, and runs.)"""
        return bool(self.asked) and not self.tools

    def refusal(self, agent: str) -> str:
        """Why a call to this agent is refused, and what would make it run."""
        return (
            f"Agent {agent!r} cannot run on this server: it names only tools this server does not give it. "
            + ", ".join(lack.explained() for lack in self.lacking)
            + ". Start the server with the flags named there, or change the agent's `tools:`."
        )

    def as_shipped(self, spec: AgentSpec) -> bool:
        """True when a bundled agent lacks only tools a server flag turns on (Bash, the web): they are opt-in
        here, so that is how it ships, a note rather than a warning."""
        return spec.layer == "bundled" and not self.refused and all(lack.fix for lack in self.lacking)

    def note(self, limit: int = 6) -> str:
        """`Unavailable here: WebFetch (web tools are off), …`, for the agent's MCP tool description."""
        if not self.lacking:
            return ""
        shown = ", ".join(str(lack) for lack in self.lacking[:limit])
        more = f" and {len(self.lacking) - limit} more" if len(self.lacking) > limit else ""
        return f"Unavailable here: {shown}{more}."


def grant_tools(
    spec: AgentSpec, settings: Settings, *, depth: int | None = None, backend: Backend = "anthropic"
) -> ToolGrant:
    """The tools `spec` gets on a server with `settings`, in a run `depth` delegations deep (None: a call
    from the client, see depth.py), on `backend`. An agent without a `tools` field gets every tool on
    offer, and lacks nothing it named."""
    depth = run_depth(settings, depth)
    asked = spec.effective_tools
    tools: list[str] = []
    lacking: list[Lack] = []
    for name in dict.fromkeys(asked):
        lack = _lack(name, settings, depth)
        if lack is None:
            tools.append(name)
        elif spec.tools is not None:
            lacking.append(lack)
    tools.sort(key=ORDER.index)
    grant = ToolGrant(tuple(tools), tuple(lacking), asked if spec.tools is not None else ())
    return grant if backend == "anthropic" else _on_claude_code(spec, grant)


def _on_claude_code(spec: AgentSpec, api: ToolGrant) -> ToolGrant:
    """What a Claude Code session gets of the tools `spec` names: policy.py's mapping, with its reasons.
    It writes (in the isolated copy) only when the same agent would on the API, as a run decides."""
    writes = api.writes and writes_allowed(spec)
    tools: list[str] = []
    runs_as: list[tuple[str, str]] = []
    lacking: list[Lack] = []
    for name in dict.fromkeys(spec.effective_tools):
        tool, reason = session_tool(name, writes=writes)
        if tool is None:
            if spec.tools is not None:
                lacking.append(Lack(name, f"on Claude Code: {reason}"))
            continue
        tools.append(name)
        if tool != name:
            runs_as.append((name, tool))
    return ToolGrant(tuple(tools), tuple(lacking), api.asked, "claude-code", tuple(runs_as))


def _lack(name: str, settings: Settings, depth: int) -> Lack | None:
    """Why `name` is not available here, or None when it is."""
    if name in READ_TOOLS or name in ("Write", "Edit", "MultiEdit", "TodoWrite"):
        return None
    if name == "Bash":
        return None if settings.bash.enabled else Lack(name, "Bash is off", "serve --allow-bash PREFIX")
    if name in WEB_TOOLS:
        return None if settings.web.enabled else Lack(name, "web tools are off", "serve --web-tools")
    if name in DELEGATION_TOOLS:
        return None if may_delegate(settings, depth) else Lack(name, limit_reached(settings), DEPTH_FIX)
    if name.startswith("mcp__"):
        return Lack(name, "no MCP servers are connected here")
    return Lack(name, _NEVER.get(name, "no such tool here"))
