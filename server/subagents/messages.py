"""The normalized conversation format shared by the loop, the providers and the run store.

It mirrors the Messages API content blocks (text, tool_use, tool_result, and the blocks of the tools the
API runs itself) because that is the richest format we speak; a provider for another API translates to
and from these models.
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


class ServerToolUseBlock(_Frozen):
    """A call of a tool the API runs itself (web search, web fetch): kept and sent back, never run here."""

    type: Literal["server_tool_use"] = "server_tool_use"
    id: str
    name: str
    input: dict[str, Any]


class ServerToolResultBlock(_Frozen):
    """What the API's own tool returned; `content` is kept exactly as the API sent it, to send it back."""

    type: Literal["web_search_tool_result", "web_fetch_tool_result"]
    tool_use_id: str
    content: Any


ContentBlock = Annotated[
    TextBlock
    | ToolUseBlock
    | ToolResultBlock
    | ThinkingBlock
    | RedactedThinkingBlock
    | ServerToolUseBlock
    | ServerToolResultBlock,
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


class ServerToolSpec(_Frozen):
    """A tool the Messages API runs itself, offered with the request: its versioned type, its name, and
    its settings (allowed domains, uses per request)."""

    type: str  # e.g. web_search_20260318
    name: str  # e.g. web_search
    options: dict[str, Any] = Field(default_factory=dict)


class Usage(_Frozen):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    web_search_requests: int = 0  # the API's own tools, billed per use
    web_fetch_requests: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(**{name: getattr(self, name) + getattr(other, name) for name in Usage.model_fields})


StopReason = str  # end_turn, tool_use, max_tokens, stop_sequence, pause_turn, refusal, ...


class ModelRequest(_Frozen):
    model: str
    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    server_tools: tuple[ServerToolSpec, ...] = ()
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
