"""Spans of a run in the OpenTelemetry GenAI conventions (`invoke_agent`, `chat`, `execute_tool`), and the run id
that log lines carry. Nothing here imports OpenTelemetry: when no SDK tracer provider is configured (`otel.py`
configures one from the OTEL_* variables, or a host process does), every span is a shared no-op handle, and
while the SDK is not even loaded, finding that out is one dict lookup."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from typing import Any

from subagents.messages import Message, ModelRequest, ModelResponse, Usage

CAPTURE_CONTENT = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"  # the GenAI instrumentations' opt-in
CONTENT_LIMIT = 16_000  # characters of one recorded content attribute
NAME_LIMIT = 64  # characters of a model-chosen tool name in a span
PROVIDER = "anthropic"

run_id_var: ContextVar[str | None] = ContextVar("subagents_run_id", default=None)


class SpanHandle:
    """One span to add attributes to; the no-op handle (no tracer configured) ignores them."""

    def __init__(self, span: Any = None) -> None:
        self._span = span

    @property
    def recording(self) -> bool:
        return self._span is not None

    def set(self, attributes: dict[str, Any]) -> None:
        if self._span is not None:
            self._span.set_attributes({k: v for k, v in attributes.items() if v is not None})

    def fail(self, kind: str, message: str | None = None) -> None:
        """Mark the span failed (`error.type`), for outcomes that end a run without raising."""
        if self._span is None:
            return
        status = sys.modules["opentelemetry.trace"].StatusCode.ERROR
        self._span.set_attribute("error.type", kind)
        self._span.set_status(status, message)


NOOP = SpanHandle()


def _tracer() -> Any:
    """The configured tracer, or None: no SDK provider means no spans at all (not even no-op ones)."""
    if "opentelemetry.sdk.trace" not in sys.modules:  # no SDK loaded (no extra, no endpoint): no provider either
        return None
    trace = sys.modules["opentelemetry.trace"]
    provider = trace.get_tracer_provider()
    if isinstance(provider, (trace.ProxyTracerProvider, trace.NoOpTracerProvider)):
        return None
    from subagents import __version__

    return provider.get_tracer("subagents", __version__)


def capture_content() -> bool:
    """Prompts, answers, tool arguments and results go into spans only when the user opts in."""
    value = os.environ.get(CAPTURE_CONTENT, "").strip().lower()
    return value in {"1", "true", "yes", "span_only", "span_and_event"}


class _Off:
    """The context of a span that is not made: no tracer, so nothing to start or end (and no state)."""

    def __enter__(self) -> SpanHandle:
        return NOOP

    def __exit__(self, *exc: object) -> None:
        return None


OFF = _Off()


@contextmanager
def _span(tracer: Any, name: str, kind: str, attributes: dict[str, Any]) -> Iterator[SpanHandle]:
    span_kind = getattr(sys.modules["opentelemetry.trace"].SpanKind, kind)
    clean = {k: v for k, v in attributes.items() if v is not None}
    with tracer.start_as_current_span(name, kind=span_kind, attributes=clean) as span:
        yield SpanHandle(span)


@contextmanager
def agent_span(agent: str, *, model: str | None, pattern: bool = False) -> Iterator[SpanHandle]:
    """`invoke_agent {agent}` around one run (a pattern's run too: its children's spans nest beneath)."""
    attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": agent,
        "gen_ai.request.model": model,
        "subagents.pattern": agent if pattern else None,
    }
    token = run_id_var.set(None)
    tracer = _tracer()
    try:
        with OFF if tracer is None else _span(tracer, f"invoke_agent {agent}", "INTERNAL", attributes) as span:
            yield span
    finally:
        run_id_var.reset(token)


def started(span: SpanHandle, run_id: str, *, backend: str | None = None, parent_id: str | None = None) -> None:
    """The run has its id: its span and every log line from here on carry it."""
    run_id_var.set(run_id)
    span.set({"subagents.run_id": run_id, "subagents.parent_run_id": parent_id, "subagents.backend": backend})


def ended(span: SpanHandle, *, status: str, usage: Usage, turns: int, cost_usd: float | None, kind: str | None) -> None:
    """How the run ended, on its span: totals, and an error status unless it completed."""
    if not span.recording:
        return
    span.set(usage_attributes(usage) | {"subagents.status": status, "subagents.turns": turns})
    span.set({"subagents.cost_usd": cost_usd})
    if status not in ("completed", "budget_exceeded"):
        span.fail(kind or status)


def usage_attributes(usage: Usage) -> dict[str, Any]:
    """`gen_ai.usage.*`: input tokens include the cached ones, as the conventions ask (Anthropic's do not)."""
    cached = usage.cache_read_input_tokens
    created = usage.cache_creation_input_tokens
    return {
        "gen_ai.usage.input_tokens": usage.input_tokens + cached + created,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "gen_ai.usage.cache_read.input_tokens": cached,
        "gen_ai.usage.cache_creation.input_tokens": created,
    }


def task_content(span: SpanHandle, conversation: Sequence[Message]) -> None:
    """The run's task, on its span, when content capture is on."""
    if span.recording and capture_content():
        span.set({"gen_ai.input.messages": _messages_json(conversation)})


def chat_span(request: ModelRequest) -> AbstractContextManager[SpanHandle]:
    """`chat {model}` around one model turn."""
    tracer = _tracer()
    return OFF if tracer is None else _chat(tracer, request)


@contextmanager
def _chat(tracer: Any, request: ModelRequest) -> Iterator[SpanHandle]:
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": PROVIDER,
        "gen_ai.request.model": request.model,
        "gen_ai.request.max_tokens": request.max_tokens,
        "gen_ai.request.temperature": request.temperature,
    }
    with _span(tracer, f"chat {request.model}", "CLIENT", attributes) as span:
        if span.recording and capture_content():
            span.set({"gen_ai.system_instructions": _clip(json.dumps([{"type": "text", "content": request.system}]))})
        yield span


