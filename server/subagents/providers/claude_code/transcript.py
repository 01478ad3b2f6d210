"""A Claude Code session's messages in our own terms: the transcript, turns, usage and progress events.

Claude Code streams one assistant message per content block, several sharing one API message id; they
are joined back into one assistant turn, so the run store holds the same shape as an API-backend run.
Those messages carry the usage of the turn's start only (one output token), so the budget meter reads
the raw API stream events instead (`message_start`, then `message_delta` with the turn's output tokens).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from subagents.events import EventSink, RunEvent
from subagents.loop import Guard, MessageSink, describe_call
from subagents.messages import (
    ContentBlock,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    Usage,
)


class Transcript:
    """Follows one generation of a session: builds messages, counts turns, meters usage, reports progress."""

    def __init__(
        self,
        *,
        agent: str,
        model: str,
        max_turns: int,
        events: EventSink,
        on_messages: MessageSink | None,
        guard: Guard | None,
    ) -> None:
        self.agent, self.model, self.max_turns = agent, model, max_turns
        self.events, self.on_messages, self.guard = events, on_messages, guard
        self.messages: list[Message] = []
        self.turns = 0
        self.usage = Usage()  # what the meter has been told so far
        self.last_text = ""
        self.over_budget: str | None = None
        self._blocks: list[ContentBlock] = []
        self._message_id: str | None = None
        self._streamed_output = 0  # output tokens of the API message being streamed, metered so far

    async def start(self) -> None:
        await self._event("model_call", f"{self.agent} is thinking")

    async def assistant(self, message: Any) -> None:
        """One assistant message (often one block of an API message)."""
        if message.parent_tool_use_id is not None:
            return  # a nested agent's message; sessions get no Agent tool, so none should come
        message_id = message.message_id or f"anonymous-{self.turns + 1}"
        if message_id != self._message_id:
            await self._flush([])
            self._message_id = message_id
            self.turns += 1
        for block in message.content:
            converted = _block(block)
            if converted is None:
                continue
            self._blocks.append(converted)
            if isinstance(converted, ToolUseBlock):
                await self._event("tool_call", describe_call(converted))
            elif isinstance(converted, TextBlock) and converted.text.strip():
                self.last_text = converted.text.strip()

    def stream(self, event: Any) -> None:
        """A raw API stream event: meter each turn's real usage as it comes."""
        if event.parent_tool_use_id is not None:
            return
        data = event.event if isinstance(event.event, dict) else {}
        if data.get("type") == "message_start":
            message = data.get("message")
            message = message if isinstance(message, dict) else {}
            usage = _usage(message.get("usage"))
            self._streamed_output = usage.output_tokens
            self._meter(str(message.get("model") or self.model), usage)
        elif data.get("type") == "message_delta":
            output = _usage(data.get("usage")).output_tokens
            if output > self._streamed_output:
                self._meter(self.model, Usage(output_tokens=output - self._streamed_output))
                self._streamed_output = output

    async def user(self, message: Any) -> None:
        """Tool results going back to the model: the end of one turn and the start of the next."""
        if message.parent_tool_use_id is not None or isinstance(message.content, str):
            return
        blocks = [b for b in map(_block, message.content) if isinstance(b, ToolResultBlock | TextBlock)]
        if blocks:
            await self._flush(blocks)
            await self._event("model_call", f"{self.agent} is thinking")

    async def flush(self) -> None:
        """Hand over the last turn's messages."""
        await self._flush([])

    async def finish(self, result: Any) -> Usage:
        """The generation's result: flush the last turn, and bring the meter up to Claude Code's totals."""
        await self.flush()
        total = _usage(result.usage)
        missing = Usage(
            input_tokens=max(total.input_tokens - self.usage.input_tokens, 0),
            output_tokens=max(total.output_tokens - self.usage.output_tokens, 0),
            cache_read_input_tokens=max(total.cache_read_input_tokens - self.usage.cache_read_input_tokens, 0),
            cache_creation_input_tokens=max(
                total.cache_creation_input_tokens - self.usage.cache_creation_input_tokens, 0
            ),
        )
        if missing != Usage():
            self._meter(self.model, missing)  # calls Claude Code made besides the turns it streamed
        return self.usage

    async def _flush(self, tool_results: Sequence[ContentBlock]) -> None:
        batch: list[Message] = []
        if self._blocks:
            batch.append(Message(role="assistant", content=tuple(self._blocks)))
            self._blocks, self._message_id = [], None
        if tool_results:
            batch.append(Message(role="user", content=tuple(tool_results)))
        if batch:
            self.messages += batch
            if self.on_messages is not None:
                await self.on_messages(batch)

    def _meter(self, model: str, usage: Usage) -> None:
        self.usage += usage
        if self.guard is not None:
            self.guard.add(model, usage)
            self.over_budget = self.over_budget or self.guard.exceeded()

    async def _event(self, kind: str, what: str) -> None:
        turn = max(self.turns, 1) if kind == "tool_call" else self.turns + 1
        message = f"turn {turn}/{self.max_turns}: {what}"
        await self.events(RunEvent(kind=kind, turn=turn, max_turns=self.max_turns, message=message))  # type: ignore[arg-type]


def _block(block: Any) -> ContentBlock | None:
    kind = type(block).__name__
    if kind == "TextBlock":
        return TextBlock(text=block.text)
    if kind == "ThinkingBlock":
        return ThinkingBlock(thinking=block.thinking, signature=block.signature or "")
    if kind == "ToolUseBlock":
        return ToolUseBlock(id=block.id, name=block.name, input=dict(block.input or {}))
    if kind == "ToolResultBlock":
        content, failed = _text(block.content), bool(block.is_error)
        return ToolResultBlock(tool_use_id=block.tool_use_id, content=content, is_error=failed)
    return None  # server tools and other blocks a subagent session does not use


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    parts = [str(item.get("text", "")) for item in content if isinstance(item, dict) and item.get("type") == "text"]
    return "\n".join(parts)


def _usage(raw: Any) -> Usage:
    data = raw if isinstance(raw, dict) else {}

    def count(key: str) -> int:
        value = data.get(key)
        return value if isinstance(value, int) and value > 0 else 0

    return Usage(
        input_tokens=count("input_tokens"),
        output_tokens=count("output_tokens"),
        cache_read_input_tokens=count("cache_read_input_tokens"),
        cache_creation_input_tokens=count("cache_creation_input_tokens"),
    )
