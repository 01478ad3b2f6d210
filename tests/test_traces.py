"""Runs as OpenTelemetry spans in the GenAI conventions, through the real MCP surface: the tree (the SDK's
`tools/call` span, then `invoke_agent`, its `chat` turns and `execute_tool` calls), the attributes, a
pattern's children beneath it, and the client's trace context as the parent."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest
from mcp import Client
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from subagents.mcp.server import build_server
from subagents.providers.testing import FakeMessagesServer, RecordedRequest, Reply, text, tool_use
from tests.conftest import make_app, write_agent
from tests.orchestration.helpers import Models, plain_agents
from tests.traces import _switched, named, one, parent_of, recorded_spans, span_id, trace_id

pytestmark = pytest.mark.anyio
__all__ = ["_switched", "recorded_spans"]  # the fixtures

FIRST = {"input_tokens": 100, "output_tokens": 10, "cache_read_input_tokens": 40, "cache_creation_input_tokens": 5}
SECOND = {"input_tokens": 150, "output_tokens": 20, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}


def reader_agent(directory: Path) -> Path:
    write_agent(directory, "reader.md", "name: reader\ndescription: Reads a file.\ntools: Read\nmodel: sonnet")
    return directory


def two_turns(fake: FakeMessagesServer) -> None:
    read = tool_use("Read", {"file_path": "src/app.py"}, id="toolu_read_1", usage=FIRST)
    fake.set_script([read, text("It builds SQL from input.", usage=SECOND)])


async def test_a_two_turn_run_is_one_invoke_agent_span_with_its_turns_and_tool_calls_beneath(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path, recorded_spans: InMemorySpanExporter
) -> None:
    two_turns(fake_model)
    app = make_app(fake_model, project, agents_dir=reader_agent(tmp_path / "agents"))
    async with app, Client(build_server(app)) as client:
        result = await client.call_tool("reader", {"task": "Review src/app.py"})
    structured = result.structured_content
    assert structured is not None and structured["status"] == "completed"
    model = structured["model"]
    spans = recorded_spans.get_finished_spans()
    call, agent = one(spans, "tools/call reader"), one(spans, "invoke_agent reader")
    chats, tool = named(spans, f"chat {model}"), one(spans, "execute_tool Read")
    assert parent_of(agent) == span_id(call)  # the MCP SDK's span for the request is the run's parent
    assert [parent_of(c) for c in chats] == [span_id(agent)] * 2 and parent_of(tool) == span_id(agent)
    assert {trace_id(s) for s in (call, agent, tool, *chats)} == {trace_id(call)}
    assert chats[0].end_time is not None and tool.start_time is not None and chats[0].end_time <= tool.start_time

    first, second = chats
    assert first.kind == trace.SpanKind.CLIENT
    assert dict(first.attributes or {}) == {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": model,
        "gen_ai.request.max_tokens": first.attributes["gen_ai.request.max_tokens"],  # type: ignore[index]
        "gen_ai.response.model": model,
        "gen_ai.response.finish_reasons": ("tool_use",),
        "gen_ai.usage.input_tokens": 145,  # the conventions count cached input in input_tokens
        "gen_ai.usage.output_tokens": 10,
        "gen_ai.usage.cache_read.input_tokens": 40,
        "gen_ai.usage.cache_creation.input_tokens": 5,
    }
    assert second.attributes["gen_ai.response.finish_reasons"] == ("end_turn",)  # type: ignore[index]
    assert tool.attributes == {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": "Read",
        "gen_ai.tool.call.id": "toolu_read_1",
        "gen_ai.tool.type": "function",
    }
    attributes = agent.attributes or {}
    assert attributes["gen_ai.operation.name"] == "invoke_agent" and attributes["gen_ai.agent.name"] == "reader"
    assert attributes["gen_ai.request.model"] == model and attributes["subagents.run_id"] == structured["run_id"]
    assert attributes["subagents.status"] == "completed" and attributes["subagents.turns"] == 2
    assert attributes["gen_ai.usage.input_tokens"] == 295 and attributes["gen_ai.usage.output_tokens"] == 30
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 40
    # No prompt, answer or file content without the opt-in.
    values = " ".join(str(v) for s in spans for v in (s.attributes or {}).values())
    assert "SELECT" not in values and "Review src/app.py" not in values and "SQL" not in values


async def test_content_goes_into_spans_only_when_the_user_opts_in(
    fake_model: FakeMessagesServer,
    project: Path,
    tmp_path: Path,
    recorded_spans: InMemorySpanExporter,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    two_turns(fake_model)
    app = make_app(fake_model, project, agents_dir=reader_agent(tmp_path / "agents"))
    async with app, Client(build_server(app)) as client:
        await client.call_tool("reader", {"task": "Review src/app.py"})
    spans = recorded_spans.get_finished_spans()
    agent, tool = one(spans, "invoke_agent reader"), one(spans, "execute_tool Read")
    last_chat = named(spans, f"chat {agent.attributes['gen_ai.request.model']}")[-1]  # type: ignore[index]
    assert "Review src/app.py" in str(agent.attributes["gen_ai.input.messages"])  # type: ignore[index]
    assert "src/app.py" in str(tool.attributes["gen_ai.tool.call.arguments"])  # type: ignore[index]
    assert "SELECT * FROM users" in str(tool.attributes["gen_ai.tool.call.result"])  # type: ignore[index]
    assert "It builds SQL" in str(last_chat.attributes["gen_ai.output.messages"])  # type: ignore[index]


async def test_a_pattern_run_holds_its_childrens_runs(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path, recorded_spans: InMemorySpanExporter
) -> None:
    fake_model.set_script(Models({"alpha": text("A says."), "bravo": text("B says.")}))
    app = make_app(fake_model, project, agents_dir=plain_agents(tmp_path / "agents", ["alpha", "bravo"]))
    async with app, Client(build_server(app)) as client:
        result = await client.call_tool("fan_out", {"task": "x", "agents": ["alpha", "bravo"]})
    assert result.structured_content is not None and result.structured_content["status"] == "completed"
    spans = recorded_spans.get_finished_spans()
    pattern = one(spans, "invoke_agent fan_out")
    children = [one(spans, "invoke_agent alpha"), one(spans, "invoke_agent bravo")]
    assert parent_of(pattern) == span_id(one(spans, "tools/call fan_out"))
    assert [parent_of(c) for c in children] == [span_id(pattern)] * 2
    for child in children:
        [chat] = [s for s in spans if s.name.startswith("chat ") and parent_of(s) == span_id(child)]
        assert chat.attributes["gen_ai.usage.output_tokens"] > 0  # type: ignore[index,operator]
        assert child.attributes["subagents.parent_run_id"] == result.structured_content["run_id"]  # type: ignore[index]
    assert pattern.attributes["subagents.pattern"] == "fan_out"  # type: ignore[index]
    assert pattern.attributes["subagents.run_id"] == result.structured_content["run_id"]  # type: ignore[index]


async def test_the_clients_traceparent_in_meta_is_the_parent(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path, recorded_spans: InMemorySpanExporter
) -> None:
    """The official client sends its span as `traceparent` in the request's `_meta` (handshake era: the
    request goes through its JSON-RPC dispatcher); the run joins that trace. The server's tasks started
    before the client's span, so only `_meta` carries it (tests/test_logs.py: over real stdio)."""
    fake_model.set_script([text("one"), text("two")])
    app = make_app(fake_model, project, agents_dir=reader_agent(tmp_path / "agents"))
    tracer = trace.get_tracer("the-client")
    async with app, Client(build_server(app), mode="legacy") as client:
        with tracer.start_as_current_span("client work") as work:
            await client.call_tool("reader", {"task": "first"})
        await client.call_tool("reader", {"task": "second"})  # no client span: a trace of its own
    spans = recorded_spans.get_finished_spans()
    [sent, _] = named(spans, "MCP send tools/call reader")
    calls, agents = named(spans, "tools/call reader"), named(spans, "invoke_agent reader")
    assert parent_of(sent) == work.get_span_context().span_id
    assert calls[0].parent is not None and calls[0].parent.is_remote and parent_of(calls[0]) == span_id(sent)
    assert parent_of(agents[0]) == span_id(calls[0]) and trace_id(agents[0]) == work.get_span_context().trace_id
    assert trace_id(agents[1]) != trace_id(agents[0]) and parent_of(agents[1]) == span_id(calls[1])


