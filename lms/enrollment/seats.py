"""The enrollment hot path's statements: the row locks, the new arrival and the seat counters.

A popular course's opening minute is hundreds of requests queueing on one session row.
What decides a seat happens here, in as few statements as the rules allow, all through
SQLAlchemy's public API (docs/enrollment.md lists them in order, with their locks):

* ``lock_session`` / ``lock_session_for``: ``SELECT … FOR UPDATE`` on the session row
  (PostgreSQL; on SQLite ``begin_write`` has taken the database's write lock already);
  ``lock_session_for`` reads the staff member's clashes with the session in the same
  statement;
* ``lock_quota`` and ``lock_staff``: the municipality's quota row and staff member rows;
* ``add_enrollment``: the arrival's number (one more than the session's latest, read under
  the session's lock) and one INSERT;
* ``count_seats``: one ``UPDATE … SET confirmed_count = confirmed_count ± 1`` per counter;
  the CHECK constraints on both counters refuse an overbooking even if a rule were wrong.

``training_session.waitlisted_count`` is kept by database triggers (lms/enrollment/triggers.py)
and is the one source for a waitlist's length.
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import Integer, Select, bindparam, func, select
from sqlalchemy.orm import aliased, joinedload, load_only, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from lms.common.after_commit import on_rollback
from lms.common.database import begin_write, is_sqlite
from lms.common.errors import NotFound
from lms.common.timeutil import utcnow
from lms.courses.models import SCHEDULED, Course, SessionQuota, TrainingSession
from lms.enrollment.models import ACTIVE_STATUSES, CONFIRMED, PENDING, RETURNED_STEP, WAITLISTED, Enrollment
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.roster.models import StaffMember


def _for_update(stmt: Select, *of) -> Select:
    # SQLite has no row locks: BEGIN IMMEDIATE (begin_write) serialises the writers instead.
    if is_sqlite():
        return stmt
    return stmt.with_for_update(of=of or None)


class _Statements:
    """The hot path's statements, built once per database dialect with bound parameters
    (building a statement costs more than running it): each is executed with its values."""

    def __init__(self) -> None:
        sessions, enrollments = TrainingSession.__table__, Enrollment.__table__
        mine, other = enrollments.alias("mine"), sessions.alias("other")
        # The course's columns that the rules and the answer read (its texts, search words
        # and settings stay unloaded: a long description is not read again at every arrival).
        with_course = joinedload(TrainingSession.course, innerjoin=True).load_only(
            Course.id, Course.title, Course.status, Course.eligible_all, Course.requires_approval,
            Course.supervisor_approval, Course.selection, Course.owner_id, Course.has_prerequisites,
            # the audience rules (lms.courses.audience): read at every arrival
            Course.audience_grades, Course.audience_titles, Course.min_years_of_service,
            Course.max_years_of_service, Course.new_hires_only)
        self.lock_session = _for_update(
            select(TrainingSession).where(TrainingSession.id == bindparam("sid")).options(with_course),
            TrainingSession,
        ).execution_options(populate_existing=True)
        staff = bindparam("staff", type_=Integer)
        same = (
            select(mine.c.id)
            .where(mine.c.session_id == TrainingSession.id, mine.c.staff_member_id == staff,
                   mine.c.status.in_(ACTIVE_STATUSES))
            .limit(1)
            .scalar_subquery()
        )
        overlapping = (
            select(mine.c.id)
            .join(other, other.c.id == mine.c.session_id)
            .where(mine.c.staff_member_id == staff, mine.c.session_id != TrainingSession.id,
                   mine.c.status == CONFIRMED, other.c.status == SCHEDULED,
                   other.c.starts_at < TrainingSession.ends_at, other.c.ends_at > TrainingSession.starts_at)
            .limit(1)
            .scalar_subquery()
        )
        # An arrival reads the session's schedule, window and counters (and what the Teams
        # receiver looks at when the attendees change); its Graph bookkeeping, check-in
        # token and the like stay unloaded (read on first use, if ever).
        arrival_columns = load_only(
            TrainingSession.id, TrainingSession.course_id, TrainingSession.title, TrainingSession.starts_at,
            TrainingSession.ends_at, TrainingSession.delivery, TrainingSession.capacity,
            TrainingSession.confirmed_count, TrainingSession.waitlisted_count, TrainingSession.enroll_opens_at,
            TrainingSession.enroll_closes_at, TrainingSession.cancel_deadline, TrainingSession.status,
            TrainingSession.revision, TrainingSession.graph_event_id, TrainingSession.updated_at,
            TrainingSession.series_id, TrainingSession.makeup_for_id)
        self.lock_session_for = _for_update(
            select(TrainingSession, same, overlapping).where(TrainingSession.id == bindparam("sid"))
            .options(arrival_columns, with_course),
            TrainingSession,
        ).execution_options(populate_existing=True)
        self.lock_quota = _for_update(
            select(SessionQuota).where(SessionQuota.session_id == bindparam("sid"),
                                       SessionQuota.municipality_id == bindparam("mid"))
        ).execution_options(populate_existing=True)
        self.lock_quotas = _for_update(
            select(SessionQuota).where(SessionQuota.session_id == bindparam("sid"))
        ).execution_options(populate_existing=True)
        self.lock_staff = _for_update(
            select(StaffMember).where(StaffMember.id == bindparam("id"))).execution_options(populate_existing=True)
        # A learner's own arrival reads who they are, where they work and where to write to.
        self.lock_staff_of_user = _for_update(
            select(StaffMember).where(StaffMember.user_id == bindparam("uid")).options(load_only(
                StaffMember.id, StaffMember.municipality_id, StaffMember.user_id, StaffMember.status,
                StaffMember.left_on, StaffMember.full_name, StaffMember.email, StaffMember.sign_in_name))
        ).execution_options(populate_existing=True)
        self.active_enrollment = select(Enrollment).where(
            Enrollment.session_id == bindparam("sid"), Enrollment.staff_member_id == bindparam("staff"),
            Enrollment.status.in_(ACTIVE_STATUSES))
        self.overlapping_confirmed = (
            select(Enrollment)
            .join(other, other.c.id == Enrollment.session_id)
            .where(Enrollment.staff_member_id == bindparam("staff"), Enrollment.status == CONFIRMED,
                   Enrollment.session_id != bindparam("sid"), other.c.status == SCHEDULED,
                   other.c.starts_at < bindparam("ends"), other.c.ends_at > bindparam("starts"))
            .limit(1)
        )
        self.waitlisted = (
            select(Enrollment)
            .where(Enrollment.session_id == bindparam("sid"), Enrollment.status == WAITLISTED)
            .order_by(Enrollment.arrival_seq)
            .execution_options(populate_existing=True)
        )
        earlier = enrollments.alias("earlier")
        # A new arrival is numbered by its INSERT: one more than the session's latest (the
        # caller holds the session's lock, so arrivals are numbered one at a time).
        self.insert_arrival = (
            enrollments.insert()
            .values(arrival_seq=select(func.coalesce(func.max(earlier.c.arrival_seq), 0) + 1)
                    .where(earlier.c.session_id == bindparam("arrival_session")).scalar_subquery())
            .returning(enrollments.c.id, enrollments.c.arrival_seq)
        )
        self.insert = enrollments.insert().returning(enrollments.c.id)
        self.count_session_seats = (
            sessions.update()
            .where(sessions.c.id == bindparam("sid"))
            .values(confirmed_count=sessions.c.confirmed_count + bindparam("delta"), updated_at=bindparam("now"))
            .returning(sessions.c.confirmed_count, sessions.c.updated_at)
        )
        quotas = SessionQuota.__table__
        self.count_quota_seats = (
            quotas.update()
            .where(quotas.c.id == bindparam("qid"))
            .values(confirmed_count=quotas.c.confirmed_count + bindparam("delta"))
            .returning(quotas.c.confirmed_count)
        )


_STATEMENTS: dict[str, _Statements] = {}


def _statements() -> _Statements:
    dialect = db.engine.dialect.name  # SQLite has no FOR UPDATE: the statements differ
    statements = _STATEMENTS.get(dialect)
    if statements is None:
        statements = _STATEMENTS[dialect] = _Statements()
    return statements


def lock_session(session_id: int) -> TrainingSession:
    """Start the write transaction and lock the session row; loaded fresh, with its course."""
    begin_write()
    session = db.session.scalar(_statements().lock_session, {"sid": session_id})
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
    row = db.session.execute(_statements().lock_session_for, {"sid": session_id, "staff": staff_member_id}).first()
    if row is None:
        raise NotFound(_("研修回が見つかりません。"))
    return row[0], row[1], row[2]


def lock_quota(session_id: int, municipality_id: int) -> SessionQuota | None:
    """The municipality's quota row of the session (locked), or None: no quota of its own."""
    return db.session.scalar(_statements().lock_quota, {"sid": session_id, "mid": municipality_id})


