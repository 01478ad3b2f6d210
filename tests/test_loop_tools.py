"""One model turn's tool calls: reads run side by side, a write runs alone, results keep the call order."""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest

from subagents.definitions.spec import AgentSpec
from subagents.loop import RunLimits, run_agent
from subagents.messages import Message, TextBlock, ToolSpec
from subagents.providers.anthropic import AnthropicProvider, AnthropicSettings
from subagents.providers.testing import FakeMessagesServer, text, tool_uses
from subagents.tools.base import ToolOutput
from tests.conftest import TEST_KEY

pytestmark = pytest.mark.anyio
LATENCY_S = 0.3


class SlowTools:
    """Tools that take a while and note when each call starts and ends."""

    def __init__(self) -> None:
        self.spans: dict[str, tuple[float, float]] = {}

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        schema: dict[str, Any] = {"type": "object", "properties": {"file_path": {"type": "string"}}}
        return tuple(ToolSpec(name=n, description=n, input_schema=schema) for n in ("Read", "Write"))

    def concurrent_safe(self, name: str) -> bool:
        return name == "Read"

    async def call(self, name: str, args: object) -> ToolOutput:
        assert isinstance(args, dict)
        started = time.monotonic()
        await anyio.sleep(LATENCY_S)
        self.spans[args["file_path"]] = (started, time.monotonic())
        return ToolOutput(text=f"{name} {args['file_path']}")


async def test_reads_of_one_turn_overlap_and_a_write_runs_alone(fake_model: FakeMessagesServer) -> None:
    calls = [("Read", {"file_path": "a"}), ("Read", {"file_path": "b"}), ("Write", {"file_path": "c"})]
    fake_model.set_script([tool_uses([*calls, ("Read", {"file_path": "d"})]), text("done")])
    tools = SlowTools()
    provider = AnthropicProvider(AnthropicSettings(api_key=TEST_KEY, base_url=fake_model.url, max_retries=0))
    spec = AgentSpec(name="reader", description="d", prompt="p")
    task = Message(role="user", content=(TextBlock(text="go"),))
    try:
        result = await run_agent(spec, [task], model="m", provider=provider, tools=tools, limits=RunLimits())
    finally:
        await provider.aclose()
    a, b, c, d = (tools.spans[k] for k in "abcd")
    assert b[0] < a[1] and a[0] < b[1]  # the two reads overlapped
    assert c[0] >= max(a[1], b[1])  # the write waited for both
    assert d[0] >= c[1]  # and the read after it waited for the write
    assert result.report == "done"
    second = fake_model.requests[1]
    uses = [b for b in second.messages[-2]["content"] if b["type"] == "tool_use"]
    results = second.tool_results
    assert [r["tool_use_id"] for r in results] == [u["id"] for u in uses]
    assert [r["content"] for r in results] == ["Read a", "Read b", "Write c", "Read d"]
