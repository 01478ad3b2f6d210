"""What a subagent tool is: a spec the model sees and an async run that never raises for bad input."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict

from subagents.messages import ToolSpec


class ToolOutput(BaseModel):
    """The text the model gets back. `is_error` marks a refusal or failure the model should read."""

    model_config = ConfigDict(frozen=True)

    text: str
    is_error: bool = False


class Tool(Protocol):
    @property
    def spec(self) -> ToolSpec: ...

    async def run(self, args: dict[str, Any]) -> ToolOutput:
        """Run with already-parsed JSON arguments. Bad arguments and refused paths come back as
        `ToolOutput(is_error=True)` with a message the model can act on; never raise for them."""
        ...
