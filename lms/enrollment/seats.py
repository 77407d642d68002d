"""The enrollment hot path's statements: the row locks, the new arrival and the seat counters.

A popular course's opening minute is hundreds of requests queueing on one session row.
What decides a seat happens here, in as few statements as the rules allow, all through
SQLAlchemy's public API (docs/enrollment.md lists them in order, with their locks):

* ``lock_session`` / ``lock_session_for``: ``SELECT … FOR UPDATE`` on the session row
  (PostgreSQL; on SQLite ``begin_write`` has taken the database's write lock already);
  ``lock_session_for`` reads the staff member's clashes with the session in the same
  statement;
* ``lock_quota`` and ``lock_staff``: the municipality's quota row and staff member rows;
* ``add_enrollment``: one INSERT, numbered one more than the session's latest arrival by
  the INSERT itself (the caller holds the session's lock);
* ``count_seats``: one ``UPDATE … SET confirmed_count = confirmed_count ± 1`` per counter;
  the CHECK constraints on both counters refuse an overbooking even if a rule were wrong.

``training_session.waitlisted_count`` is kept by database triggers (lms/enrollment/triggers.py)
and is the one source for a waitlist's length.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import Select, func, select
from sqlalchemy.orm import aliased, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from lms.common.database import begin_write, is_sqlite
from lms.common.errors import NotFound
from lms.common.timeutil import utcnow
from lms.courses.models import SCHEDULED, SessionQuota, TrainingSession
from lms.enrollment.models import ACTIVE_STATUSES, CONFIRMED, WAITLISTED, Enrollment
from lms.extensions import db
from lms.roster.models import StaffMember


def _for_update(stmt: Select, *of) -> Select:
    # SQLite has no row locks: BEGIN IMMEDIATE (begin_write) serialises the writers instead.
    if is_sqlite():
        return stmt
    return stmt.with_for_update(of=of or None)


def lock_session(session_id: int) -> TrainingSession:
    """Start the write transaction and lock the session row; loaded fresh, with its course."""
    begin_write()
    session = db.session.scalar(
        _for_update(
            select(TrainingSession)
            .where(TrainingSession.id == session_id)
            .options(joinedload(TrainingSession.course, innerjoin=True)),
            TrainingSession,
        ).execution_options(populate_existing=True)
    )
    if session is None:
        raise NotFound(_("研修回が見つかりません。"))
    return session


def lock_session_for(session_id: int, staff_member_id: int) -> tuple[TrainingSession, int | None, int | None]:
    """Lock the session row (as ``lock_session``, in a transaction already begun) and read,
    in the same statement, the staff member's active enrollment in it and a confirmed one
    of theirs in another scheduled session at the same time.

    The clashes are read as committed when the statement began. That is enough: whatever
    adds to the staff member's enrollments holds their row lock, which the caller took first.
    Returns ``(session, id of the active enrollment or None, id of the overlapping one or None)``."""
    mine = aliased(Enrollment)
    other = aliased(TrainingSession)
    same = (
        select(mine.id)
        .where(mine.session_id == TrainingSession.id, mine.staff_member_id == staff_member_id,
               mine.status.in_(ACTIVE_STATUSES))
        .limit(1)
        .scalar_subquery()
    )
    overlapping = (
        select(mine.id)
        .join(other, other.id == mine.session_id)
        .where(mine.staff_member_id == staff_member_id, mine.session_id != TrainingSession.id,
               mine.status == CONFIRMED, other.status == SCHEDULED,
               other.starts_at < TrainingSession.ends_at, other.ends_at > TrainingSession.starts_at)
        .limit(1)
        .scalar_subquery()
    )
    row = db.session.execute(
        _for_update(
            select(TrainingSession, same, overlapping)
            .where(TrainingSession.id == session_id)
            .options(joinedload(TrainingSession.course, innerjoin=True)),
            TrainingSession,
        ).execution_options(populate_existing=True)
    ).first()
    if row is None:
        raise NotFound(_("研修回が見つかりません。"))
    return row[0], row[1], row[2]


def lock_quota(session_id: int, municipality_id: int) -> SessionQuota | None:
    """The municipality's quota row of the session (locked), or None: no quota of its own."""
    return db.session.scalar(
        _for_update(
            select(SessionQuota).where(SessionQuota.session_id == session_id,
                                       SessionQuota.municipality_id == municipality_id)
        ).execution_options(populate_existing=True)
    )


