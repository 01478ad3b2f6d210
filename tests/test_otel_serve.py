"""`subagents serve` over real stdio with traces and JSON logs: the OTLP exporter configured from OTEL_* sends
the run's spans, in the client's trace, to a collector; `--log-format json` lines carry the run and trace ids;
stdout stays JSON-RPC; and without an endpoint, nothing from the OpenTelemetry SDK is imported at all."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from mcp import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from subagents.providers.testing import FakeMessagesServer, text, tool_use
from tests.conftest import model_env, write_agent
from tests.helpers import SUBAGENTS, child_env, http_server

CLIENT_TRACE, CLIENT_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACEPARENT = f"00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"
CLIENT_INFO = {"name": "t", "version": "1"}


def clean_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in child_env().items() if not k.startswith("OTEL_")}
    return env | dict(extra or {})


def call_over_stdio(project: Path, agents: Path, env: Mapping[str, str], *flags: str) -> tuple[list[str], str]:
    """initialize, then one tools/call that sends a `traceparent` in `_meta`; stdout lines and all of stderr."""
    requests: list[dict[str, Any]] = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": CLIENT_INFO},
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {"name": "reader", "arguments": {"task": "Read it"}, "_meta": {"traceparent": TRACEPARENT}},
        },
    ]
    command = [*SUBAGENTS, "serve", "--root", str(project), "--agents-dir", str(agents), "--no-bundled", *flags]
    proc = subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(env)
    )
    try:
        assert proc.stdin and proc.stdout and proc.stderr
        proc.stdin.write("".join(json.dumps(r) + "\n" for r in requests))
        proc.stdin.flush()
        lines = []
        while not lines or json.loads(lines[-1]).get("id") != 2:
            line = proc.stdout.readline()
            assert line, "the server closed stdout before answering"
            lines.append(line)
        proc.stdin.close()  # end of input: the server exits, and flushes its spans on the way out
        lines += proc.stdout.readlines()
        assert proc.wait(timeout=30) == 0
        return lines, proc.stderr.read()
    finally:
        proc.kill()


@pytest.fixture
def reader(tmp_path: Path, fake_model: FakeMessagesServer) -> Path:
    fake_model.set_script([tool_use("Read", {"file_path": "src/app.py"}), text("Read it.")])
    return write_agent(tmp_path / "agents", "reader.md", "name: reader\ndescription: Reads.\ntools: Read").parent


def test_json_logs_carry_the_run_and_the_clients_trace_and_stdout_stays_json_rpc(
    project: Path, reader: Path, fake_model: FakeMessagesServer
) -> None:
    """No SDK configured: the trace id still comes from the client's `traceparent`."""
    stdout, stderr = call_over_stdio(project, reader, clean_env(model_env(fake_model)), "--log-format", "json", "-v")
    replies = [json.loads(line) for line in stdout]
    assert all(r["jsonrpc"] == "2.0" for r in replies)
    run_id = replies[-1]["result"]["structuredContent"]["run_id"]
    records = [json.loads(line) for line in stderr.splitlines() if line.strip()]  # every line is one object
    assert all({"time", "level", "logger", "message"} <= set(r) for r in records)
    of_the_run = [r for r in records if r.get("run_id") == run_id]
    assert of_the_run and any("completed after 2 turns" in r["message"] for r in of_the_run), records
    assert all(r["trace_id"] == CLIENT_TRACE for r in of_the_run)


def test_the_default_log_format_stays_text(project: Path, reader: Path, fake_model: FakeMessagesServer) -> None:
    _, stderr = call_over_stdio(project, reader, clean_env(model_env(fake_model)), "-v")
    assert "subagents INFO subagents.execution: run " in stderr and '"run_id"' not in stderr


class _Collector(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace endpoint: keeps what it is sent."""

    received: list[ExportTraceServiceRequest]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        self.received.append(request)
        reply = ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[tuple[str, list[ExportTraceServiceRequest]]]:
    received: list[ExportTraceServiceRequest] = []
    handler = type("Collector", (_Collector,), {"received": received})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", received
    finally:
        server.shutdown()
        server.server_close()


def test_otlp_variables_send_the_runs_spans_to_the_collector_in_the_clients_trace(
    project: Path,
    reader: Path,
    fake_model: FakeMessagesServer,
    collector: tuple[str, list[ExportTraceServiceRequest]],
) -> None:
    url, received = collector
    env = clean_env(model_env(fake_model) | {"OTEL_EXPORTER_OTLP_ENDPOINT": url, "OTEL_SERVICE_NAME": "subagents-t"})
    call_over_stdio(project, reader, env)
    spans = {}
    services = set()
    for request in received:
        for resource_spans in request.resource_spans:
            attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            services.add(attributes.get("service.name"))
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    spans.setdefault(span.name, []).append(span)
    assert services == {"subagents-t"}
    [call], [agent], [tool] = spans["tools/call reader"], spans["invoke_agent reader"], spans["execute_tool Read"]
    chats = [s for name, found in spans.items() if name.startswith("chat ") for s in found]
    assert call.trace_id.hex() == CLIENT_TRACE and call.parent_span_id.hex() == CLIENT_SPAN
    assert agent.parent_span_id == call.span_id and tool.parent_span_id == agent.span_id
    assert len(chats) == 2 and all(c.parent_span_id == agent.span_id for c in chats)
    usage = {a.key: a.value.int_value for a in chats[0].attributes if a.key.startswith("gen_ai.usage.")}
    assert usage["gen_ai.usage.input_tokens"] > 0 and usage["gen_ai.usage.output_tokens"] > 0


def imported_modules(project: Path, env: Mapping[str, str]) -> set[str]:
    """The modules `subagents serve` imports from start to a clean exit (stdin at its end)."""
    proc = subprocess.run(
        [SUBAGENTS[0], "-X", "importtime", *SUBAGENTS[1:], "serve", "--root", str(project)],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=dict(env),
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = [line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    return set(lines)


def test_without_an_otlp_endpoint_nothing_from_the_sdk_is_imported(project: Path) -> None:
    plain = imported_modules(project, clean_env())
    traced = imported_modules(project, clean_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}))
    assert "mcp" in plain and not {m for m in plain if m.startswith(("opentelemetry.sdk", "opentelemetry.exporter"))}
    assert "opentelemetry.sdk.trace" in traced  # the control: the same measure sees it when it is configured
    assert any(m.startswith("opentelemetry.exporter.otlp.proto.http") for m in traced)
    assert os.environ.get("OTEL_SDK_DISABLED") != "true"  # nothing in this process switched it off for them


@pytest.mark.anyio
async def test_json_logs_over_http_are_json_on_every_stderr_line(
    project: Path, reader: Path, fake_model: FakeMessagesServer
) -> None:
    """uvicorn's lines and the `listening on` line go the same way as ours."""
    flags = ("--root", str(project), "--agents-dir", str(reader), "--no-bundled", "--log-format", "json", "-v")
    with http_server(*flags, env=model_env(fake_model)) as (url, proc):
        async with Client(url, mode="legacy") as client:
            result = await client.call_tool("reader", {"task": "Read it"})
    assert proc.stderr is not None
    records = [json.loads(line) for line in proc.stderr.read().splitlines() if line.strip()]
    run_id = (result.structured_content or {})["run_id"]
    assert any(r["message"].startswith("listening on http://127.0.0.1:") for r in records)
    assert any(r.get("run_id") == run_id for r in records)
