"""Worker tasks of the roster: scheduled departures (退職・転出 recorded ahead, e.g. for
3月31日) take effect on their day."""

from __future__ import annotations

import logging

from huey import crontab

from lms.common.jobs import app_context, huey
from lms.roster.services import apply_due_departures

logger = logging.getLogger(__name__)


@huey.periodic_task(crontab(minute="5"))
def apply_due_departures_hourly() -> int:
    """Every hour (so a departure takes effect in the first hour of its Tokyo day)."""
    with app_context():
        done = apply_due_departures()
        if done:
            logger.info("roster: %s scheduled departures took effect", done)
        return done
