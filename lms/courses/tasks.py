"""Worker tasks of the courses area: moving on each course's next session once it starts."""

from __future__ import annotations

import logging

from huey import crontab

from lms.common.jobs import app_context, huey
from lms.common.timeutil import utcnow
from lms.courses import next_session
from lms.extensions import db

logger = logging.getLogger(__name__)


def refresh_next_sessions() -> int:
    """Courses whose stored next session has started get their following one (the catalogue
    works such a course out per request until then). Returns how many changed."""
    with db.engine.begin() as connection:
        return next_session.refresh_started(connection, utcnow())


@huey.periodic_task(crontab(minute="*/5"))
def refresh_next_sessions_periodically() -> int:
    """Every five minutes: keep the catalogue's sort key off the fallback path."""
    with app_context():
        count = refresh_next_sessions()
        if count:
            logger.info("next sessions moved on: %s courses", count)
        return count
