"""The normalized conversation format shared by the loop, the providers and the run store.

It mirrors the Messages API content blocks (text, tool_use, tool_result) because that is the
richest format we speak; a provider for another API translates to and from these models.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class TextBlock(_Frozen):
    type: Literal["text"] = "text"
    text: str


class ToolUseBlock(_Frozen):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(_Frozen):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: str
    is_error: bool = False


class ThinkingBlock(_Frozen):
    """Kept and sent back unchanged: models that always think need it with the next tool result."""

    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str = ""


class RedactedThinkingBlock(_Frozen):
    type: Literal["redacted_thinking"] = "redacted_thinking"
    data: str


ContentBlock = Annotated[
    TextBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock,
    Field(discriminator="type"),
]


class Message(_Frozen):
    role: Literal["user", "assistant"]
    content: tuple[ContentBlock, ...]

    @property
    def text(self) -> str:
        return "".join(b.text for b in self.content if isinstance(b, TextBlock))

    @property
    def tool_uses(self) -> tuple[ToolUseBlock, ...]:
        return tuple(b for b in self.content if isinstance(b, ToolUseBlock))


class ToolSpec(_Frozen):
    """A tool as the model sees it: name, description, JSON schema of its input."""

    name: str
    description: str
    input_schema: dict[str, Any]


class Usage(_Frozen):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens + other.cache_creation_input_tokens,
        )


StopReason = str  # end_turn, tool_use, max_tokens, stop_sequence, pause_turn, refusal, ...


class ModelRequest(_Frozen):
    model: str
    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int = 8192
    temperature: float | None = None
    fallback_model: str | None = None  # tried once when `model` stays overloaded or unavailable
    output_schema: dict[str, Any] | None = None  # the JSON schema the answer's text must match


class ModelResponse(_Frozen):
    model: str
    content: tuple[ContentBlock, ...]
    stop_reason: StopReason
    usage: Usage = Usage()

    def as_message(self) -> Message:
        return Message(role="assistant", content=self.content)
