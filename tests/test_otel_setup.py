"""When the OTEL_* variables ask for traces, and what the server says when it cannot send them."""

from __future__ import annotations

import pytest

from subagents.otel import configure_tracing, wanted


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"OTEL_SERVICE_NAME": "x"}, False),  # a name alone sends nothing anywhere
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318"}, True),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://localhost:4318/v1/traces"}, True),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, True),  # the SDK's default endpoint
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318", "OTEL_TRACES_EXPORTER": "none"}, False),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4318", "OTEL_SDK_DISABLED": "true"}, False),
    ],
)
def test_traces_are_wanted_only_when_an_otlp_exporter_is_asked_for(env: dict[str, str], expected: bool) -> None:
    assert wanted(env) is expected


def test_a_missing_exporter_is_one_warning_that_says_what_to_install(caplog: pytest.LogCaptureFixture) -> None:
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://localhost:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}
    assert configure_tracing(env) is False  # the gRPC exporter is not part of the otel extra
    [record] = caplog.records
    assert "pip install opentelemetry-exporter-otlp-proto-grpc" in record.getMessage()
