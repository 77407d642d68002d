"""Activity jobs (huey): housekeeping of attached files."""

from __future__ import annotations

import logging

from huey import crontab

from lms.activities import files, services
from lms.common.jobs import app_context, huey

logger = logging.getLogger(__name__)


@huey.periodic_task(crontab(minute="15,45"))
def sweep_activity_files_periodically() -> int:
    """Every 30 minutes: objects of attached files that no answer names (left by a process
    killed between storing a file and committing its row) are deleted."""
    with app_context():
        removed = files.sweep_orphans()
    if removed:
        logger.info("activities: %s orphaned attached file(s) deleted", len(removed))
    return len(removed)


@huey.periodic_task(crontab(minute="55", hour="18"))  # 03:55 in Tokyo
def reorder_anonymous_answers_nightly() -> bool:
    """Every night: the anonymous answers' table rewritten in key order (PostgreSQL), so that
    the order the day's answers were stored in cannot be lined up with the submissions'."""
    with app_context():
        return services.reorder_anonymous_answers()
