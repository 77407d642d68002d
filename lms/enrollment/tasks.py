"""Worker tasks of the enrollment area: staff who left (退職・転出) give up their later places,
soon after the departure is recorded and, as a safety net, every quarter of an hour."""

from __future__ import annotations

import logging

from huey import crontab

from lms.common.jobs import app_context, huey
from lms.enrollment.services import withdraw_departed_staff

logger = logging.getLogger(__name__)


def _withdraw() -> int:
    done = withdraw_departed_staff()
    if done:
        logger.info("departed staff: %s places given up", done)
    return done


@huey.task()
def withdraw_departed_soon() -> int:
    """Enqueued after a commit that recorded a departure."""
    with app_context():
        return _withdraw()


@huey.periodic_task(crontab(minute="*/15"))
def withdraw_departed_periodically() -> int:
    """A departure whose prompt run failed (the queue down at the commit) is caught here."""
    with app_context():
        return _withdraw()
