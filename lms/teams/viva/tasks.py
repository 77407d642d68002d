"""Viva Learning's nightly reconciliation (the changes themselves run as Graph operations:
lms.teams.tasks.run_graph_operation)."""

from __future__ import annotations

from huey import crontab

from lms.common.jobs import app_context, huey
from lms.teams.graph import graph_configured
from lms.teams.viva.services import queue_nightly_reconciliation


@huey.periodic_task(crontab(minute="20", hour="19"))  # 04:20 in Tokyo
def viva_nightly_reconciliation() -> None:
    """Queue one reconciliation per enabled tenant: read back what Viva Learning holds and
    repair any drift (they run as Graph operations after the commit)."""
    with app_context():
        if graph_configured():
            queue_nightly_reconciliation()