def chat_response(span: SpanHandle, response: ModelResponse) -> None:
    """What the model answered, on its chat span."""
    if not span.recording:
        return
    span.set(usage_attributes(response.usage))
    finish = [response.stop_reason]
    span.set({"gen_ai.response.model": response.model or None, "gen_ai.response.finish_reasons": finish})
    if capture_content():
        span.set({"gen_ai.output.messages": _messages_json([response.as_message()], response.stop_reason)})


def tool_span(name: str, call_id: str, arguments: object, *, known: bool) -> AbstractContextManager[SpanHandle]:
    """`execute_tool {tool}` around one tool call; a name the model made up stays out of the span's name."""
    tracer = _tracer()
    return OFF if tracer is None else _tool(tracer, name, call_id, arguments, known)


@contextmanager
def _tool(tracer: Any, name: str, call_id: str, arguments: object, known: bool) -> Iterator[SpanHandle]:
    shown = name[:NAME_LIMIT]
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": shown,
        "gen_ai.tool.call.id": call_id[:NAME_LIMIT],
        "gen_ai.tool.type": "function",
    }
    with _span(tracer, f"execute_tool {shown}" if known else "execute_tool", "INTERNAL", attributes) as span:
        if span.recording and capture_content():
            span.set({"gen_ai.tool.call.arguments": _clip(json.dumps(arguments, default=str))})
        yield span


def tool_result(span: SpanHandle, text: str, *, is_error: bool) -> None:
    """The tool's answer: an error status when it failed, its text only with content capture on."""
    if not span.recording:
        return
    if is_error:
        span.fail("tool_error")
    if capture_content():
        span.set({"gen_ai.tool.call.result": _clip(text)})


def current_ids() -> tuple[str | None, str | None]:
    """The run id and trace id (hex) of the code running now, for log lines; None where there is none."""
    trace = sys.modules.get("opentelemetry.trace")
    trace_id = None
    if trace is not None:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            trace_id = format(context.trace_id, "032x")
    return run_id_var.get(), trace_id


def _messages_json(messages: Sequence[Message], finish: str | None = None) -> str:
    """Messages in the conventions' shape (role, parts), as the JSON string span attributes hold."""
    out: list[dict[str, Any]] = []
    for message in messages:
        parts = [block.model_dump(mode="json", exclude_none=True) for block in message.content]
        entry: dict[str, Any] = {"role": message.role, "parts": parts}
        if finish is not None:
            entry["finish_reason"] = finish
        out.append(entry)
    return _clip(json.dumps(out))


def _clip(text: str) -> str:
    return text if len(text) <= CONTENT_LIMIT else text[:CONTENT_LIMIT] + "…"
