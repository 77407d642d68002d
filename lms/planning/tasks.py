"""Worker tasks of the 年間研修計画: releasing held seats at the nomination deadline."""

from __future__ import annotations

import logging

from huey import crontab

from lms.common.database import run_in_transaction
from lms.common.jobs import app_context, huey
from lms.extensions import db
from lms.planning import services

logger = logging.getLogger(__name__)


def release_due_quotas() -> int:
    """Every session past its nomination deadline gives its held seats back, each in a
    transaction of its own (one failure does not hold the others back). Returns how many."""
    released = 0
    for session_id in services.sessions_due_for_release():
        db.session.rollback()  # (end the read's transaction before each write)
        try:
            if run_in_transaction(services.release_at_deadline, session_id):
                released += 1
        except Exception:  # noqa: BLE001 - logged; the next run tries again
            logger.exception("releasing the quotas of session %s failed", session_id)
    return released


@huey.periodic_task(crontab(minute="*/5"))
def release_quotas_periodically() -> int:
    """Every five minutes: the held seats of sessions whose nomination deadline has passed."""
    with app_context():
        count = release_due_quotas()
        if count:
            logger.info("quotas released at the deadline: %s sessions", count)
        return count
