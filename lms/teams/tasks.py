"""Background Graph work (huey): one task runs an operation; periodic tasks find what is due."""

from __future__ import annotations

import logging
from datetime import timedelta

from huey import crontab

from lms.jobs import app_context, huey

log = logging.getLogger(__name__)


@huey.task()
def run_graph_operation(operation_id: int) -> None:
    """Run one GraphOperation (retries are bookkept on the row, not by huey)."""
    with app_context():
        from lms.teams.services import execute_operation

        execute_operation(operation_id)


@huey.periodic_task(crontab(minute="*/5"))
def graph_pick_up_operations() -> None:
    """Queue attendance/recording imports of ended sessions; run queued and retry-due operations."""
    with app_context():
        from lms.teams.graph import graph_configured
        from lms.teams.operations import due_operation_ids
        from lms.teams.services import execute_operation, queue_due_imports

        if not graph_configured():
            return
        queue_due_imports()
        for operation_id in due_operation_ids():
            execute_operation(operation_id)


@huey.periodic_task(crontab(minute="40", hour="18"))  # 03:40 in Tokyo
def graph_nightly_recording_catch_up() -> None:
    """getAllRecordings/getAllTranscripts per organizer over the last two days."""
    with app_context():
        from lms.common.timeutil import utcnow
        from lms.extensions import db
        from lms.teams.graph import GraphError, client_from_app, graph_configured
        from lms.teams.services import catch_up_recordings_with, organizers_with_recent_meetings

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
        from lms.teams.graph import graph_configured
        from lms.teams.subscriptions import renew_subscriptions

        if graph_configured():
            renew_subscriptions()


@huey.task()
def handle_graph_notifications(notifications: list[dict]) -> None:
    """Change notifications (new recordings/transcripts): queue the session's recording import."""
    with app_context():
        from lms.teams.subscriptions import process_notifications

        process_notifications(notifications)
