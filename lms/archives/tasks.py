"""Archive housekeeping (huey): expired resumable upload parts are deleted."""

from __future__ import annotations

import logging

from huey import crontab

from lms.common.jobs import app_context, huey

logger = logging.getLogger(__name__)


def run_expire_uploads() -> int:
    from lms.archives.services import expire_uploads
    from lms.extensions import db

    count = expire_uploads()
    db.session.commit()
    if count:
        logger.info("archives: %s expired upload part(s) deleted", count)
    return count


@huey.periodic_task(crontab(minute="*/30"))
def expire_uploads_periodically() -> int:
    """Every 30 minutes: parts of uploads left unfinished past their expiry go."""
    with app_context():
        return run_expire_uploads()
