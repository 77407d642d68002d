"""Probes for the load balancer and the operator: /healthz (alive), /readyz (ready to serve),
and /hello (a bare view for benchmarks, not served in production)."""

from __future__ import annotations

from flask import Blueprint, Response, abort, current_app
from sqlalchemy import text

from lms.archives.storage import get_storage
from lms.common.jobs import heartbeat_age, pending_jobs
from lms.common.public import public
from lms.extensions import db, limiter


def register(bp: Blueprint) -> None:
    """Add the probes to the main blueprint (endpoints main.healthz, main.readyz, main.hello)."""
    bp.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    bp.add_url_rule("/readyz", view_func=readyz, methods=["GET"])
    bp.add_url_rule("/hello", view_func=hello, methods=["GET"])


@public
@limiter.exempt
def healthz():
    """Alive: the process answers and reaches its database (a restart would help otherwise)."""
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # the check's whole point is to report, not raise
        current_app.logger.exception("health check failed")
        return {"status": "error", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}


def _probe(name: str, check) -> tuple[bool, object]:
    try:
        return True, check()
    except Exception:  # a readiness probe reports what fails; the log keeps the details
        current_app.logger.warning("readiness: %s failed", name, exc_info=True)
        return False, "unreachable"


@public
@limiter.exempt
def readyz():
    """Ready: the database, the job queue (Redis where configured), a live worker and the
    archive storage all answer. 503 with the failing parts otherwise, so that a load balancer
    sends no users to a machine that would fail them."""
    checks: dict[str, object] = {}
    ok_db, _ = _probe("database", lambda: db.session.execute(text("SELECT 1")))
    db.session.rollback()
    checks["database"] = "ok" if ok_db else "unreachable"
    ok_queue, pending = _probe("job queue", pending_jobs)
    checks["queue"] = {"status": "ok", "pending": pending} if ok_queue else {"status": "unreachable"}
    ok_age, age = _probe("worker heartbeat", heartbeat_age) if ok_queue else (False, None)
    max_age = current_app.config["LMS_WORKER_HEARTBEAT_MAX_AGE"]
    worker_ok = ok_age and isinstance(age, float) and age <= max_age
    checks["worker"] = {"status": "ok" if worker_ok else "stale" if isinstance(age, float) else "no heartbeat",
                        "heartbeat_age_s": round(age, 1) if isinstance(age, float) else None}

    def storage_check():
        get_storage().check()
        return "ok"

    ok_storage, _ = _probe("storage", storage_check)
    checks["storage"] = "ok" if ok_storage else "unreachable"
    ready = ok_db and ok_queue and worker_ok and ok_storage
    return {"status": "ok" if ready else "error", "checks": checks}, 200 if ready else 503


@public
def hello():
    """A bare view for benchmarks: touches neither the database nor the session. Not served
    in production."""
    if current_app.config["LMS_ENV"] == "production":
        abort(404)
    return Response("hello", mimetype="text/plain")
