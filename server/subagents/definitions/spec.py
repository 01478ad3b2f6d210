"""`AgentSpec`: one subagent definition, read from a Claude Code agent file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from subagents.structured import schema_problem

# Claude Code's tools an agent file may name; which of them this server gives is decided in grants.py,
# and whatever an agent names but does not get is reported, never dropped silently.
READ_TOOLS = ("Read", "Grep", "Glob", "LS")
WRITE_TOOLS = ("Write", "Edit", "MultiEdit", "NotebookEdit", "Bash")
# Neither reading nor changing files: a checklist, the web (run by the API itself), delegating to an agent.
OTHER_TOOLS = ("TodoWrite", "WebFetch", "WebSearch", "Task")
ALL_TOOLS = READ_TOOLS + WRITE_TOOLS + OTHER_TOOLS  # what an agent with no `tools` field asks for
DELEGATION_TOOLS = ("Task", "Agent")  # Claude Code renamed Task to Agent in 2.1.63; both name one tool

# The MCP tool-name rule (SEP-986): every agent is served under a name that matches it (see names.py).
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

# Names the server uses for its own tools (run tools, catalog mode, orchestration patterns); an agent may
# not take them.
RESERVED_NAMES = frozenset(
    {"start_agent", "get_run", "cancel_run", "continue_run", "list_agents", "delegate"}
    | {"route", "fan_out", "debate", "pipeline", "escalate", "team"}
)


class SubagentsOptions(BaseModel):
    """Our own settings, kept under the `subagents:` key so the file stays valid for Claude Code."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_tokens: int | None = Field(default=None, ge=1, le=128_000)
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    timeout: float | None = Field(default=None, gt=0, description="seconds for the whole run")
    max_output_tokens: int | None = Field(default=None, ge=1, description="output tokens for the whole run")
    max_cost_usd: float | None = Field(default=None, gt=0, description="cost budget for one run")
    fallback_model: str | None = Field(default=None, min_length=1, description="tried when the model is down")
    output: dict[str, Any] | None = Field(default=None, description="JSON schema the final answer must match")

    @field_validator("output", mode="before")
    @classmethod
    def _output_schema(cls, value: Any) -> Any:
        if value is not None and (problem := schema_problem(value)):
            raise ValueError(f"the output schema {problem}")
        return value

    provider: Literal["anthropic", "claude-code", "auto"] | None = Field(
        default=None, description="who runs this agent: the Messages API, Claude Code, or the server's choice"
    )


class AgentSpec(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str  # the MCP tool name: the name as written, or its mapping when that is not a valid tool name
    description: str
    prompt: str
    tools: tuple[str, ...] | None = None  # None: absent or "*", so every tool we offer
    disallowed_tools: tuple[str, ...] = ()
    model: str = "inherit"
    max_turns: int | None = None
    options: SubagentsOptions = SubagentsOptions()
    source: Path | None = None
    layer: str = "inline"
    fields: dict[str, Any] = Field(default_factory=dict)  # every frontmatter field, as written
    declared_name: str | None = None  # the name as the file writes it (Claude Code's identity for the agent)
    shadows: str | None = None  # the lower layer's agent of the same name this one replaces, e.g. "bundled"

    @property
    def agent_name(self) -> str:
        """The name as written: what layers override by, and what Claude Code calls the agent."""
        return self.declared_name or self.name

    @property
    def renamed(self) -> bool:
        """True when the MCP tool name differs from the name the file writes."""
        return self.agent_name != self.name

    @property
    def effective_tools(self) -> tuple[str, ...]:
        """The tools the agent asked for, deny-list applied first, as Claude Code resolves them."""
        denied = set(self.disallowed_tools)
        if denied & set(DELEGATION_TOOLS):
            denied |= set(DELEGATION_TOOLS)
        wanted = self.tools if self.tools is not None else ALL_TOOLS
        return tuple(t for t in wanted if t not in denied)

    @property
    def writes(self) -> bool:
        """True when the agent may change files or run commands: then it is not read-only."""
        return any(t in WRITE_TOOLS for t in self.effective_tools)

    @property
    def markdown(self) -> str:
        """The agent file as written, for the `subagents://agents/{name}` resource."""
        if self.source is not None and self.source.is_file():
            return self.source.read_text(encoding="utf-8")
        return f"---\nname: {self.agent_name}\ndescription: {self.description}\n---\n{self.prompt}"
