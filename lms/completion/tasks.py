"""Completion jobs (huey): a completion recomputed off the request path.

An activity submitted, passed, confirmed or returned changes its learner's completion; the
request that made the change only hands the recomputation to the worker once it has
committed (``lms.completion.receivers``). The job is idempotent: recomputing twice, or after
the request path recomputed for another reason, gives the same completion."""

from __future__ import annotations

import logging

from flask import current_app
from huey import crontab

from lms.common.database import begin_write
from lms.common.jobs import app_context, huey
from lms.completion.services import (
    completions_due_as_sessions_end,
    not_completed_with_evidence,
    recompute_completion,
    recompute_for_session,
)
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


def _hand_over(task, inline, *args) -> None:
    """Hand ``task(*args)`` to the worker (called once the change is committed). ``inline(*args)``
    instead, in an application context of its own (a fresh database session), where jobs run
    inline (tests) or the queue cannot take it (a completion must not be lost)."""
    try:
        if not huey.immediate:
            task(*args)
            return
    except Exception:
        logger.exception("could not enqueue %s%r; running it now", inline.__name__, args)
    with current_app.app_context():
        inline(*args)


def recompute_after_commit(staff_member_id: int, session_id: int) -> None:
    _hand_over(recompute_for_session_task, recompute_now, staff_member_id, session_id)


# Completions recomputed per transaction when a whole course's are (a requirement dropped).
COURSE_BATCH = 100


@huey.task(retries=3, retry_delay=2)
def recompute_course_task(course_id: int) -> None:
    with app_context():
        recompute_course_now(course_id)


def recompute_course_now(course_id: int) -> int:
    """Recompute the completion of everyone in the course with evidence and no completion
    (``not_completed_with_evidence``), ``COURSE_BATCH`` to a transaction. Returns how many
    were recomputed. Idempotent: a second run finds those completed now gone from the list."""
    pairs = not_completed_with_evidence(course_id)
    return _recompute_in_batches([(staff_member_id, course_id, year) for staff_member_id, year in pairs])


def _recompute_in_batches(due: list[tuple[int, int, int]]) -> int:
    """Recompute each (staff member, course, fiscal year), ``COURSE_BATCH`` to a write
    transaction of its own (the read that found them ends first); how many."""
    db.session.rollback()
    for first in range(0, len(due), COURSE_BATCH):
        begin_write()
        try:
            for staff_member_id, course_id, fiscal_year in due[first:first + COURSE_BATCH]:
                recompute_completion(staff_member_id, course_id, fiscal_year)
            db.session.commit()
        except Exception:
            db.session.rollback()
            raise
    return len(due)


def recompute_course_after_commit(course_id: int) -> None:
    _hand_over(recompute_course_task, recompute_course_now, course_id)


@huey.periodic_task(crontab(minute="*/5"))
def complete_ended_sessions_periodically() -> int:
    """Every 5 minutes: completions of attendance recorded before its session ended (a roll
    call at reception), granted once the session is over."""
    with app_context():
        return complete_ended_sessions()


def complete_ended_sessions() -> int:
    """Recompute ``completions_due_as_sessions_end``, ``COURSE_BATCH`` to a transaction; how many."""
    done = _recompute_in_batches(completions_due_as_sessions_end())
    if done:
        logger.info("completion: %s completion(s) recomputed as their sessions ended", done)
    return done