def lock_quotas(session_id: int) -> list[SessionQuota]:
    """Every quota row of the session (locked)."""
    return list(db.session.scalars(_statements().lock_quotas, {"sid": session_id}))


def lock_staff(staff_member_id: int) -> StaffMember:
    member = db.session.scalar(_statements().lock_staff, {"id": staff_member_id})
    if member is None:
        raise NotFound(_("職員が見つかりません。"))
    return member


def lock_staff_of_user(user_id: int) -> StaffMember | None:
    """The roster entry linked to the user (locked), or None."""
    return db.session.scalar(_statements().lock_staff_of_user, {"uid": user_id})


def active_enrollment(session_id: int, staff_member_id: int) -> Enrollment | None:
    return db.session.scalar(_statements().active_enrollment, {"sid": session_id, "staff": staff_member_id})


def overlapping_confirmed(session: TrainingSession, staff_member_id: int) -> Enrollment | None:
    """A confirmed enrollment of the staff member in another scheduled session at the same time."""
    return db.session.scalar(_statements().overlapping_confirmed, {
        "staff": staff_member_id, "sid": session.id, "starts": session.starts_at, "ends": session.ends_at})


def confirmed_clashing_at(session_id: int, starts_at: datetime, ends_at: datetime) -> list[str]:
    """The session's confirmed enrollees who hold a confirmed place in another scheduled
    session overlapping ``starts_at``–``ends_at`` (the session's would-be times), each as the
    organiser can tell them apart: name (municipality, 職員番号)."""
    mine = aliased(Enrollment)
    other = aliased(TrainingSession)
    rows = db.session.execute(
        select(StaffMember.id, StaffMember.full_name, StaffMember.employee_number, Municipality.name).distinct()
        .join(Municipality, Municipality.id == StaffMember.municipality_id)
        .join(mine, mine.staff_member_id == StaffMember.id)
        .join(Enrollment, Enrollment.staff_member_id == StaffMember.id)
        .join(other, other.id == Enrollment.session_id)
        .where(mine.session_id == session_id, mine.status == CONFIRMED, Enrollment.status == CONFIRMED,
               Enrollment.session_id != session_id, other.status == SCHEDULED,
               other.starts_at < ends_at, other.ends_at > starts_at)
        .order_by(StaffMember.full_name, StaffMember.id))
    return [_("%(name)s（%(organisation)s・%(number)s）", name=name, organisation=org, number=number) if number
            else _("%(name)s（%(organisation)s）", name=name, organisation=org)
            for _id, name, number, org in rows]


