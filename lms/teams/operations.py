"""Graph work as bookkept operations: queued in the caller's transaction, run after commit.

A ``GraphOperation`` row is added in the same transaction as the change that needs Graph
work, so nothing is lost if the background queue is unreachable; the huey task is only
enqueued once that transaction has committed, and a periodic task picks up whatever is
still queued (or failed and worth retrying).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import event, or_, select, update
from sqlalchemy.orm import Session

from lms.common.timeutil import as_utc, utcnow
from lms.extensions import db
from lms.teams.models import GraphOperation

log = logging.getLogger(__name__)

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"

# Operation kinds (GraphOperation.kind).
CREATE_EVENT = "create_event"
UPDATE_EVENT = "update_event"
CANCEL_EVENT = "cancel_event"
SYNC_ATTENDEES = "sync_attendees"
IMPORT_ATTENDANCE = "import_attendance"
IMPORT_RECORDING = "import_recording"
KINDS = (CREATE_EVENT, UPDATE_EVENT, CANCEL_EVENT, SYNC_ATTENDEES, IMPORT_ATTENDANCE, IMPORT_RECORDING)

MAX_ATTEMPTS = 6
STALE_RUNNING = timedelta(hours=1)
_PENDING_KEY = "teams_after_commit"


def _retry_delay(attempts: int) -> timedelta:
    return timedelta(minutes=min(5 * 2 ** max(attempts - 1, 0), 240))


# ---------------------------------------------------------------- after-commit enqueue


@event.listens_for(Session, "after_commit")
def _run_after_commit(session):
    pending = session.info.pop(_PENDING_KEY, None)
    if not pending:
        return
    for operation_id in pending:
        _enqueue(operation_id)


@event.listens_for(Session, "after_soft_rollback")
def _forget_after_rollback(session, previous_transaction):
    if previous_transaction.parent is None:  # the outermost transaction rolled back
        session.info.pop(_PENDING_KEY, None)


def _enqueue(operation_id: int) -> None:
    """Hand the operation to the worker. A failure here loses nothing: the row stays queued."""
    try:
        from lms.jobs import huey
        from lms.teams.tasks import run_graph_operation

        if huey.immediate:
            # Inline (tests): run in a fresh application context, hence a fresh DB session,
            # since the committing session cannot be used from inside its own commit.
            with current_app.app_context():
                run_graph_operation(operation_id)
        else:
            run_graph_operation(operation_id)
    except Exception:  # noqa: BLE001 - the periodic pick-up will run it
        log.exception("could not enqueue graph operation %s; left queued", operation_id)


def queue_operation(session_id: int | None, kind: str, **details) -> GraphOperation:
    """Add a queued operation to the current transaction; it runs after commit.

    Within one transaction an operation of the same kind for the same session is reused
    (every runner works from the current state). Across transactions a new one is added,
    since a worker may already be reading the state of the earlier one; an older queued
    operation is then superseded when it comes to run (see ``superseded_by``).
    """
    pending = db.session.info.get(_PENDING_KEY, [])
    if session_id is not None and pending:
        existing = db.session.scalar(
            select(GraphOperation).where(
                GraphOperation.id.in_(pending),
                GraphOperation.session_id == session_id,
                GraphOperation.kind == kind,
                GraphOperation.status == QUEUED,
            )
        )
        if existing is not None:
            return existing
    op = GraphOperation(session_id=session_id, kind=kind, status=QUEUED, details=dict(details))
    db.session.add(op)
    db.session.flush()
    db.session.info.setdefault(_PENDING_KEY, []).append(op.id)
    return op


# ---------------------------------------------------------------- running


def claim(operation_id: int) -> GraphOperation | None:
    """Mark the operation running (only if queued or failed); None when someone else has it."""
    result = db.session.execute(
        update(GraphOperation)
        .where(GraphOperation.id == operation_id, GraphOperation.status.in_((QUEUED, FAILED)))
        .values(status=RUNNING, attempts=GraphOperation.attempts + 1, started_at=utcnow(), finished_at=None)
    )
    db.session.commit()
    if result.rowcount != 1:
        return None
    return db.session.get(GraphOperation, operation_id)


def superseded_by(op: GraphOperation) -> int | None:
    """A newer queued operation of the same kind for the same session, which will do the job."""
    if op.session_id is None:
        return None
    return db.session.scalar(
        select(GraphOperation.id).where(
            GraphOperation.session_id == op.session_id,
            GraphOperation.kind == op.kind,
            GraphOperation.status == QUEUED,
            GraphOperation.id > op.id,
        ).order_by(GraphOperation.id.desc()).limit(1)
    )


def finish(op: GraphOperation, *, calls: int, **details) -> None:
    op.status = DONE
    op.graph_calls = (op.graph_calls or 0) + calls
    op.last_error = ""
    op.finished_at = utcnow()
    merged = dict(op.details or {})
    merged.pop("next_attempt_at", None)
    merged.pop("retryable", None)
    merged.update(details)
    op.details = merged


def fail(operation_id: int, error: str, *, retryable: bool, calls: int) -> None:
    """Record a failure in its own transaction (the work's transaction was rolled back)."""
    db.session.rollback()
    op = db.session.get(GraphOperation, operation_id)
    if op is None:
        return
    op.status = FAILED
    op.graph_calls = (op.graph_calls or 0) + calls
    op.last_error = error[:4000]
    op.finished_at = utcnow()
    details = dict(op.details or {})
    details["retryable"] = bool(retryable and op.attempts < MAX_ATTEMPTS)
    if details["retryable"]:
        details["next_attempt_at"] = (utcnow() + _retry_delay(op.attempts)).isoformat()
    else:
        details.pop("next_attempt_at", None)
    op.details = details
    db.session.commit()


def due_operation_ids(now=None) -> list[int]:
    """Queued operations not picked up, failed ones due for a retry, and stale running ones."""
    now = now or utcnow()
    rows = db.session.scalars(
        select(GraphOperation).where(
            or_(
                GraphOperation.status == QUEUED,
                GraphOperation.status == FAILED,
                GraphOperation.status == RUNNING,
            )
        ).order_by(GraphOperation.id)
    ).all()
    due = []
    for op in rows:
        details = op.details or {}
        if op.status == QUEUED:
            if as_utc(op.created_at) <= now - timedelta(minutes=1):
                due.append(op.id)
        elif op.status == FAILED:
            next_at = details.get("next_attempt_at")
            if details.get("retryable") and next_at and _parse(next_at) <= now:
                due.append(op.id)
        elif op.started_at is not None and as_utc(op.started_at) <= now - STALE_RUNNING:
            # The worker died in the middle: make it claimable again.
            op.status = FAILED
            op.last_error = op.last_error or "worker stopped while running"
            op.details = {**details, "retryable": True, "next_attempt_at": now.isoformat()}
            due.append(op.id)
    db.session.commit()
    return due


def _parse(value: str):
    from datetime import datetime

    return as_utc(datetime.fromisoformat(value))


def latest_operations(session_id: int) -> list[GraphOperation]:
    return list(
        db.session.scalars(
            select(GraphOperation)
            .where(GraphOperation.session_id == session_id)
            .order_by(GraphOperation.id.desc())
        )
    )


def queue_after_commit_for_existing(op: GraphOperation) -> None:
    db.session.info.setdefault(_PENDING_KEY, []).append(op.id)
