"""Start-up: with the `otel` extra installed and an OTLP endpoint in the standard OTEL_* variables, send the
run spans (`telemetry.py`) to it. Without the variables this module imports nothing from OpenTelemetry."""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping

log = logging.getLogger(__name__)

ENDPOINTS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
EXTRA = "pip install 'subagents[otel]'"
HTTP_EXPORTER = "opentelemetry.exporter.otlp.proto.http.trace_exporter"
GRPC_EXPORTER = "opentelemetry.exporter.otlp.proto.grpc.trace_exporter"


def wanted(env: Mapping[str, str] = os.environ) -> bool:
    """Whether the user asked for traces: an OTLP endpoint, or OTEL_TRACES_EXPORTER=otlp, and the SDK not off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    exporters = {e.strip().lower() for e in env.get("OTEL_TRACES_EXPORTER", "").split(",") if e.strip()}
    if exporters and "otlp" not in exporters:  # `none`, or an exporter we do not ship
        return False
    return "otlp" in exporters or any(env.get(name) for name in ENDPOINTS)


def configure_tracing(env: Mapping[str, str] = os.environ) -> bool:
    """Install the SDK tracer provider with an OTLP exporter, when the user asked for traces; True when on.
    The service name and resource come from OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES (default
    `subagents`); endpoint, headers, protocol and timeout from OTEL_EXPORTER_OTLP_*, as the SDK reads them."""
    if not wanted(env):
        return False
    protocol = env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL") or ""
    grpc = protocol.strip().lower() == "grpc"
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        exporter_module = importlib.import_module(GRPC_EXPORTER if grpc else HTTP_EXPORTER)
    except ImportError as exc:
        extra = "pip install opentelemetry-exporter-otlp-proto-grpc" if grpc else EXTRA
        log.warning("The OTEL_* variables ask for traces, but the exporter is not installed (%s): %s", exc, extra)
        return False
    named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    attributes = {} if named else {SERVICE_NAME: "subagents"}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter_module.OTLPSpanExporter()))
    trace.set_tracer_provider(provider)  # flushed and shut down at exit (the SDK registers that)
    endpoint = next((env[name] for name in ENDPOINTS if env.get(name)), "the default endpoint")
    log.info("traces go to %s over OTLP/%s", endpoint, "gRPC" if grpc else "HTTP")
    return True