def waitlisted(session_id: int) -> list[Enrollment]:
    """The session's waitlist in order of arrival (fresh)."""
    return list(db.session.scalars(_statements().waitlisted, {"sid": session_id}))


def lock_later_parts(first_id: int) -> list[TrainingSession]:
    """The later parts of a 連続講座 (not the first, not make-ups), locked, in date order. The
    caller holds the first's lock: every change of a part's places goes through it."""
    return list(db.session.scalars(_for_update(
        select(TrainingSession).where(TrainingSession.series_id == first_id, TrainingSession.id != first_id,
                                      TrainingSession.makeup_for_id.is_(None))
        .order_by(TrainingSession.starts_at, TrainingSession.id), TrainingSession,
    ).execution_options(populate_existing=True)))


def pending_in_turn(session_id: int) -> list[tuple[int, int]]:
    """(arrival_seq, municipality_id) of the session's requests still passing their approval
    steps (a request returned to its learner is not: it waits for them), in arrival order.
    They keep their turn: a later request decided first does not take the seat they will
    need (``rules.seat_free``'s ``ahead``)."""
    return [(int(seq), int(mid)) for seq, mid in db.session.execute(
        select(Enrollment.arrival_seq, Enrollment.municipality_id)
        .where(Enrollment.session_id == session_id, Enrollment.status == PENDING,
               Enrollment.approval_step.is_distinct_from(RETURNED_STEP))
        .order_by(Enrollment.arrival_seq))]


