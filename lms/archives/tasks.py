"""Archive jobs (huey): the SHA-256 verification of finished uploads, the measurement of
videos whose container states no length, and housekeeping (expired resumable upload parts
are deleted; lost verifications and measurements are handed over again)."""

from __future__ import annotations

import logging

from huey import crontab

from lms.common.jobs import app_context, huey
from lms.extensions import db

logger = logging.getLogger(__name__)


@huey.task()
def verify_upload_task(upload_id: str) -> str | None:
    """Verify one finished upload (enqueued after the commit of its last PATCH)."""
    from lms.archives import uploads  # a cycle: uploads enqueues this task

    with app_context():
        return uploads.verify_upload(upload_id)


@huey.task()
def measure_duration_task(file_id: int) -> int | None:
    """Measure one video without a stated length (enqueued after the commit of its row)."""
    from lms.archives import durations  # a cycle: durations enqueues this task

    with app_context():
        return durations.measure_duration(file_id)


def run_expire_uploads() -> int:
    from lms.archives import durations, uploads  # a cycle: both enqueue this module's tasks

    count = uploads.expire_uploads()
    retried = uploads.verify_stalled_uploads()
    measuring = durations.measure_stalled()
    db.session.commit()
    if count:
        logger.info("archives: %s expired upload part(s) deleted", count)
    if retried:
        logger.info("archives: %s stalled verification(s) handed to the worker again", retried)
    if measuring:
        logger.info("archives: %s video(s) without a known length handed to the worker", measuring)
    return count


@huey.periodic_task(crontab(minute="*/30"))
def expire_uploads_periodically() -> int:
    """Every 30 minutes: parts of uploads left unfinished past their expiry go; verifications
    and measurements that should be over are handed over again."""
    with app_context():
        return run_expire_uploads()