async def test_a_background_run_stays_in_the_trace_of_the_call_that_started_it(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path, recorded_spans: InMemorySpanExporter
) -> None:
    fake_model.set_script([text("done")])
    app = make_app(fake_model, project, agents_dir=reader_agent(tmp_path / "agents"))
    async with app, Client(build_server(app)) as client:
        started = await client.call_tool("start_agent", {"agent": "reader", "task": "slowly"})
        run_id = started.structured_content["run_id"]  # type: ignore[index]
        with anyio.fail_after(20):
            while (await client.call_tool("get_run", {"run_id": run_id})).structured_content["status"] == "running":  # type: ignore[index]
                await anyio.sleep(0.05)
    spans = recorded_spans.get_finished_spans()
    start, agent = one(spans, "tools/call start_agent"), one(spans, "invoke_agent reader")
    assert parent_of(agent) == span_id(start) and trace_id(agent) == trace_id(start)
    assert agent.attributes["subagents.run_id"] == run_id  # type: ignore[index]
    assert len(named(spans, "chat " + str(agent.attributes["gen_ai.request.model"]))) == 1  # type: ignore[index]


async def test_a_task_childs_run_is_beneath_the_tool_call_that_started_it(
    fake_model: FakeMessagesServer, project: Path, tmp_path: Path, recorded_spans: InMemorySpanExporter
) -> None:
    folder = tmp_path / "agents"
    write_agent(folder, "lead.md", "name: lead\ndescription: Leads.\ntools: Read, Task", body="LEAD")
    write_agent(folder, "helper.md", "name: helper\ndescription: Helps.\ntools: Read", body="HELPER")
    handoff = {"description": "help", "prompt": "Look at src/app.py.", "subagent_type": "helper"}

    def script(request: RecordedRequest) -> Reply:
        if request.system_text == "HELPER":
            return text("Helped.")
        return text("Done with help.") if request.tool_results else tool_use("Task", handoff)

    fake_model.set_script(script)
    async with make_app(fake_model, project, agents_dir=folder) as app:
        outcome = await app.run("lead", "Get help.")
    assert outcome.status == "completed"
    spans = recorded_spans.get_finished_spans()
    lead, task = one(spans, "invoke_agent lead"), one(spans, "execute_tool Task")
    helper = one(spans, "invoke_agent helper")
    assert lead.parent is None  # called from Python, not over MCP: the run is the root
    assert parent_of(task) == span_id(lead) and parent_of(helper) == span_id(task)
    assert helper.attributes["subagents.parent_run_id"] == outcome.run_id  # type: ignore[index]
