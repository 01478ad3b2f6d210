"""What a test asks about a run: the tools the model was offered and called, the files it read, the result.

The model-side helpers read what the fake Messages API received (`fake.requests`), so they hold whatever
the server did on the way: a tool the sandbox refused shows up as a call whose result `is_error`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from subagents.providers.fake_server import RecordedRequest, content_blocks, tool_result
from subagents.providers.testing import FakeMessagesServer

if TYPE_CHECKING:
    from mcp.types import CallToolResult

Requests = FakeMessagesServer | Sequence[RecordedRequest]


@dataclass(frozen=True)
class ToolCall:
    """One tool call the model made, and what the server answered (None: no answer was sent back yet)."""

    id: str
    name: str
    input: dict[str, Any]
    result: str | None = None
    is_error: bool = False


def model_requests(model: Requests) -> list[RecordedRequest]:
    """The /v1/messages requests, in order (not token counts or other routes)."""
    requests = model.requests if isinstance(model, FakeMessagesServer) else list(model)
    return [r for r in requests if r.method == "POST" and r.path == "/v1/messages"]


def tools_offered(model: Requests) -> list[str]:
    """The tool names the first model request offered, in the order sent."""
    requests = model_requests(model)
    return requests[0].tool_names if requests else []


def tool_calls(model: Requests) -> list[ToolCall]:
    """Every tool call in the conversations the model saw, in order, each with its result."""
    calls: dict[str, ToolCall] = {}
    for request in model_requests(model):
        for message in request.messages:
            for block in content_blocks(message.get("content")):
                if block.get("type") == "tool_use" and message.get("role") == "assistant":
                    key = str(block.get("id"))
                    if key not in calls:
                        args = block.get("input")
                        calls[key] = ToolCall(key, str(block.get("name")), args if isinstance(args, dict) else {})
                elif block.get("type") == "tool_result" and str(block.get("tool_use_id")) in calls:
                    answer = tool_result(block)
                    key = str(answer["tool_use_id"])
                    calls[key] = ToolCall(
                        key, calls[key].name, calls[key].input, answer["content"], bool(answer["is_error"])
                    )
    return list(calls.values())


def tools_called(model: Requests) -> list[str]:
    """The names of the tools the model called, in order."""
    return [call.name for call in tool_calls(model)]


def files_read(model: Requests) -> list[str]:
    """The `file_path` of each Read the server answered with the file (refused reads are not here)."""
    reads = [c for c in tool_calls(model) if c.name == "Read" and c.result is not None and not c.is_error]
    return list(dict.fromkeys(str(c.input.get("file_path")) for c in reads))


def refused(model: Requests) -> list[ToolCall]:
    """The tool calls the server answered with an error: a path outside the roots, a secret, a bad pattern."""
    return [call for call in tool_calls(model) if call.is_error]


def structured(result: CallToolResult) -> dict[str, Any]:
    """The call's `structuredContent`: the report (or `output`), status, run_id, turns, usage, cost."""
    content = result.structured_content
    assert isinstance(content, dict), f"the tool result has no structuredContent: {result.content}"
    return content


def completed(result: CallToolResult) -> dict[str, Any]:
    """The structuredContent of a run that completed; a failed one fails the test with its error."""
    content = structured(result)
    status = content.get("status")
    assert status == "completed" and not result.is_error, f"the run {status}: {content.get('error')}"
    return content


def report(result: CallToolResult) -> str:
    """The agent's answer as text: its report, or its JSON `output` for an agent that declares a schema."""
    content = structured(result)
    if "output" in content:
        return json.dumps(content["output"], ensure_ascii=False)
    return str(content.get("report", ""))
