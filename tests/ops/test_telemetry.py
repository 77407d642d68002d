"""OpenTelemetry, switched on: a request's span with its database spans, the request ID on the
span and the trace ID in the log line, and the metrics (queue depth, enrollment outcomes,
export duration) — through in-memory exporters."""

from __future__ import annotations

import json
import logging

import pytest
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from lms.common import telemetry
from lms.common.logging import JsonFormatter


@pytest.fixture
def traced(app):
    spans, reader = InMemorySpanExporter(), InMemoryMetricReader()
    assert telemetry.configure(app, span_exporter=spans, metric_reader=reader)
    yield spans, reader
    telemetry.shut_down()


def _metrics(reader) -> dict[str, list]:
    found: dict[str, list] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else []:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                found.setdefault(metric.name, []).extend(metric.data.data_points)
    return found


def test_off_unless_an_endpoint_is_configured(app):
    assert app.config["LMS_OTEL_ENDPOINT"] == ""
    assert telemetry.configure(app) is False


def test_a_request_is_traced_with_its_statements_and_its_request_id(app, client, login_as, traced, caplog):
    spans, _reader = traced
    login_as("learner", "131016")
    caplog.set_level(logging.INFO, logger="lms.request")
    response = client.get("/courses", headers={"X-Request-ID": "abcdef0123456789"})
    assert response.status_code == 200
    finished = spans.get_finished_spans()
    server = [s for s in finished if s.kind == SpanKind.SERVER]
    assert len(server) == 1 and server[0].attributes["manabi.request_id"] == "abcdef0123456789"
    assert server[0].attributes.get("http.route") == "/courses"
    queries = [s for s in finished if s.kind == SpanKind.CLIENT and s.context.trace_id == server[0].context.trace_id]
    assert queries, [s.name for s in finished]  # the page's database statements, in the same trace
    # The request's log line names the same trace.
    record = next(r for r in caplog.records if r.name == "lms.request")
    line = json.loads(JsonFormatter().format(record))
    assert line["request_id"] == "abcdef0123456789"
    assert line["trace_id"] == format(server[0].context.trace_id, "032x")


def test_metrics_count_enrollments_time_exports_and_watch_the_queue(app, client, login_as, traced, make_course,
                                                                     make_session, db):
    from lms.enrollment import services as enrollment_services

    _spans, reader = traced
    learner = login_as("learner", "131016")
    session = make_session(make_course())
    enrollment_services.enroll(session.id, learner.staff_member.id, learner)
    db.session.commit()
    login_as("municipal_admin", "131016")
    assert client.get("/completion/export/courses.csv", buffered=True).status_code == 200
    found = _metrics(reader)
    outcomes = found["manabi.enrollment.outcomes"]
    assert sum(p.value for p in outcomes) == 1 and outcomes[0].attributes["status"] == "confirmed"
    exports = found["manabi.export.duration"]
    assert exports[0].count == 1 and exports[0].attributes["kind"] == "courses.csv"
    assert found["manabi.jobs.pending"][0].value >= 0