def lock_quotas(session_id: int) -> list[SessionQuota]:
    """Every quota row of the session (locked)."""
    return list(db.session.scalars(
        _for_update(select(SessionQuota).where(SessionQuota.session_id == session_id)).execution_options(
            populate_existing=True)
    ))


def lock_staff(staff_member_id: int) -> StaffMember:
    member = db.session.scalar(
        _for_update(select(StaffMember).where(StaffMember.id == staff_member_id)).execution_options(
            populate_existing=True)
    )
    if member is None:
        raise NotFound(_("職員が見つかりません。"))
    return member


def lock_staff_of_user(user_id: int) -> StaffMember | None:
    """The roster entry linked to the user (locked), or None."""
    return db.session.scalar(
        _for_update(select(StaffMember).where(StaffMember.user_id == user_id)).execution_options(
            populate_existing=True)
    )


def active_enrollment(session_id: int, staff_member_id: int) -> Enrollment | None:
    return db.session.scalar(
        select(Enrollment).where(Enrollment.session_id == session_id, Enrollment.staff_member_id == staff_member_id,
                                 Enrollment.status.in_(ACTIVE_STATUSES))
    )


def overlapping_confirmed(session: TrainingSession, staff_member_id: int) -> Enrollment | None:
    """A confirmed enrollment of the staff member in another scheduled session at the same time."""
    return db.session.scalar(
        select(Enrollment)
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .where(
            Enrollment.staff_member_id == staff_member_id,
            Enrollment.status == CONFIRMED,
            Enrollment.session_id != session.id,
            TrainingSession.status == SCHEDULED,
            TrainingSession.starts_at < session.ends_at,
            TrainingSession.ends_at > session.starts_at,
        )
        .limit(1)
    )


def waitlisted(session_id: int) -> list[Enrollment]:
    """The session's waitlist in order of arrival (fresh)."""
    return list(db.session.scalars(
        select(Enrollment)
        .where(Enrollment.session_id == session_id, Enrollment.status == WAITLISTED)
        .order_by(Enrollment.arrival_seq)
        .execution_options(populate_existing=True)
    ))


def add_enrollment(session: TrainingSession, member: StaffMember, *, status: str, source: str, actor_id: int | None,
                   now: datetime, arrival_seq: int | None = None,
                   replaces: Enrollment | None = None) -> Enrollment:
    """Insert the enrollment (flushed). A new arrival is numbered one more than the
    session's latest by the INSERT itself; a swap keeps the seat's ``arrival_seq``."""
    if arrival_seq is None:
        earlier = aliased(Enrollment)
        arrival = (
            select(func.coalesce(func.max(earlier.arrival_seq), 0) + 1)
            .where(earlier.session_id == session.id)
            .scalar_subquery()
        )
    enrollment = Enrollment(
        session_id=session.id,
        staff_member_id=member.id,
        municipality_id=member.municipality_id,
        status=status,
        source=source,
        arrival_seq=arrival if arrival_seq is None else arrival_seq,
        requested_at=now,
        requested_by_id=actor_id,
        confirmed_at=now if status == CONFIRMED else None,
        waitlisted_at=now if status == WAITLISTED else None,
        replaces_enrollment_id=replaces.id if replaces is not None else None,
        updated_at=now,
    )
    db.session.add(enrollment)
    db.session.flush()
    return enrollment


def count_seats(session: TrainingSession, quota: SessionQuota | None, delta: int) -> None:
    """Move the confirmed counters by ``delta`` with one UPDATE each (their CHECK
    constraints refuse an overbooking) and keep the loaded rows in step."""
    db.session.flush()  # pending changes (a new capacity, say) first: the constraints see them
    sessions = TrainingSession.__table__
    count, updated = db.session.execute(
        sessions.update()
        .where(sessions.c.id == session.id)
        .values(confirmed_count=sessions.c.confirmed_count + delta, updated_at=utcnow())
        .returning(sessions.c.confirmed_count, sessions.c.updated_at)
    ).one()
    set_committed_value(session, "confirmed_count", count)
    set_committed_value(session, "updated_at", updated)
    if quota is not None:
        quotas = SessionQuota.__table__
        count = db.session.execute(
            quotas.update()
            .where(quotas.c.id == quota.id)
            .values(confirmed_count=quotas.c.confirmed_count + delta)
            .returning(quotas.c.confirmed_count)
        ).scalar_one()
        set_committed_value(quota, "confirmed_count", count)


def note_waitlisted(session: TrainingSession, delta: int = 1) -> None:
    """The triggers have moved ``waitlisted_count`` in the database; the loaded row follows."""
    set_committed_value(session, "waitlisted_count", session.waitlisted_count + delta)
