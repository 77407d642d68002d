"""Completion jobs (huey): a completion recomputed off the request path.

An activity submitted, passed, confirmed or returned changes its learner's completion; the
request that made the change only hands the recomputation to the worker once it has
committed (``lms.completion.receivers``). The job is idempotent: recomputing twice, or after
the request path recomputed for another reason, gives the same completion."""

from __future__ import annotations

import logging

from flask import current_app

from lms.common.database import begin_write
from lms.common.jobs import app_context, huey
from lms.completion.services import recompute_for_session
from lms.extensions import db

logger = logging.getLogger(__name__)


def recompute_now(staff_member_id: int, session_id: int) -> None:
    """Recompute and commit in a transaction of its own."""
    begin_write()
    try:
        recompute_for_session(staff_member_id, session_id)
        db.session.commit()
    except Exception:
        db.session.rollback()
        raise


@huey.task(retries=3, retry_delay=2)
def recompute_for_session_task(staff_member_id: int, session_id: int) -> None:
    with app_context():
        recompute_now(staff_member_id, session_id)


def recompute_after_commit(staff_member_id: int, session_id: int) -> None:
    """Hand the recomputation to the worker (called once the change is committed). Inline,
    in an application context of its own (a fresh database session), where jobs run inline
    (tests) or the queue cannot take it (the completion must not be lost)."""
    try:
        if not huey.immediate:
            recompute_for_session_task(staff_member_id, session_id)
            return
    except Exception:
        logger.exception("could not enqueue a completion recomputation; recomputing now")
    with current_app.app_context():
        recompute_now(staff_member_id, session_id)
