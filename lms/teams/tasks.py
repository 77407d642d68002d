"""Background Graph work (huey): one task runs an operation; periodic tasks find what is due."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from huey import crontab

from lms.common.jobs import app_context, huey
from lms.common.timeutil import utcnow
from lms.extensions import db
from lms.teams import operations as ops
from lms.teams.graph import GraphError, client_from_app, graph_configured
from lms.teams.services import (
    catch_up_recordings_with,
    execute_operation,
    organizers_with_recent_meetings,
    queue_due_imports,
    sweep_recording_imports,
)
from lms.teams.subscriptions import process_notifications, renew_subscriptions

log = logging.getLogger(__name__)
_startup_lock = threading.Lock()


@huey.task()
def run_graph_operation(operation_id: int, only_if_due: bool = False) -> None:
    """Run one GraphOperation (retries are bookkept on the row, not by huey).

    ``only_if_due``: a scheduled retry (see operations.fail), run only if still due.
    """
    with app_context():
        execute_operation(operation_id, only_if_due=only_if_due)


@huey.periodic_task(crontab(minute="*/5"))
def graph_pick_up_operations() -> None:
    """Queue attendance/recording imports of ended sessions; run queued and retry-due operations."""
    with app_context():
        pick_up_operations()


def pick_up_operations() -> list[int]:
    """Run what is due (queued, retry-due, lease run out). Stops at the first run that Graph
    throttles or refuses for an outage: the rest would only add to the load; they stay due
    for the next pick-up. Recording bytes left by runs that died are removed first (once
    their operations are marked failed, before they run again). Returns the ids run."""
    if not graph_configured():
        return []
    queue_due_imports()
    due = ops.due_operation_ids()
    try:
        sweep_recording_imports()
    except Exception:  # noqa: BLE001 - housekeeping; the operations run all the same
        log.exception("could not sweep the storage of interrupted recording imports")
        db.session.rollback()
    ran = []
    for operation_id in due:
        op = execute_operation(operation_id)
        if op is None:
            continue
        ran.append(operation_id)
        if op.status == ops.FAILED and (op.details or {}).get("throttled"):
            log.info("graph throttled or unavailable: pick-up stops after operation %s", operation_id)
            break
    return ran


_started = False


@huey.on_startup()
def _pick_up_when_the_worker_starts() -> None:
    """Operations left running by a worker that died are taken over as soon as a worker starts
    (or once their lease has run out, if it restarted sooner), not at the next 5-minute pick-up."""
    global _started
    with _startup_lock:
        if _started or huey.immediate:
            return
        _started = True
    graph_pick_up_operations()
    with app_context():
        after_lease = ops.lease().total_seconds() + 1
    graph_pick_up_operations.schedule(delay=after_lease)


@huey.periodic_task(crontab(minute="40", hour="18"))  # 03:40 in Tokyo
def graph_nightly_recording_catch_up() -> None:
    """getAllRecordings/getAllTranscripts per organizer over the last two days."""
    with app_context():
        if not graph_configured():
            return
        client = client_from_app()
        end = utcnow()
        for organizer in organizers_with_recent_meetings(end):
            try:
                catch_up_recordings_with(client, organizer, end - timedelta(days=2), end)
                db.session.commit()
            except GraphError:
                db.session.rollback()
                log.exception("recording catch-up failed for %s", organizer)


@huey.periodic_task(crontab(minute="15", hour="*/6"))
def graph_renew_subscriptions() -> None:
    with app_context():
        if graph_configured():
            renew_subscriptions()


@huey.task()
def handle_graph_notifications(notifications: list[dict]) -> None:
    """Change notifications (new recordings/transcripts): queue the session's recording import."""
    with app_context():
        process_notifications(notifications)
