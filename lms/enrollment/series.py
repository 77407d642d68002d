"""連続講座 (a series of dated parts): one capacity and one decision for the whole series.

A series is a set of sessions of one course that name their first session in
``TrainingSession.series_id`` (the first names itself). Learners request, are approved,
waitlisted and cancelled on the first session only; a confirmed place there is mirrored as
a confirmed enrollment (source ``SERIES``) in every other part, in the same transaction under
the first session's lock (``services``: the operations call ``follow`` through their one
publishing step). So each part has its own roster, Teams meeting, calendar invitation,
reminders and attendance (Teams import, roll call, QR) exactly as any session; and leaving
the series (cancellation, a swap, the first session called off) leaves every part.

A make-up part (補講) is a session of the series with ``makeup_for_id``: the part it stands in
for. It has its own capacity; only learners with a place in the series may take it, and
attending it counts for the part it replaces. Completion counts the parts attended
(lms.completion.services: the course's ``series_threshold_pct``, 75% by default); the parts
attended and missed are shown to the learner and the training office (lms.attendance.series).
"""

from __future__ import annotations

from sqlalchemy import select

from lms.courses.models import TrainingSession
from lms.enrollment.models import ACTIVE_STATUSES, CONFIRMED, Enrollment
from lms.extensions import db


def is_first(session: TrainingSession) -> bool:
    """The session is the first of a series (where learners enrol for all of it)."""
    return session.series_id is not None and session.series_id == session.id


def is_later_part(session: TrainingSession) -> bool:
    """A part after the first (not a make-up): it follows the first's decisions."""
    return session.series_id is not None and session.series_id != session.id and session.makeup_for_id is None


def parts(first_id: int, *, with_makeups: bool = False) -> list[TrainingSession]:
    """The series' sessions in date order (the first included; not cancelled ones' order kept)."""
    query = select(TrainingSession).where(TrainingSession.series_id == first_id)
    if not with_makeups:
        query = query.where(TrainingSession.makeup_for_id.is_(None))
    return list(db.session.scalars(query.order_by(TrainingSession.starts_at, TrainingSession.id)))


def places_held(first_ids: set[int], staff_member_id: int) -> set[int]:
    """Which of the series (first session ids) the staff member has a confirmed place in."""
    if not first_ids:
        return set()
    return set(db.session.scalars(select(Enrollment.session_id).where(
        Enrollment.session_id.in_(first_ids), Enrollment.staff_member_id == staff_member_id,
        Enrollment.status == CONFIRMED)))


def holds_place(first_id: int, staff_member_id: int) -> bool:
    """The staff member has a confirmed place in the series."""
    return db.session.scalar(select(Enrollment.id).where(
        Enrollment.session_id == first_id, Enrollment.staff_member_id == staff_member_id,
        Enrollment.status == CONFIRMED).limit(1)) is not None


def makeup_places(first_id: int, staff_member_id: int) -> list[Enrollment]:
    """The staff member's active enrollments (confirmed or waitlisted) in the series' make-up
    parts, in date order: they go with the place in the series."""
    return list(db.session.scalars(
        select(Enrollment).join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .where(TrainingSession.series_id == first_id, TrainingSession.makeup_for_id.is_not(None),
               Enrollment.staff_member_id == staff_member_id, Enrollment.status.in_(ACTIVE_STATUSES))
        .order_by(TrainingSession.starts_at, Enrollment.id)))
