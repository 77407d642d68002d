"""Read-side questions about enrollments, shared by the catalogue, マイページ and admin pages."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select

from lms.enrollment.models import ACTIVE_STATUSES, WAITLISTED, Enrollment
from lms.extensions import db


@dataclass(frozen=True)
class MyStatus:
    enrollment: Enrollment
    waitlist_position: int | None  # 1-based, for waitlisted enrollments


def my_statuses(staff_member_id: int | None, session_ids: list[int]) -> dict[int, MyStatus]:
    """The active enrollment (if any) of a staff member in each session, with waitlist position."""
    if staff_member_id is None or not session_ids:
        return {}
    mine = db.session.scalars(
        select(Enrollment).where(
            Enrollment.staff_member_id == staff_member_id,
            Enrollment.session_id.in_(session_ids),
            Enrollment.status.in_(ACTIVE_STATUSES),
        )
    ).all()
    result = {}
    for enrollment in mine:
        position = None
        if enrollment.status == WAITLISTED:
            position = waitlist_position(enrollment)
        result[enrollment.session_id] = MyStatus(enrollment, position)
    return result


def waitlist_position(enrollment: Enrollment) -> int:
    """1 + the number of people waitlisted for the same session who arrived earlier."""
    # A plain (not aliased) statement: SQLAlchemy caches its compiled form, which matters
    # when thousands of learners are told their position at once.
    return 1 + (db.session.scalar(
        select(func.count())
        .select_from(Enrollment)
        .where(
            Enrollment.session_id == enrollment.session_id,
            Enrollment.status == WAITLISTED,
            Enrollment.arrival_seq < enrollment.arrival_seq,
        )
    ) or 0)
