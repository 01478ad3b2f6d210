"""The SDK's in-memory exporter behind the global tracer provider, for the trace tests. The global provider can
be set once a process, so it is set once a worker and only records while a test holds `recorded_spans`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pytest
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter


class _Switched(SpanProcessor):
    """Hands ended spans to the exporter while on; off, other tests' spans are dropped."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.on = False

    def on_start(self, span: object, parent_context: Context | None = None) -> None:
        pass

    def on_end(self, span: ReadableSpan) -> None:
        if self.on:
            self.exporter.export((span,))


@pytest.fixture(scope="session")
def _switched() -> _Switched:
    processor = _Switched()
    provider = TracerProvider()
    provider.add_span_processor(processor)
    trace.set_tracer_provider(provider)
    return processor


@pytest.fixture
def recorded_spans(_switched: _Switched) -> Iterator[InMemorySpanExporter]:
    """The spans that end during the test, in the order they ended."""
    _switched.exporter.clear()
    _switched.on = True
    try:
        yield _switched.exporter
    finally:
        _switched.on = False
        _switched.exporter.clear()


def named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def one(spans: Sequence[ReadableSpan], name: str) -> ReadableSpan:
    [span] = named(spans, name)
    return span


def parent_of(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.span_id


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return span.context.trace_id
