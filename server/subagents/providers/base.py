"""The model provider interface: one request in, one response out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from subagents.messages import ModelRequest, ModelResponse

# Current model ids for Claude Code's aliases (as Claude Code 2.1.305+ resolves them first-party).
DEFAULT_ALIASES: Mapping[str, str] = {
    "opus": "claude-opus-5-5",
    "sonnet": "claude-sonnet-5-5",
    "haiku": "claude-haiku-5-5",
    "fable": "claude-fable-5-1",
}
DEFAULT_MODEL = "sonnet"


class ModelProvider(Protocol):
    async def complete(self, request: ModelRequest) -> ModelResponse:
        """Run one model turn. Raise `ModelCallError` (or `ModelNotConfiguredError`) on failure."""
        ...


@dataclass(frozen=True)
class ModelResolver:
    """Turns a frontmatter `model` (alias, `inherit` or full id) into the id sent to the API."""

    aliases: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_ALIASES))
    default: str = DEFAULT_MODEL  # what `inherit` means on this server: an alias or a full id

    def resolve(self, model: str | None) -> str:
        chosen = self.default if model in (None, "", "inherit") else str(model)
        return self.aliases.get(chosen.lower(), chosen)
