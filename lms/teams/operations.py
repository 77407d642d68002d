"""Graph work as bookkept operations: queued in the caller's transaction, run after commit.

A ``GraphOperation`` row is added in the same transaction as the change that needs Graph
work, so nothing is lost if the background queue is unreachable; the huey task is only
enqueued once that transaction has committed, and a periodic task picks up whatever is
still queued (or failed and worth retrying).

A running operation records the process that runs it (``claimed_by``: host, pid and the
process's start time). When that worker dies (SIGKILL, out of memory) the next pick-up —
the worker runs one when it starts, then every 5 minutes — sees on the same machine that
the process is gone and runs the operation again from the start. An operation run on
another machine (several workers on PostgreSQL) renews a lease (``heartbeat_at``) from a
side thread instead, and is taken over once it has been silent ``GRAPH_OPERATION_LEASE``
seconds. The operations are idempotent (see services), so a run cut short and run again
leaves everything as if it had run once. A run that Graph throttles or refuses for an outage is rescheduled with a
huey task at ``next_attempt_at`` — never earlier than Graph's Retry-After — instead of
waiting in the worker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, or_, select, update

from lms.common.after_commit import discard, pending_keys
from lms.common.database import begin_write, ensure_writer
from lms.common.jobs import hand_over_after_commit
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


def _retry_delay(attempts: int) -> timedelta:
    return timedelta(minutes=min(5 * 2 ** max(attempts - 1, 0), 240))


def lease() -> timedelta:
    """How long a running operation may stay silent before its worker is taken as dead."""
    return timedelta(seconds=float(current_app.config.get("GRAPH_OPERATION_LEASE", 120)))


def _begin_write() -> None:
    """SQLite: take the write lock before reading what is about to be updated (a read
    transaction cannot write once another thread has committed); nothing on PostgreSQL."""
    with contextlib.suppress(RuntimeError):  # the caller has changes in this transaction: it writes already
        begin_write()


# ---------------------------------------------------------------- who runs an operation


def _start_ticks(pid: int) -> str:
    """The process's start time in clock ticks since boot (Linux), "" when unknown."""
    try:
        with open(f"/proc/{pid}/stat") as fh:  # noqa: PTH123
            stat = fh.read()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else ""


