"""Structured logs: one JSON object per line, each carrying the request ID.

LMS_LOG_FORMAT=json (default in production) or text (default elsewhere); LMS_LOG_LEVEL
(default INFO). Every request writes one line from the ``lms.request`` logger with its
method, path, status and duration; errors carry the same request fields and the traceback.
Lines go to standard error, where gunicorn, systemd or the container runtime collect them.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime

from flask import Flask, g, has_request_context, request

REQUEST_FIELDS = ("request_id", "user_id", "method", "path", "status", "duration_ms", "remote_addr", "trace_id")
_HANDLER_NAME = "manabi"


def _request_fields() -> dict:
    if not has_request_context():
        return {}
    return {
        "request_id": g.get("request_id", ""),
        # Set by the sign-in code once the request's user is loaded (lms.auth.session): a
        # request that never needed its user is logged without one rather than costing a query.
        "user_id": g.get("user_id"),
        "method": request.method,
        "path": request.path,
        "remote_addr": request.remote_addr or "",
        # With telemetry on (lms.common.telemetry): the trace this request's spans belong to.
        "trace_id": g.get("trace_id"),
    }


class RequestContextFilter(logging.Filter):
    """Adds the request's fields to every record logged while a request is handled."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _request_fields().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in REQUEST_FIELDS:
            entry[key] = getattr(record, key, None)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = "-"
        return super().format(record)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is now (test runners swap it between tests)."""

    def __init__(self):
        super().__init__()
        self.name = _HANDLER_NAME

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure_logging(fmt: str = "text", level: str = "INFO") -> logging.Handler:
    """Install (or replace) Manabi's handler on the ``lms`` logger tree."""
    logger = logging.getLogger("lms")
    for handler in list(logger.handlers):
        if handler.name == _HANDLER_NAME:
            logger.removeHandler(handler)
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestContextFilter())
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = fmt != "json"  # JSON lines must not be repeated by a root text handler
    return handler


def init_logging(app: Flask) -> None:
    fmt = (app.config.get("LMS_LOG_FORMAT") or "text").strip().lower()
    if fmt not in ("json", "text"):
        fmt = "text"
    configure_logging(fmt, app.config.get("LMS_LOG_LEVEL") or "INFO")
    if not app.config.get("LMS_LOG_REQUESTS", True):
        return
    request_log = logging.getLogger("lms.request")

    @app.before_request
    def _start_timer():
        g.lms_log_started = time.perf_counter()

    @app.after_request
    def _log_request(response):
        if request.endpoint == "static":
            return response
        started = g.get("lms_log_started")
        duration = round((time.perf_counter() - started) * 1000, 1) if started else None
        level = logging.WARNING if response.status_code >= 500 else logging.INFO
        request_log.log(
            level,
            "%s %s %s",
            request.method,
            request.path,
            response.status_code,
            extra={"status": response.status_code, "duration_ms": duration},
        )
        return response
