"""Helpers for the enrollment tests."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lms.courses.models import SessionQuota, TrainingSession
from lms.enrollment.models import ACTIVE_STATUSES, CONFIRMED, WAITLISTED, Enrollment
from lms.extensions import db
from tests import factories


@pytest.fixture
def learner(db):
    """``learner("131016")`` → (user, staff member) of that municipality."""

    def _make(code: str = "131016", **kw):
        user = factories.make_user("learner", code, **kw)
        return user, user.staff_member

    return _make


def assert_counters_consistent(session_id: int) -> None:
    """The stored counters equal the confirmed rows, within capacity and quotas."""
    db.session.rollback()  # a fresh snapshot: the server committed in other connections
    db.session.expire_all()  # (objects a service kept loaded after its commit included)
    session = db.session.get(TrainingSession, session_id)
    confirmed = db.session.scalar(
        select(func.count()).select_from(Enrollment).where(
            Enrollment.session_id == session_id, Enrollment.status == CONFIRMED
        )
    )
    assert session.confirmed_count == confirmed
    assert confirmed <= session.capacity
    waitlisted = db.session.scalar(
        select(func.count()).select_from(Enrollment).where(
            Enrollment.session_id == session_id, Enrollment.status == WAITLISTED
        )
    )
    assert session.waitlisted_count == waitlisted  # kept by the database's triggers
    for quota in db.session.scalars(select(SessionQuota).where(SessionQuota.session_id == session_id)):
        used = db.session.scalar(
            select(func.count()).select_from(Enrollment).where(
                Enrollment.session_id == session_id,
                Enrollment.status == CONFIRMED,
                Enrollment.municipality_id == quota.municipality_id,
            )
        )
        assert quota.confirmed_count == used
        assert used <= quota.seats
    doubled = db.session.execute(
        select(Enrollment.staff_member_id, func.count())
        .where(Enrollment.session_id == session_id, Enrollment.status.in_(ACTIVE_STATUSES))
        .group_by(Enrollment.staff_member_id)
        .having(func.count() > 1)
    ).all()
    assert doubled == []


@pytest.fixture(autouse=True)
def _summaries_follow(summaries_follow):
    """Every test here leaves the dashboard summaries equal to a fresh aggregate."""