def worker_identity() -> str:
    """``host:pid:start ticks`` of this process (the start time tells a reused pid apart)."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_start_ticks(pid)}"[:200]


def owner_alive(identity: str | None) -> bool | None:
    """Is the process that claimed an operation still running? None: not on this machine
    (or unknown), so only its lease can tell."""
    if not identity or identity.count(":") < 2:
        return None
    host, pid_text, ticks = identity.rsplit(":", 2)
    if host != socket.gethostname() or not (pid_text.isascii() and pid_text.isdigit() and len(pid_text) < 10):
        return None
    pid = int(pid_text)
    if ticks and os.path.isdir("/proc"):
        return _start_ticks(pid) == ticks
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# ---------------------------------------------------------------- after-commit enqueue


def _queue_key(operation_id: int) -> tuple[str, int]:
    return ("graph-operation", operation_id)


def _enqueue_after_commit(operation_id: int) -> None:
    """Hand the operation to the worker once committed (inline in tests). A failure to
    enqueue loses nothing: the row stays queued for the periodic pick-up."""
    hand_over_after_commit(lambda: _run(operation_id), key=_queue_key(operation_id), inline=True,
                           what=f"graph operation {operation_id}")


def _run(operation_id: int) -> None:
    from lms.teams.tasks import run_graph_operation  # the tasks run operations: a cycle

    run_graph_operation(operation_id)


def queue_operation(session_id: int | None, kind: str, **details) -> GraphOperation:
    """Add a queued operation to the current transaction; it runs after commit.

    Within one transaction an operation of the same kind for the same session is reused
    (every runner works from the current state). Across transactions a new one is added,
    since a worker may already be reading the state of the earlier one; an older queued
    operation is then superseded when it comes to run (see ``superseded_by``).
    """
    pending = [key[1] for key in pending_keys() if isinstance(key, tuple) and key[0] == "graph-operation"]
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
    _enqueue_after_commit(op.id)
    return op


# ---------------------------------------------------------------- running


def is_due(op: GraphOperation, now=None) -> bool:
    """Queued, or failed and retryable with its next attempt reached."""
    if op.status == QUEUED:
        return True
    if op.status != FAILED:
        return False
    details = op.details or {}
    next_at = details.get("next_attempt_at")
    return bool(details.get("retryable") and next_at and _parse(next_at) <= (now or utcnow()))


def claim(operation_id: int, *, only_if_due: bool = False) -> GraphOperation | None:
    """Mark the operation running (only if queued or failed); None when someone else has it.

    ``only_if_due``: a scheduled retry whose time has not come (the operation was retried
    meanwhile and rescheduled later) leaves it alone.
    """
    if only_if_due:
        op = db.session.get(GraphOperation, operation_id)
        due = op is not None and is_due(op)
        db.session.rollback()
        if not due:
            return None
    _begin_write()
    now = utcnow()
    # An UPDATE's result is a CursorResult (its rowcount); SQLAlchemy types execute() as Result.
    result = cast("CursorResult[Any]", db.session.execute(
        update(GraphOperation)
        .where(GraphOperation.id == operation_id, GraphOperation.status.in_((QUEUED, FAILED)))
        .values(status=RUNNING, attempts=GraphOperation.attempts + 1, started_at=now, heartbeat_at=now,
                finished_at=None, claimed_by=worker_identity())
    ))
    db.session.commit()
    if result.rowcount != 1:
        return None
    return db.session.get(GraphOperation, operation_id)


def superseded_by(op: GraphOperation) -> int | None:
    """A newer queued operation of the same kind for the same session, which will do the job."""
    if op.session_id is None or _names_event(op):
        return None
    newer = db.session.scalars(
        select(GraphOperation).where(
            GraphOperation.session_id == op.session_id,
            GraphOperation.kind == op.kind,
            GraphOperation.status == QUEUED,
            GraphOperation.id > op.id,
        ).order_by(GraphOperation.id.desc())
    ).all()
    # (a cancel of a meeting let go, named by its event id, is nobody else's job)
    return next((other.id for other in newer if not _names_event(other)), None)


def _names_event(op: GraphOperation) -> bool:
    """A cancel of the meeting a session had before a typed link replaced it: its event is
    named in the operation (the session no longer holds it)."""
    return bool((op.details or {}).get("event_id"))


@contextmanager
def heartbeat(operation_id: int):
    """Renew the running operation's lease from a side thread (its own connection) while the
    body runs. The thread is not waited for at the end: a beat blocked behind this very
    transaction's locks must not hold it up (its UPDATE only touches a running row).

    Not on SQLite: one machine only, where the owner's process is checked instead, and a
    beat committed meanwhile would spoil the running import's read-then-write transaction.
    """
    engine = db.engine
    if engine.dialect.name == "sqlite":
        yield
        return
    interval = max(lease().total_seconds() / 4, 0.2)
    stop = threading.Event()

    def beat():
        while not stop.wait(interval):
            try:
                with engine.begin() as conn:
                    conn.execute(
                        update(GraphOperation)
                        .where(GraphOperation.id == operation_id, GraphOperation.status == RUNNING)
                        .values(heartbeat_at=utcnow())
                    )
            except Exception:  # noqa: BLE001 - a missed beat only shortens the lease
                log.warning("heartbeat of graph operation %s failed", operation_id, exc_info=True)

    thread = threading.Thread(target=beat, name=f"graph-op-{operation_id}-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


def finish(op: GraphOperation, *, calls: int, **details) -> None:
    # SQLite: the run committed its own work, and what it read since began a read transaction;
    # another thread's commit (the periodic pick-up) would keep that one from writing ("database
    # is locked" at once, busy_timeout does not help a reader that upgrades). So the write lock
    # first, and the row read again under it; a run that left changes pending writes already.
    ensure_writer()
    op.status = DONE
    op.graph_calls = (op.graph_calls or 0) + calls
    op.last_error = ""
    op.finished_at = utcnow()
    merged = dict(op.details or {})
    for key in ("next_attempt_at", "retryable", "throttled", "graph_status", "retry_after", "worker_lost"):
        merged.pop(key, None)
    merged.update(details)
    op.details = merged


def fail(operation_id: int, error: str, *, retryable: bool, calls: int, graph_status: int | None = None,
         retry_after: float | None = None, error_code: str = "") -> None:
    """Record a failure in its own transaction (the work's transaction was rolled back).

    A retryable failure is rescheduled: ``next_attempt_at`` follows the backoff (5 minutes
    doubling) and is never earlier than Graph's ``retry_after``; a huey task is scheduled
    for that moment (the periodic pick-up is the safety net).
    """
    db.session.rollback()
    _begin_write()
    op = db.session.get(GraphOperation, operation_id)
    if op is None:
        db.session.rollback()
        return
    now = utcnow()
    op.status = FAILED
    op.graph_calls = (op.graph_calls or 0) + calls
    op.last_error = error[:4000]
    op.finished_at = now
    details = dict(op.details or {})
    details["retryable"] = bool(retryable and op.attempts < MAX_ATTEMPTS)
    for key in ("throttled", "graph_status", "retry_after", "worker_lost", "error_code"):
        details.pop(key, None)
    if error_code:
        details["error_code"] = error_code  # worded when shown (failures.failure_text)
    if graph_status is not None:
        details["graph_status"] = graph_status
    if graph_status in (429, 503, 504):
        details["throttled"] = True  # Graph is busy or down: shown as such to the trainer
    if retry_after is not None:
        details["retry_after"] = round(retry_after, 3)
    next_at = None
    if details["retryable"]:
        next_at = now + max(_retry_delay(op.attempts), timedelta(seconds=retry_after or 0))
        details["next_attempt_at"] = next_at.isoformat()
    else:
        details.pop("next_attempt_at", None)
    op.details = details
    db.session.commit()
    if next_at is not None:
        _schedule_retry(operation_id, next_at)


def _schedule_retry(operation_id: int, when) -> None:
    """A huey task at ``when`` (it only runs the operation if it is still due then)."""
    try:
        from lms.teams.tasks import run_graph_operation  # the tasks run operations: a cycle

        run_graph_operation.schedule(args=(operation_id,), kwargs={"only_if_due": True}, eta=when)
    except Exception:  # noqa: BLE001 - the periodic pick-up retries it all the same
        log.exception("could not schedule the retry of graph operation %s", operation_id)


def due_operation_ids(now=None) -> list[int]:
    """Queued operations not picked up, failed ones due for a retry, and stale running ones."""
    now = now or utcnow()
    _begin_write()
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
        elif _worker_lost(op, now):
            # The worker died in the middle: make it claimable again (only this claim of it,
            # identified by its attempt number, in case it was taken over meanwhile).
            taken = cast("CursorResult[Any]", db.session.execute(
                update(GraphOperation)
                .where(GraphOperation.id == op.id, GraphOperation.status == RUNNING,
                       GraphOperation.attempts == op.attempts)
                .values(status=FAILED, last_error="worker stopped while running", finished_at=now,
                        details={**details, "retryable": True, "next_attempt_at": now.isoformat(),
                                 "worker_lost": True})
            ))
            if taken.rowcount == 1:
                due.append(op.id)
    db.session.commit()
    return due


def _worker_lost(op: GraphOperation, now) -> bool:
    alive = owner_alive(op.claimed_by)
    if alive is not None:
        return not alive
    last = as_utc(op.heartbeat_at or op.started_at)
    return last is not None and last <= now - lease()


def _parse(value: str) -> datetime:
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
    _enqueue_after_commit(op.id)


def run_here_instead(op: GraphOperation) -> None:
    """The caller runs ``op`` itself (the CLI): the worker is not asked to after commit."""
    discard(_queue_key(op.id))
