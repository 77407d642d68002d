"""Worker tasks: deliver the webhooks promptly after a commit that queued some, and every
minute (retries after their delay, claims of a worker that died)."""

from __future__ import annotations

import logging

from huey import crontab

from lms.api.webhooks.delivery import Report, deliver_due
from lms.common.jobs import app_context, huey

logger = logging.getLogger(__name__)


def _deliver() -> dict:
    total = Report()
    for _batch in range(20):  # deliveries committed while we were sending: deliver them too
        report = deliver_due()
        total.add(report)
        if not report.busy:
            break
    if total.busy:
        logger.info("webhooks: %s delivered, %s retried, %s failed", len(total.delivered), len(total.retried),
                    len(total.failed))
    return {"delivered": total.delivered, "retried": total.retried, "failed": total.failed,
            "disabled": total.disabled, "skipped": total.skipped}


@huey.task()
def deliver_webhooks_soon() -> dict:
    with app_context():
        return _deliver()


@huey.periodic_task(crontab(minute="*"))
def deliver_webhooks_periodically() -> dict:
    with app_context():
        return _deliver()
