"""Building the conversation a subagent sees: the first task, and follow-ups to an earlier run."""

from __future__ import annotations

from collections.abc import Sequence

from subagents.messages import ContentBlock, Message, TextBlock, ToolResultBlock


def first_user_message(task: str, context: str | None = None, files: Sequence[str] = ()) -> Message:
    """The task as the subagent sees it. Files are named, not inlined: the agent reads what it needs."""
    parts = [f"<task>\n{task.strip()}\n</task>"]
    if context and context.strip():
        parts.append(f"<context>\n{context.strip()}\n</context>")
    if files:
        listing = "\n".join(f"- {f}" for f in files)
        parts.append(f"Start from these files (read them with the Read tool):\n{listing}")
    return Message(role="user", content=(TextBlock(text="\n\n".join(parts)),))


def follow_up(transcript: Sequence[Message], message: str) -> list[Message]:
    """The stored conversation plus a new user turn, kept valid for the Messages API: tool calls the run
    never answered (it was cut off) get an error result, and the follow-up joins a trailing user turn."""
    history = list(transcript)
    blocks: list[ContentBlock] = []
    if history and history[-1].role == "assistant":
        blocks += [
            ToolResultBlock(tool_use_id=call.id, content="Not run: the run stopped before this call.", is_error=True)
            for call in history[-1].tool_uses
        ]
    elif history and history[-1].role == "user":
        blocks += list(history.pop().content)
    blocks.append(TextBlock(text=f"<follow-up>\n{message.strip()}\n</follow-up>"))
    return [*history, Message(role="user", content=tuple(blocks))]
