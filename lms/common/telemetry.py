"""Optional OpenTelemetry: traces of requests, database statements and Microsoft Graph calls,
and metrics (job queue depth, enrollment outcomes, export durations), exported by OTLP.

Off unless LMS_OTEL_ENDPOINT names an OTLP/HTTP collector (an OpenTelemetry Collector, which
can forward to Azure Monitor with its azuremonitor exporter, or any OTLP backend); then the
OpenTelemetry packages are imported and the app, its engine and ``requests`` (the Graph
client) are instrumented. Each request's span carries the request ID the logs carry
(``manabi.request_id``), and each log line carries the trace ID (``trace_id``), so a line and
its trace find each other.

Tests pass their own exporter and reader (in memory) to ``configure``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any

from flask import Flask, g

from lms.common import signals

_state: dict[str, Any] = {}


def configure(app: Flask, *, span_exporter: Any = None, metric_reader: Any = None) -> bool:
    """Switch telemetry on for ``app`` when LMS_OTEL_ENDPOINT is set (or exporters are given).
    Returns whether it is on."""
    endpoint = app.config.get("LMS_OTEL_ENDPOINT") or ""
    if not endpoint and span_exporter is None:
        return False
    # Imported here: the packages cost start-up time and memory when telemetry is off.
    from opentelemetry import metrics, trace  # (telemetry on only)
    from opentelemetry.instrumentation.flask import FlaskInstrumentor  # (telemetry on only)
    from opentelemetry.instrumentation.requests import RequestsInstrumentor  # (telemetry on only)
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor  # (telemetry on only)
    from opentelemetry.sdk.metrics import MeterProvider  # (telemetry on only)
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader  # (telemetry on only)
    from opentelemetry.sdk.resources import Resource  # (telemetry on only)
    from opentelemetry.sdk.trace import TracerProvider  # (telemetry on only)
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor  # (telemetry on only)

    from lms.common.jobs import pending_jobs  # (telemetry on only)
    from lms.extensions import db  # (telemetry on only)

    resource = Resource.create({"service.name": app.config.get("LMS_OTEL_SERVICE_NAME") or "manabi",
                                "deployment.environment": app.config.get("LMS_ENV", "")})
    tracer_provider = TracerProvider(resource=resource)
    if span_exporter is None:
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter  # (on only)
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter  # (on only)

        base = endpoint.rstrip("/")
        tracer_provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{base}/v1/traces")))
        metric_reader = PeriodicExportingMetricReader(OTLPMetricExporter(endpoint=f"{base}/v1/metrics"),
                                                      export_interval_millis=60_000)
        trace.set_tracer_provider(tracer_provider)
    else:
        tracer_provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    meter_provider = MeterProvider(resource=resource, metric_readers=[metric_reader] if metric_reader else [])
    if span_exporter is None:
        metrics.set_meter_provider(meter_provider)

    FlaskInstrumentor().instrument_app(app, tracer_provider=tracer_provider, meter_provider=meter_provider,
                                       excluded_urls="healthz,static")
    with app.app_context():
        # The instrumentation declares SQLAlchemy < 2.1; its engine events are the same in 2.1
        # (tests/ops/test_telemetry.py checks the statements' spans), so the check is skipped.
        SQLAlchemyInstrumentor().instrument(engine=db.engine, tracer_provider=tracer_provider,
                                            enable_commenter=False, skip_dep_check=True)
    RequestsInstrumentor().instrument(tracer_provider=tracer_provider)

    meter = meter_provider.get_meter("manabi")
    outcomes = meter.create_counter("manabi.enrollment.outcomes", unit="{enrollment}",
                                    description="Enrollment decisions by resulting status")
    exports = meter.create_histogram("manabi.export.duration", unit="s",
                                     description="Time from the first to the last byte of an export")

    def observe_queue(_options):
        from opentelemetry.metrics import Observation  # (telemetry on only)

        try:
            yield Observation(pending_jobs())
        except Exception:  # noqa: BLE001 - an unreachable queue is reported by /readyz, not here
            return

    meter.create_observable_gauge("manabi.jobs.pending", callbacks=[observe_queue], unit="{job}",
                                  description="Jobs waiting in the background queue")

    def count_outcome(_sender, **kwargs):
        outcomes.add(1, {"status": str(kwargs.get("new_status") or ""), "notice": str(kwargs.get("notice") or "")})

    signals.enrollment_status_changed.connect(count_outcome, weak=False)
    _state.update(exports=exports, tracer_provider=tracer_provider, meter_provider=meter_provider,
                  receiver=count_outcome, app=app)

    @app.before_request
    def _tie_request_to_trace():
        span = trace.get_current_span()
        context = span.get_span_context()
        if context.is_valid:
            span.set_attribute("manabi.request_id", g.get("request_id", ""))
            g.trace_id = format(context.trace_id, "032x")

    return True


def timed_export(chunks: Iterable[bytes], kind: str) -> Iterator[bytes]:
    """``chunks`` passed on; with telemetry on, the time to the last byte is recorded."""
    started = time.monotonic()
    yield from chunks
    histogram = _state.get("exports")
    if histogram is not None:
        histogram.record(time.monotonic() - started, {"kind": kind})


def shut_down() -> None:
    """Flush and stop (tests; a process exit does the same through the SDK's atexit)."""
    receiver = _state.pop("receiver", None)
    if receiver is not None:
        signals.enrollment_status_changed.disconnect(receiver)
    for key in ("tracer_provider", "meter_provider"):
        provider = _state.pop(key, None)
        if provider is not None:
            provider.shutdown()
    _state.pop("exports", None)
    from opentelemetry.instrumentation.flask import FlaskInstrumentor  # (telemetry on only)
    from opentelemetry.instrumentation.requests import RequestsInstrumentor  # (telemetry on only)
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor  # (telemetry on only)

    RequestsInstrumentor().uninstrument()
    SQLAlchemyInstrumentor().uninstrument()
    app = _state.pop("app", None)
    if app is not None:
        FlaskInstrumentor().uninstrument_app(app)
