"""Worker tasks: deliver the outbox (promptly after a commit, and every minute), and queue
the reminders of tomorrow's sessions."""

from __future__ import annotations

import logging

from huey import crontab

from lms.common.jobs import app_context, huey
from lms.extensions import db

logger = logging.getLogger(__name__)


def _deliver() -> dict:
    from lms.notifications.services import deliver_due_mail  # services imports this module (deliver_outbox_soon)

    report = deliver_due_mail()
    total = report
    for _batch in range(20):  # mail committed while we were sending: deliver it too
        if not (report.sent or report.retried or report.failed or report.not_applicable):
            break
        report = deliver_due_mail()
        total.sent += report.sent
        total.retried += report.retried
        total.failed += report.failed
        total.not_applicable += report.not_applicable
        total.skipped += report.skipped
    report = total
    if report.sent or report.retried or report.failed:
        logger.info("outbox: %s sent, %s retried, %s failed", len(report.sent), len(report.retried), len(report.failed))
    return {"sent": report.sent, "retried": report.retried, "failed": report.failed, "skipped": report.skipped}


@huey.task()
def deliver_outbox_soon() -> dict:
    """Enqueued after a commit that queued mail, for prompt delivery."""
    with app_context():
        return _deliver()


@huey.periodic_task(crontab(minute="*"))
def deliver_outbox_periodically() -> dict:
    """Every minute: anything due (retries after backoff, stale claims of a dead worker)."""
    with app_context():
        return _deliver()


@huey.periodic_task(crontab(minute="*/10"))
def queue_reminders_periodically() -> int:
    """Every ten minutes: the reminders of tomorrow's sessions (idempotent per day)."""
    from lms.notifications.services import queue_session_reminders  # services imports this module

    with app_context():
        try:
            count = queue_session_reminders()
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        if count:
            logger.info("reminders queued: %s", count)
        return count


@huey.periodic_task(crontab(minute="*/30"))
def queue_approver_digests_periodically() -> int:
    """Every half hour: the approvers' daily digest of approval requests (the training offices' and
    the 所属長's), once a working morning from 08:30 Tokyo (idempotent per approver and day;
    lms.notifications.approvals)."""
    from lms.notifications.approvals import queue_approver_digests  # it imports services, which import this module

    with app_context():
        try:
            count = queue_approver_digests()
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        if count:
            logger.info("approver digests queued: %s", count)
        return count


@huey.periodic_task(crontab(minute="*/30"))
def queue_activity_reminders_periodically() -> int:
    """Every half hour: the learners' reminders of required activities about to close (once each;
    lms.notifications.activity_reminders)."""
    from lms.notifications.activity_reminders import queue_activity_reminders  # (as the digests above)

    with app_context():
        try:
            count = queue_activity_reminders()
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
        if count:
            logger.info("activity reminders queued: %s", count)
        return count