def add_enrollment(session: TrainingSession, member: StaffMember, *, status: str, source: str, actor_id: int | None,
                   now: datetime, arrival_seq: int | None = None,
                   replaces: Enrollment | None = None) -> Enrollment:
    """Insert the enrollment with one INSERT … RETURNING (no unit-of-work flush) and attach
    it to the database session as the persistent row it is. A new arrival is numbered by the
    INSERT itself; a swap keeps the seat's ``arrival_seq``. The change is published by the
    caller (``enrollment_status_changed``): whoever follows enrollments subscribes to that."""
    values = {
        "session_id": session.id,
        "staff_member_id": member.id,
        "municipality_id": member.municipality_id,
        "status": status,
        "source": source,
        "requested_at": now,
        "requested_by_id": actor_id,
        "confirmed_at": now if status == CONFIRMED else None,
        "waitlisted_at": now if status == WAITLISTED else None,
        "decided_at": None,
        "cancelled_at": None,
        "late_cancellation": False,
        "reason": "",
        "decided_by_id": None,
        "cancelled_by_id": None,
        "replaces_enrollment_id": replaces.id if replaces is not None else None,
        "updated_at": now,
    }
    db.session.flush()  # what is pending (a swap's cancelled row) first
    connection = db.session.connection()
    if arrival_seq is None:
        new_id, values["arrival_seq"] = connection.execute(
            _statements().insert_arrival, {**values, "arrival_session": session.id}).one()
    else:
        values["arrival_seq"] = arrival_seq
        new_id = connection.execute(_statements().insert, values).scalar_one()
    enrollment = Enrollment(id=new_id, **values)
    make_transient_to_detached(enrollment)
    db.session.add(enrollment)
    # Attached as persistent, it would outlive a rollback (only objects added as new are
    # expunged then) and stop a retried transaction from attaching its own row of that id.
    on_rollback(lambda: _forget(enrollment))
    # Its session and staff member are the rows held locked: no lazy load to reach them (and
    # they stay in the identity map, where the summaries' receiver of the event finds the session).
    set_committed_value(enrollment, "session", session)
    set_committed_value(enrollment, "staff_member", member)
    return enrollment


def _forget(enrollment: Enrollment) -> None:
    """The row of a rolled-back INSERT leaves the database session with it."""
    if enrollment in db.session:
        db.session.expunge(enrollment)


def count_quota_holders(session: TrainingSession, quotas: list[SessionQuota]) -> None:
    """Set each of ``quotas`` (rows new to the session) to the number of its municipality's
    people confirmed in the session now (one grouped count; the caller holds the session's lock)."""
    counts = {int(mid): int(n) for mid, n in db.session.execute(
        select(Enrollment.municipality_id, func.count())
        .where(Enrollment.session_id == session.id, Enrollment.status == CONFIRMED,
               Enrollment.municipality_id.in_([q.municipality_id for q in quotas]))
        .group_by(Enrollment.municipality_id))}
    for quota in quotas:
        quota.confirmed_count = counts.get(quota.municipality_id, 0)


def count_seats(session: TrainingSession, quota: SessionQuota | None, delta: int) -> None:
    """Move the confirmed counters by ``delta`` with one UPDATE each (their CHECK
    constraints refuse an overbooking) and keep the loaded rows in step."""
    db.session.flush()  # pending changes (a new capacity, say) first: the constraints see them
    statements = _statements()
    connection = db.session.connection()
    count, updated = connection.execute(
        statements.count_session_seats, {"sid": session.id, "delta": delta, "now": utcnow()}).one()
    set_committed_value(session, "confirmed_count", count)
    set_committed_value(session, "updated_at", updated)
    if quota is not None:
        count = connection.execute(statements.count_quota_seats, {"qid": quota.id, "delta": delta}).scalar_one()
        set_committed_value(quota, "confirmed_count", count)


def note_waitlisted(session: TrainingSession, delta: int = 1) -> None:
    """The triggers have moved ``waitlisted_count`` in the database; the loaded row follows."""
    set_committed_value(session, "waitlisted_count", session.waitlisted_count + delta)
