"""Read-side questions about enrollments, shared by the catalogue, マイページ and admin pages."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import bindparam, case, func, select
from sqlalchemy.orm import aliased

from lms.courses.models import TrainingSession
from lms.enrollment.models import ACTIVE_STATUSES, CONFIRMED, PENDING, WAITLISTED, Enrollment
from lms.extensions import db
from lms.roster.models import StaffMember


@dataclass(frozen=True)
class MyStatus:
    enrollment: Enrollment
    waitlist_position: int | None  # 1-based, for waitlisted enrollments


@dataclass(frozen=True)
class MyStatusWords:
    status: str
    waitlist_position: int | None


@dataclass(frozen=True)
class PlacesHeld:
    """The active places in some sessions: people (each once), and places by status."""

    people: int = 0
    places: int = 0
    confirmed: int = 0
    waitlisted: int = 0
    pending: int = 0


def places_held(session_ids: list[int]) -> PlacesHeld:
    """Who a cancellation of ``session_ids`` touches (its confirm page says so), in one query."""
    if not session_ids:
        return PlacesHeld()

    def of(status: str):
        return func.coalesce(func.sum(case((Enrollment.status == status, 1), else_=0)), 0)

    row = db.session.execute(
        select(func.count(func.distinct(Enrollment.staff_member_id)), func.count(), of(CONFIRMED), of(WAITLISTED),
               of(PENDING))
        .where(Enrollment.session_id.in_(session_ids), Enrollment.status.in_(ACTIVE_STATUSES))
    ).one()
    return PlacesHeld(*(int(n) for n in row))


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


def waitlist_positions(enrollments: list[Enrollment]) -> dict[int, int]:
    """``waitlist_position`` of the waitlisted ones of ``enrollments`` (by id; the others are
    left out), in one statement per session however many there are (a rush's notices are
    composed by the hundred)."""
    wanted = {e.id for e in enrollments if e.status == WAITLISTED}
    positions: dict[int, int] = {}
    for session_id in sorted({e.session_id for e in enrollments if e.id in wanted}):
        rows = db.session.execute(
            select(Enrollment.id, func.row_number().over(order_by=Enrollment.arrival_seq))
            .where(Enrollment.session_id == session_id, Enrollment.status == WAITLISTED))
        positions.update((enrollment_id, int(n)) for enrollment_id, n in rows if enrollment_id in wanted)
    return positions


def earlier_places(enrollment: Enrollment) -> int:
    """How many places the staff member held in the same session before this one (cancelled or
    refused, then asked for again): each is a generation of their calendar entry."""
    if enrollment.id is None:
        return 0
    return db.session.scalar(
        select(func.count())
        .select_from(Enrollment)
        .where(
            Enrollment.staff_member_id == enrollment.staff_member_id,
            Enrollment.session_id == enrollment.session_id,
            Enrollment.id < enrollment.id,
        )
    ) or 0


def swapped_for(enrollment: Enrollment) -> bool:
    """Whether the enrollment was replaced by another staff member's (差し替え)."""
    return enrollment.id is not None and db.session.scalar(
        select(Enrollment.id).where(Enrollment.replaces_enrollment_id == enrollment.id).limit(1)) is not None


def replaced_name(enrollment: Enrollment) -> str:
    """The name of the staff member whose place a swap's enrollment took ("" for any other)."""
    if enrollment.replaces_enrollment_id is None:
        return ""
    return db.session.scalar(
        select(StaffMember.full_name).join(Enrollment, Enrollment.staff_member_id == StaffMember.id)
        .where(Enrollment.id == enrollment.replaces_enrollment_id)) or ""


# Which place a learner holds in a course counts most: a confirmed seat over a pending one
# over a waitlisted one.
_PLACE_ORDER = {CONFIRMED: 0, PENDING: 1, WAITLISTED: 2}


def my_course_statuses(staff_member_id: int | None, course_ids: list[int]) -> dict[int, MyStatusWords]:
    """The staff member's place in each of ``course_ids`` (the best one if several sessions),
    with the waitlist position — one query for the whole page."""
    if staff_member_id is None or not course_ids:
        return {}
    return _best_places(db.session.execute(_statuses_statement().where(
        Enrollment.staff_member_id == staff_member_id), {"courses": list(course_ids)}))


def my_course_statuses_of_user(user_id: int, course_ids: list[int]) -> dict[int, MyStatusWords]:
    """As ``my_course_statuses`` for the roster entry linked to ``user_id`` (linked at sign-in):
    the catalogue's cards, one statement built once per process."""
    if not course_ids:
        return {}
    return _best_places(db.session.execute(_statuses_of_user_statement(), {"uid": user_id, "courses": list(course_ids)}))


def _best_places(rows) -> dict[int, MyStatusWords]:
    result: dict[int, MyStatusWords] = {}
    for course_id, status, ahead in rows:
        words = MyStatusWords(status, 1 + int(ahead or 0) if status == WAITLISTED else None)
        held = result.get(course_id)
        if held is None or _PLACE_ORDER[status] < _PLACE_ORDER[held.status]:
            result[course_id] = words
    return result


@lru_cache(maxsize=1)
def _statuses_statement():
    """(course, status, how many wait ahead) of the active enrollments in ``:courses`` (an
    expanding parameter); the caller adds whose. Built once: aliasing costs more than running."""
    earlier = aliased(Enrollment)
    position = (
        select(func.count())
        .select_from(earlier)
        .where(
            earlier.session_id == Enrollment.session_id,
            earlier.status == WAITLISTED,
            earlier.arrival_seq < Enrollment.arrival_seq,
        )
        .correlate(Enrollment)
        .scalar_subquery()
    )
    return (
        select(TrainingSession.course_id, Enrollment.status, position)
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .where(
            TrainingSession.course_id.in_(bindparam("courses", expanding=True)),
            Enrollment.status.in_(ACTIVE_STATUSES),
        )
    )


@lru_cache(maxsize=1)
def _statuses_of_user_statement():
    return _statuses_statement().join(StaffMember, StaffMember.id == Enrollment.staff_member_id).where(
        StaffMember.user_id == bindparam("uid"))
