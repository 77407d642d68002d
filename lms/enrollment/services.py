"""Enrollment rules: enroll, cancel, promote, approve, reject, nominate, swap.

Every public function here is ONE write transaction that it commits itself, so that a
lock timeout, deadlock or serialization failure can be retried as a whole:

* the session row is locked before anything about its seats is decided (``SELECT … FOR
  UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite, which serialises writers), then
  the quota row; the staff member row(s) concerned are locked too (a learner's own
  enrollment locks their row first and makes the checks that depend only on their own
  enrollments before queueing for the session's lock, which is then held as briefly as
  the rules allow);
* ``TrainingSession.confirmed_count`` and ``SessionQuota.confirmed_count`` change in the
  same transaction as every status change; their CHECK constraints make overbooking
  impossible even if a rule here were wrong;
* notifications are queued (outbox) and signals sent inside the transaction, so they are
  committed together with the change, or not at all.

Call these with no pending changes in the database session (they start their own write
transaction). A request that still fails after the retries raises ``EnrollmentBusy``
with a Japanese message; nothing is half-done.

Quota (割当人数) semantics: a municipality that has a SessionQuota row can hold at most
``seats`` confirmed seats; municipalities without a row share the capacity without a cap
of their own; the total never exceeds ``capacity``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import bindparam, func, select, true
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from lms.audit.services import record_action
from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, TRAINER
from lms.common import signals
from lms.common.database import begin_write, commit, defer, is_retryable, is_sqlite, run_batch
from lms.common.errors import Conflict, DomainError, InvalidInput, NotAllowed, NotFound
from lms.common.timeutil import as_utc, utcnow
from lms.completion.summary import note_inserted
from lms.courses.models import PUBLISHED, SCHEDULED, SessionQuota, TrainingSession
from lms.enrollment.models import (
    ACTIVE_STATUSES,
    CANCELLED,
    CONFIRMED,
    NOMINATION,
    PENDING,
    REJECTED,
    SELF,
    SOURCES,
    SWAP,
    WAITLISTED,
    Enrollment,
)
from lms.extensions import db
from lms.roster.models import StaffMember

log = logging.getLogger(__name__)

__all__ = [
    "AlreadyEnrolled",
    "EnrollmentBusy",
    "EnrollmentClosed",
    "EnrollmentError",
    "NotAllowed",
    "NotEligible",
    "NotFound",
    "InvalidInput",
    "NoRosterEntry",
    "NominationResult",
    "OverlapsConfirmed",
    "SessionStarted",
    "approve_enrollment",
    "can_cancel",
    "cancel_enrollment",
    "cancel_session_enrollments",
    "enroll",
    "enroll_self",
    "lock_session",
    "nominate",
    "promote_waitlist",
    "reject_enrollment",
    "swap_nominee",
]


# ---------------------------------------------------------------- exceptions


class EnrollmentError(DomainError):
    """Base of the enrollment rules' refusals (message is user-facing Japanese)."""


class EnrollmentClosed(EnrollmentError):
    """Outside the enrollment window, or the session/course is not open."""


class SessionStarted(EnrollmentError):
    """The session has already started (or ended)."""


class NotEligible(EnrollmentError):
    """The staff member's municipality may not take this course, or the staff member left."""


class AlreadyEnrolled(EnrollmentError, Conflict):
    """The staff member already holds an active enrollment (``.enrollment``)."""

    def __init__(self, message: str = "", enrollment: Enrollment | None = None, **context):
        super().__init__(message, **context)
        self.enrollment = enrollment


class OverlapsConfirmed(EnrollmentError, Conflict):
    """The staff member is confirmed in another session at the same time."""


class EnrollmentBusy(EnrollmentError, Conflict):
    """The database stayed locked through every retry; nothing was changed."""


# ---------------------------------------------------------------- transactions and locks

_ATTEMPTS = 6


def _atomic(func, *args, _keep_loaded: bool = False, **kwargs):
    """Run ``func`` as one transaction and commit; retry it whole on a lock timeout,
    deadlock, serialization failure or a unique-index race. Domain errors roll back and
    propagate unchanged.

    ``_keep_loaded``: the returned objects keep the values just committed instead of being
    reloaded on first access (saves a round trip on the hot enroll path)."""
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            result = func(*args, **kwargs)
            session = db.session()
            if _keep_loaded:
                session.expire_on_commit = False
            try:
                commit(session)  # the deferred writes and the COMMIT in one round trip
            finally:
                session.expire_on_commit = True
            return result
        except DomainError:
            db.session.rollback()
            raise
        except Exception as exc:
            db.session.rollback()
            retry = is_retryable(exc) or isinstance(exc, IntegrityError)
            if not retry:
                raise
            if attempt == _ATTEMPTS:
                log.warning("enrollment transaction gave up after %d attempts: %s", attempt, exc)
                raise EnrollmentBusy(
                    _("ただいま申込が集中しているため処理できませんでした。申込は行われていません。少し待ってから、もう一度お試しください。")
                ) from exc
            time.sleep(0.01 * attempt * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _for_update(stmt):
    return stmt if is_sqlite() else stmt.with_for_update()


def lock_session(session_id: int) -> TrainingSession:
    """Start the write transaction and lock the session row (fresh values).

    For other areas that change capacity or quotas and then call ``promote_waitlist``.
    """
    begin_write()
    return _lock_session_row(session_id)


def _lock_session_row(session_id: int) -> TrainingSession:
    """Lock the session's row and load it fresh, with its course."""
    stmt = (
        select(TrainingSession)
        .where(TrainingSession.id == session_id)
        .options(joinedload(TrainingSession.course, innerjoin=True))
        .execution_options(populate_existing=True)
    )
    if not is_sqlite():
        stmt = stmt.with_for_update(of=TrainingSession)
    session = db.session.scalar(stmt)
    if session is None:
        raise NotFound(_("研修回が見つかりません。"))
    return session


def _read_session(session_id: int) -> TrainingSession:
    """The session and its course as committed now, without a lock."""
    session = db.session.scalar(_hot().read_session, {"sid": session_id})
    if session is None:
        raise NotFound(_("研修回が見つかりません。"))
    return session


def _relock_session(session: TrainingSession, staff_member_id: int, municipality_id: int):
    """Lock a session read earlier in this transaction, bring its row up to date (one
    statement on the table, no ORM load: only the columns that changed meanwhile are set),
    and refuse a clash of the staff member's with it in the same round trip.

    The clash is judged on the locked row's times. The staff member's enrollments are as
    committed when the statement began: anything that adds to them holds the staff member's
    row lock, which this transaction took first, so nothing can be added meanwhile.

    On PostgreSQL, two more statements go in the same round trip and start once the
    session's lock is held (so they read what the lock's previous holder committed): the
    municipality's quota row of the session, locked; and a new arrival's id and number (one
    more than the latest). Returns ``(quota or None, Arrival)``; on SQLite ``(_UNKNOWN, None)``
    (``_place`` reads the quota when a seat is at stake, and the insert numbers the
    arrival)."""
    hot = _hot()
    params = {"sid": session.id, "staff": staff_member_id}
    if is_sqlite():
        rows, quota_rows, arrival_rows = db.session.connection().execute(hot.lock_session, params).all(), None, None
    else:
        rows, quota_rows, arrival_rows = run_batch(db.session(), [
            (hot.lock_session, params, None),
            (hot.lock_quota, {"sid": session.id, "mid": municipality_id}, None),
            (hot.next_arrival, {"sid": session.id}, None),
        ])
    if not rows:
        raise NotFound(_("研修回が見つかりません。"))
    row = rows[0]
    state = session.__dict__
    for key, value in zip(hot.lock_session_keys, row, strict=True):
        if key not in _CLASH_COLUMNS and state.get(key, _UNSET) != value:
            set_committed_value(session, key, value)
    clash_same, clash_other = row[-2], row[-1]
    if clash_same is not None:
        existing = db.session.get(Enrollment, clash_same)
        raise AlreadyEnrolled(_already_message(existing), enrollment=existing)
    if clash_other is not None:
        raise _overlap_error(db.session.get(Enrollment, clash_other))
    if quota_rows is None:
        return _UNKNOWN, None
    new_id, seq = arrival_rows[0]
    return (_attached_quota(quota_rows[0]) if quota_rows else None), Arrival(*arrival_rows[0])


@dataclass(frozen=True)
class Arrival:
    """A new arrival's row id and number, read under the session's lock: its insert can
    then wait for the commit."""

    id: int
    seq: int


def _attached_quota(row) -> SessionQuota:
    """The quota row just read (and locked) as the session's persistent object."""
    values = dict(zip(_hot().lock_quota_keys, row, strict=True))
    quota = db.session.identity_map.get(db.session.identity_key(SessionQuota, values["id"]))
    if quota is not None:
        for key, value in values.items():
            set_committed_value(quota, key, value)
        return quota
    quota = SessionQuota(**values)
    make_transient_to_detached(quota)
    db.session.add(quota)
    return quota


_CLASH_COLUMNS = ("clash_same", "clash_other")
_UNSET = object()


class _HotStatements:
    """The self-enrollment path's statements, built once per process (building a statement
    costs more than running it): each is executed with its parameters only."""

    def __init__(self) -> None:
        staff = select(StaffMember).where(StaffMember.user_id == bindparam("uid"))
        self.staff_by_user = _for_update(staff).execution_options(populate_existing=True)
        self.read_session = (
            select(TrainingSession)
            .where(TrainingSession.id == bindparam("sid"))
            .options(joinedload(TrainingSession.course, innerjoin=True))
            .execution_options(populate_existing=True)
        )
        # The learner's roster row (locked) and the session with its course (not locked), in
        # one round trip.
        both = (
            select(StaffMember, TrainingSession)
            .join(TrainingSession, true())
            .options(joinedload(TrainingSession.course, innerjoin=True))
            .where(StaffMember.user_id == bindparam("uid"), TrainingSession.id == bindparam("sid"))
            .execution_options(populate_existing=True)
        )
        self.staff_and_session = both if is_sqlite() else both.with_for_update(of=StaffMember)
        table = TrainingSession.__table__
        # The session's row, locked, with the staff member's clashes with it: an active
        # enrollment in it, or a confirmed one in another scheduled session at the same time.
        mine = Enrollment.__table__.alias("mine")
        other = table.alias("other")
        staff_id = bindparam("staff")
        same = (
            select(mine.c.id)
            .where(mine.c.session_id == table.c.id, mine.c.staff_member_id == staff_id,
                   mine.c.status.in_(ACTIVE_STATUSES))
            .limit(1)
            .scalar_subquery()
        )
        overlapping = (
            select(mine.c.id)
            .join(other, other.c.id == mine.c.session_id)
            .where(mine.c.staff_member_id == staff_id, mine.c.session_id != table.c.id,
                   mine.c.status == CONFIRMED, other.c.status == SCHEDULED,
                   other.c.starts_at < table.c.ends_at, other.c.ends_at > table.c.starts_at)
            .limit(1)
            .scalar_subquery()
        )
        self.lock_session = _for_update(
            select(table, same.label("clash_same"), overlapping.label("clash_other")).where(table.c.id == bindparam("sid"))
        )
        self.lock_session_keys = [c.key for c in self.lock_session.selected_columns]
        quotas = SessionQuota.__table__
        self.lock_quota = _for_update(
            select(quotas).where(quotas.c.session_id == bindparam("sid"), quotas.c.municipality_id == bindparam("mid"))
        )
        self.lock_quota_keys = [c.key for c in self.lock_quota.selected_columns]
        enrollments = Enrollment.__table__
        self.insert = enrollments.insert().returning(enrollments.c.id)
        self.insert_known = enrollments.insert()  # id and arrival number given (``Arrival``)
        earlier = enrollments.alias("earlier")
        self.next_arrival = select(
            func.nextval(func.pg_get_serial_sequence(enrollments.name, enrollments.c.id.name)),
            select(func.coalesce(func.max(earlier.c.arrival_seq), 0) + 1)
            .where(earlier.c.session_id == bindparam("sid")).scalar_subquery(),
        )
        self.insert_arrival = (
            enrollments.insert()
            .values(arrival_seq=select(func.coalesce(func.max(earlier.c.arrival_seq), 0) + 1)
                    .where(earlier.c.session_id == bindparam("arrival_session")).scalar_subquery())
            .returning(enrollments.c.id, enrollments.c.arrival_seq)
        )
        self.count_session_seats = (
            table.update()
            .where(table.c.id == bindparam("sid"))
            .values(confirmed_count=table.c.confirmed_count + bindparam("delta"), updated_at=bindparam("now", callable_=utcnow))
            .returning(table.c.confirmed_count, table.c.updated_at)
        )
        quotas = SessionQuota.__table__
        self.count_quota_seats = (
            quotas.update()
            .where(quotas.c.id == bindparam("qid"))
            .values(confirmed_count=quotas.c.confirmed_count + bindparam("delta"))
            .returning(quotas.c.confirmed_count)
        )


_HOT: dict[str, _HotStatements] = {}


def warm_up() -> None:
    """Build (and compile once) the enroll path's statements and the summaries' per-key
    statements when the app starts, so that a new worker's first enrollment, with every
    request of a rush queued behind it, does not build them (within an app context)."""
    from lms.completion.summary import _enrolled_statements

    dialect = db.engine.dialect
    if dialect.name in _HOT:
        return  # once per process and dialect
    statements = [value for value in vars(_hot()).values() if hasattr(value, "compile")]
    statements += list(_enrolled_statements(dialect.name).values())
    for statement in statements:
        statement.compile(dialect=dialect)


def _hot() -> _HotStatements:
    dialect = db.engine.dialect.name  # SQLite has no FOR UPDATE: the statements differ
    statements = _HOT.get(dialect)
    if statements is None:
        statements = _HOT[dialect] = _HotStatements()
    return statements


def _lock_quota(session_id: int, municipality_id: int) -> SessionQuota | None:
    return db.session.scalar(
        _for_update(
            select(SessionQuota).where(
                SessionQuota.session_id == session_id, SessionQuota.municipality_id == municipality_id
            )
        ).execution_options(populate_existing=True)
    )


def _lock_staff(staff_member_id: int) -> StaffMember:
    member = db.session.scalar(
        _for_update(select(StaffMember).where(StaffMember.id == staff_member_id)).execution_options(
            populate_existing=True
        )
    )
    if member is None:
        raise NotFound(_("職員が見つかりません。"))
    return member


def _load_enrollment(enrollment_id: int) -> Enrollment:
    enrollment = db.session.get(Enrollment, enrollment_id)
    if enrollment is None:
        raise NotFound(_("申込が見つかりません。"))
    return enrollment


def _lock_enrollment(enrollment_id: int) -> tuple[Enrollment, TrainingSession]:
    """Lock the session of an enrollment, then read the enrollment fresh."""
    begin_write()
    session_id = db.session.scalar(select(Enrollment.session_id).where(Enrollment.id == enrollment_id))
    if session_id is None:
        raise NotFound(_("申込が見つかりません。"))
    session = _lock_session_row(session_id)
    enrollment = db.session.scalar(
        select(Enrollment).where(Enrollment.id == enrollment_id).execution_options(populate_existing=True)
    )
    return enrollment, session


# ---------------------------------------------------------------- rules


def _started(session: TrainingSession, now: datetime) -> bool:
    return now >= as_utc(session.starts_at)


def _check_open(session: TrainingSession, now: datetime, *, window: bool = True) -> None:
    course = session.course
    if session.status != SCHEDULED or course.status != PUBLISHED:
        raise EnrollmentClosed(_("この研修回は申込を受け付けていません。"))
    if _started(session, now):
        raise SessionStarted(_("この研修回はすでに開始しているため、申し込めません。"))
    if window:
        opens, closes = as_utc(session.enroll_opens_at), as_utc(session.enroll_closes_at)
        if opens is not None and now < opens:
            raise EnrollmentClosed(_("申込受付はまだ始まっていません。"))
        if closes is not None and now > closes:
            raise EnrollmentClosed(_("申込受付は締め切りました。"))


def _check_member(session: TrainingSession, member: StaffMember) -> None:
    if not member.is_active:
        raise NotEligible(_("在籍中の職員ではないため、申し込めません。"))
    if not session.course.is_open_to(member.municipality_id):
        raise NotEligible(_("この研修はあなたの所属する自治体の職員を対象としていません。"))


def _active_enrollment(session_id: int, staff_member_id: int) -> Enrollment | None:
    return db.session.scalar(
        select(Enrollment).where(
            Enrollment.session_id == session_id,
            Enrollment.staff_member_id == staff_member_id,
            Enrollment.status.in_(ACTIVE_STATUSES),
        )
    )


def _overlapping_confirmed(session: TrainingSession, staff_member_id: int) -> Enrollment | None:
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


def _overlap_error(other: Enrollment) -> OverlapsConfirmed:
    return OverlapsConfirmed(
        _(
            "同じ時間帯に受講が確定している研修（%(title)s）があります。",
            title=f"{other.session.course.title} {other.session.title}".strip(),
        )
    )


def _seat_free(session: TrainingSession, quota: SessionQuota | None) -> bool:
    if session.confirmed_count >= session.capacity:
        return False
    return quota is None or quota.confirmed_count < quota.seats


def _take_seat(session: TrainingSession, quota: SessionQuota | None, *, at_commit: bool = False) -> None:
    _count_seats(session, quota, 1, at_commit=at_commit)


def _free_seat(session: TrainingSession, quota: SessionQuota | None) -> None:
    _count_seats(session, quota, -1)


def _count_seats(session: TrainingSession, quota: SessionQuota | None, delta: int, *, at_commit: bool = False) -> None:
    """Move the confirmed counters by ``delta`` with one UPDATE each (their CHECK
    constraints refuse an overbooking), and keep the loaded objects in step.

    ``at_commit``: the caller holds the rows' locks and nothing in the transaction reads
    the counters from the database again, so the UPDATEs go with the commit's other
    deferred writes; the new values are known (the locked values plus ``delta``), and the
    UPDATEs' results are compared with them (the CHECK constraints still refuse an
    overbooking before the COMMIT)."""
    hot = _hot()
    if at_commit:
        now = utcnow()
        expected = session.confirmed_count + delta
        defer(db.session(), hot.count_session_seats, {"sid": session.id, "delta": delta, "now": now},
              on_rows=_expect_count(expected, "training_session", session.id))
        set_committed_value(session, "confirmed_count", expected)
        set_committed_value(session, "updated_at", now)
        if quota is not None:
            expected = quota.confirmed_count + delta
            defer(db.session(), hot.count_quota_seats, {"qid": quota.id, "delta": delta},
                  on_rows=_expect_count(expected, "session_quota", quota.id))
            set_committed_value(quota, "confirmed_count", expected)
        return
    db.session.flush()  # pending changes (a new capacity, say) first: the constraints see them
    connection = db.session.connection()
    count, updated = connection.execute(hot.count_session_seats, {"sid": session.id, "delta": delta}).one()
    set_committed_value(session, "confirmed_count", count)
    set_committed_value(session, "updated_at", updated)
    if quota is not None:
        count = connection.execute(hot.count_quota_seats, {"qid": quota.id, "delta": delta}).scalar_one()
        set_committed_value(quota, "confirmed_count", count)


def _expect_count(expected: int, table: str, row_id: int):
    def check(rows) -> None:
        if len(rows) != 1 or rows[0][0] != expected:
            # Cannot happen while the row's lock is held. The results arrive with the COMMIT
            # (one round trip): the CHECK constraints have refused any overbooking by then,
            # so this is an alarm for the operators, not a refusal.
            log.error("%s %s: confirmed_count is %r after the update, expected %s", table, row_id, rows, expected)

    return check


def _set_status(enrollment: Enrollment, status: str, actor, now: datetime) -> str:
    old = enrollment.status
    enrollment.status = status
    if status == CONFIRMED:
        enrollment.confirmed_at = now
    elif status == WAITLISTED:
        enrollment.waitlisted_at = now
    elif status == CANCELLED:
        enrollment.cancelled_at = now
        enrollment.cancelled_by_id = getattr(actor, "id", None)
    return old


def _changed(enrollment: Enrollment, old: str | None, actor) -> None:
    signals.enrollment_status_changed.send(enrollment, old_status=old, new_status=enrollment.status, actor=actor)


def _notify(enrollment: Enrollment, kind: str, suffix: str = "", position: int | None = None,
            fresh: bool = False) -> None:
    from lms.notifications.services import queue_enrollment_notice

    queue_enrollment_notice(enrollment, kind, dedupe_suffix=suffix, position=position, fresh=fresh)


_NOTICE_FOR = {CONFIRMED: "confirmed", WAITLISTED: "waitlisted", PENDING: "pending"}


def _is_platform_admin(actor) -> bool:
    return actor is not None and actor.has_role(PLATFORM_ADMIN)


def _is_municipal_admin_of(actor, municipality_id: int | None) -> bool:
    return (
        actor is not None
        and actor.has_role(MUNICIPAL_ADMIN)
        and municipality_id is not None
        and actor.municipality_id == municipality_id
    )


def _is_trainer_of(actor, session: TrainingSession) -> bool:
    return actor is not None and actor.has_role(TRAINER) and session.course.owner_id == actor.id


def _require_admin_of(actor, member: StaffMember) -> None:
    if not (_is_platform_admin(actor) or _is_municipal_admin_of(actor, member.municipality_id)):
        raise NotAllowed(_("この職員の申込を操作する権限がありません。"))


_UNKNOWN = object()


def _place(session: TrainingSession, member: StaffMember, actor, source: str, now: datetime,
           *, arrival_seq: int | None = None, replaces: Enrollment | None = None,
           status: str | None = None, quota=_UNKNOWN, counters_at_commit: bool = False,
           arrival: Arrival | None = None) -> Enrollment:
    """Insert the enrollment in the status the rules give (or ``status`` for a swap).
    ``counters_at_commit``: see ``_count_seats``; then an ``arrival`` read under the lock
    lets the insert go with the commit too (nothing in the transaction reads the row back
    from the database)."""
    if status is None:
        if session.course.requires_approval and source == SELF:
            status = PENDING
        elif session.confirmed_count >= session.capacity:
            status = WAITLISTED  # full: no quota can give a seat (the quota row is not needed)
        else:
            if quota is _UNKNOWN:
                quota = _lock_quota(session.id, member.municipality_id)
            status = CONFIRMED if _seat_free(session, quota) else WAITLISTED
    elif status == CONFIRMED and replaces is None and quota is _UNKNOWN:
        quota = _lock_quota(session.id, member.municipality_id)
    # One INSERT … RETURNING on the table instead of a unit-of-work flush; the object is then
    # attached as the persistent row it is (its session and staff member are in the
    # identity map already).
    values = {
        "session_id": session.id,
        "staff_member_id": member.id,
        "municipality_id": member.municipality_id,
        "status": status,
        "source": source,
        "arrival_seq": arrival_seq,
        "requested_at": now,
        "requested_by_id": getattr(actor, "id", None),
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
    connection = db.session.connection()
    new_arrival = arrival_seq is None
    if arrival is not None and counters_at_commit:
        new_id, values["arrival_seq"] = arrival.id, arrival.seq
        defer(db.session(), _hot().insert_known, {"id": new_id, **values})
    elif new_arrival:
        # Numbered one more than the latest by the INSERT itself (the caller holds the
        # session's lock, so arrivals are numbered one at a time).
        params = {k: v for k, v in values.items() if k != "arrival_seq"}
        new_id, values["arrival_seq"] = connection.execute(
            _hot().insert_arrival, {**params, "arrival_session": session.id}
        ).one()
    else:  # a swap keeps the seat's number
        new_id = connection.execute(_hot().insert, values).scalar_one()
    enrollment = Enrollment(id=new_id, **values)
    make_transient_to_detached(enrollment)
    db.session.add(enrollment)
    # The completion summaries learn of flushed rows by themselves; this one was not flushed.
    note_inserted(db.session(), enrollment, locked_session=session)
    # A new arrival comes last: its waitlist position is everyone waiting now (the session's
    # waitlisted_count, read under its lock), plus one.
    enrollment.position_at_arrival = None
    if status == WAITLISTED and new_arrival:
        enrollment.position_at_arrival = session.waitlisted_count + 1
        # The triggers count it in the database; the loaded row follows (as after a commit).
        set_committed_value(session, "waitlisted_count", session.waitlisted_count + 1)
    if status == CONFIRMED and replaces is None:
        _take_seat(session, quota, at_commit=counters_at_commit)
    return enrollment


def _refuse_overlap(session: TrainingSession, member_id: int) -> None:
    other = _overlapping_confirmed(session, member_id)
    if other is not None:
        raise _overlap_error(other)


# ---------------------------------------------------------------- enroll


def enroll(session_id: int, staff_member_id: int, actor, source: str = SELF) -> Enrollment:
    """Enroll a staff member (by themselves, ``source="self"``; see ``nominate`` for admins).

    Returns the enrollment: pending_approval, confirmed or waitlisted. Raises
    EnrollmentClosed, SessionStarted, NotEligible, AlreadyEnrolled, OverlapsConfirmed,
    NotFound, NotAllowed or EnrollmentBusy.
    """
    if source not in SOURCES:
        raise InvalidInput(_("申込の種別が正しくありません。"))
    return _atomic(_enroll_tx, session_id, staff_member_id, actor, source, _keep_loaded=True)


def enroll_self(session_id: int, user) -> Enrollment:
    """A signed-in learner enrolls themselves: their roster entry is found (and locked) by
    their user id in the same statement. Raises ``NoRosterEntry`` when they have none linked
    yet (the caller links or creates it, then calls ``enroll``); otherwise as ``enroll``."""
    return _atomic(_enroll_tx, session_id, None, user, SELF, _keep_loaded=True)


class NoRosterEntry(NotEligible):
    """The signed-in user has no roster entry linked to them (yet)."""


def _enroll_tx(session_id: int, staff_member_id: int | None, actor, source: str) -> Enrollment:
    """The hot path of a popular course's opening minute. Everyone's request queues on the
    session's row lock, so as little as possible happens while it is held, in as few round
    trips as the rules allow. On PostgreSQL there are three: the staff member's row (locked)
    with the session as it is now; the session's row (locked) with the staff member's
    clashes, the quota row (locked) and the arrival's id and number; and, with the COMMIT,
    the insert, the outbox row, and the counters and summaries while seats remain."""
    now = utcnow()
    begin_write()
    # The staff member's row first: their own requests (here, in promotions, approvals,
    # swaps) queue on it, so the "one active enrollment" and "no overlap" checks hold.
    # With it, the session as it is now (no lock yet), to refuse early what needs no lock.
    if staff_member_id is None:
        row = db.session.execute(_hot().staff_and_session, {"uid": actor.id, "sid": session_id}).first()
        if row is None:  # which of the two is missing
            if db.session.scalar(_hot().staff_by_user, {"uid": actor.id}) is None:
                raise NoRosterEntry(_("職員名簿にあなたの登録がないため、申し込めません。所属の研修担当にお問い合わせください。"))
            raise NotFound(_("研修回が見つかりません。"))
        member, session = row
    else:
        member = _lock_staff(staff_member_id)
        if source == SELF and actor is not None and member.user_id != actor.id:
            raise NotAllowed(_("本人以外の申込はできません。"))
        session = _read_session(session_id)
    _check_open(session, now)
    _check_member(session, member)
    # Then the session's row, with fresh counters, times and status under the lock (held
    # to the commit), and the staff member's clashes with it.
    quota, arrival = _relock_session(session, member.id, member.municipality_id)
    _check_open(session, now)
    _check_member(session, member)
    # The enrollment, the counters, the notice and the summaries are written with the
    # commit, in one round trip on PostgreSQL (nothing here reads them back from the
    # database).
    enrollment = _place(session, member, actor, source, now, quota=quota, counters_at_commit=True, arrival=arrival)
    position = enrollment.position_at_arrival if enrollment.status == WAITLISTED else None
    _notify(enrollment, _NOTICE_FOR[enrollment.status], position=position, fresh=True)
    _changed(enrollment, None, actor)
    if enrollment.status == CONFIRMED:
        signals.attendees_changed.send(session, actor=actor)
    enrollment.outcome_message = status_message(enrollment, position)  # where they stand at commit
    return enrollment


def _already_message(existing: Enrollment) -> str:
    if existing.status == CONFIRMED:
        return _("すでにこの研修回の受講が確定しています。")
    if existing.status == WAITLISTED:
        from lms.enrollment.queries import waitlist_position

        return _("すでにこの研修回のキャンセル待ちに登録されています（%(n)s 番目）。", n=waitlist_position(existing))
    return _("すでにこの研修回に申し込んでいます（承認待ち）。")


# ---------------------------------------------------------------- nominate


@dataclass(frozen=True)
class NominationResult:
    enrollment: Enrollment
    created: bool  # False: the staff member was already active in the session (idempotent)
    message: str


def nominate(session_id: int, staff_member_id: int, actor, source: str = NOMINATION) -> NominationResult:
    """A municipal admin (or platform admin) enrolls a staff member of their municipality.

    No approval step. Nominating someone already active returns the existing enrollment
    with ``created=False`` (so a CSV uploaded twice changes nothing).
    """
    if source not in SOURCES or source == SELF:
        raise InvalidInput(_("申込の種別が正しくありません。"))
    return _atomic(_nominate_tx, session_id, staff_member_id, actor, source)


def _nominate_tx(session_id: int, staff_member_id: int, actor, source: str) -> NominationResult:
    now = utcnow()
    session = lock_session(session_id)
    member = _lock_staff(staff_member_id)
    _require_admin_of(actor, member)
    existing = _active_enrollment(session.id, member.id)
    if existing is not None:
        return NominationResult(existing, False, _already_message(existing))
    _check_open(session, now)
    _check_member(session, member)
    _refuse_overlap(session, member.id)
    enrollment = _place(session, member, actor, source, now)
    record_action(actor, "enrollment.nominate", "enrollment", enrollment.id, member.municipality_id,
                  session_id=session.id, staff_member_id=member.id, status=enrollment.status, source=source)
    position = enrollment.position_at_arrival if enrollment.status == WAITLISTED else None
    _notify(enrollment, _NOTICE_FOR[enrollment.status], position=position, fresh=True)
    _changed(enrollment, None, actor)
    if enrollment.status == CONFIRMED:
        signals.attendees_changed.send(session, actor=actor)
    return NominationResult(enrollment, True, status_message(enrollment, position))


def status_message(enrollment: Enrollment, position: int | None = None) -> str:
    """Where the learner stands, in one sentence."""
    if enrollment.status == CONFIRMED:
        return _("受講が確定しました。")
    if enrollment.status == WAITLISTED:
        if position is None:
            from lms.enrollment.queries import waitlist_position

            position = waitlist_position(enrollment)
        return _("定員に達しているため、キャンセル待ち %(n)s 番目です。", n=position)
    if enrollment.status == PENDING:
        return _("承認待ちです。所属の研修担当が承認すると確定します。")
    if enrollment.status == REJECTED:
        return _("申込は承認されませんでした。")
    return _("申込は取り消されました。")


# ---------------------------------------------------------------- cancel


def cancel_deadline(session: TrainingSession) -> datetime:
    return as_utc(session.cancel_deadline) or as_utc(session.starts_at)


def can_cancel(enrollment: Enrollment, actor, now: datetime | None = None) -> tuple[bool, str]:
    """Whether ``actor`` may cancel ``enrollment`` now, and if not why (for the button)."""
    now = now or utcnow()
    if enrollment.status not in ACTIVE_STATUSES:
        return False, _("この申込はすでに終了しています。")
    session = enrollment.session
    member = enrollment.staff_member
    if (
        _is_platform_admin(actor)
        or _is_municipal_admin_of(actor, member.municipality_id)
        or _is_municipal_admin_of(actor, enrollment.municipality_id)
        or _is_trainer_of(actor, session)
    ):
        return True, ""
    if actor is None or member.user_id != actor.id:
        return False, _("この申込を取り消す権限がありません。")
    if now > cancel_deadline(session):
        return False, _("キャンセル期限を過ぎたため、ご自身では取り消せません。所属の研修担当にご連絡ください。")
    return True, ""


def cancel_enrollment(enrollment_id: int, actor, reason: str = "") -> Enrollment:
    """Cancel an enrollment; a freed seat goes at once to the waitlist (same transaction).

    Learners: their own, before the cancellation deadline. Municipal admins of the staff
    member's municipality, the course's trainer and platform admins: any time (after the
    deadline it is recorded as a late cancellation).
    """
    return _atomic(_cancel_tx, enrollment_id, actor, (reason or "").strip())


def _cancel_tx(enrollment_id: int, actor, reason: str) -> Enrollment:
    now = utcnow()
    enrollment, session = _lock_enrollment(enrollment_id)
    allowed, why = can_cancel(enrollment, actor, now)
    if not allowed:
        if enrollment.status not in ACTIVE_STATUSES:
            raise Conflict(why)
        raise NotAllowed(why)
    by_someone_else = enrollment.staff_member.user_id != getattr(actor, "id", None)
    was_confirmed = enrollment.status == CONFIRMED
    old = _set_status(enrollment, CANCELLED, actor, now)
    enrollment.late_cancellation = now > cancel_deadline(session)
    enrollment.reason = reason
    if was_confirmed:
        _free_seat(session, _lock_quota(session.id, enrollment.municipality_id))
    db.session.flush()
    if by_someone_else:
        record_action(actor, "enrollment.cancel", "enrollment", enrollment.id, enrollment.municipality_id,
                      session_id=session.id, late=enrollment.late_cancellation, reason=reason)
    _notify(enrollment, "cancelled")
    _changed(enrollment, old, actor)
    if was_confirmed:
        promote_waitlist(session, actor)
        signals.attendees_changed.send(session, actor=actor)
    return enrollment


# ---------------------------------------------------------------- promotion


def promote_waitlist(session: TrainingSession, actor=None) -> list[Enrollment]:
    """Fill free seats with the earliest-arrived waitlisted people who are eligible now
    (their municipality's quota has room, no overlapping confirmed session, still active).

    The caller holds the session lock (``lock_session``) and commits; never promotes
    after the session started. Returns the promoted enrollments.
    """
    now = utcnow()
    if session.status != SCHEDULED or _started(session, now):
        return []
    promoted: list[Enrollment] = []
    quotas: dict[int, SessionQuota | None] = {}
    full: set[int] = set()  # municipalities whose quota is used up
    for enrollment in db.session.scalars(
        select(Enrollment)
        .where(Enrollment.session_id == session.id, Enrollment.status == WAITLISTED)
        .order_by(Enrollment.arrival_seq)
        .execution_options(populate_existing=True)
    ).all():
        if session.confirmed_count >= session.capacity:
            break
        mid = enrollment.municipality_id
        if mid in full:
            continue
        if mid not in quotas:
            quotas[mid] = _lock_quota(session.id, mid)
        quota = quotas[mid]
        if not _seat_free(session, quota):
            full.add(mid)
            continue
        member = _lock_staff(enrollment.staff_member_id)
        if not member.is_active or _overlapping_confirmed(session, member.id) is not None:
            continue
        old = _set_status(enrollment, CONFIRMED, actor, now)
        _take_seat(session, quota)
        db.session.flush()
        _notify(enrollment, "promoted")
        _changed(enrollment, old, actor)
        promoted.append(enrollment)
    return promoted


# ---------------------------------------------------------------- approval


def approve_enrollment(enrollment_id: int, actor) -> Enrollment:
    """Pending → confirmed if a seat is free (capacity and quota), else waitlisted."""
    return _atomic(_approve_tx, enrollment_id, actor)


def _approve_tx(enrollment_id: int, actor) -> Enrollment:
    now = utcnow()
    enrollment, session = _lock_enrollment(enrollment_id)
    member = _lock_staff(enrollment.staff_member_id)
    _require_admin_of(actor, member)
    if enrollment.status != PENDING:
        raise Conflict(_("この申込は承認待ちではありません。"))
    if session.status != SCHEDULED or _started(session, now):
        raise SessionStarted(_("この研修回はすでに開始しているか中止されたため、承認できません。"))
    _check_member(session, member)
    _refuse_overlap(session, member.id)
    quota = _lock_quota(session.id, enrollment.municipality_id)
    status = CONFIRMED if _seat_free(session, quota) else WAITLISTED
    old = _set_status(enrollment, status, actor, now)
    enrollment.decided_at = now
    enrollment.decided_by_id = actor.id
    if status == CONFIRMED:
        _take_seat(session, quota)
    db.session.flush()
    record_action(actor, "enrollment.approve", "enrollment", enrollment.id, enrollment.municipality_id,
                  session_id=session.id, status=status)
    _notify(enrollment, _NOTICE_FOR[status])
    _changed(enrollment, old, actor)
    if status == CONFIRMED:
        signals.attendees_changed.send(session, actor=actor)
    return enrollment


def reject_enrollment(enrollment_id: int, actor, reason: str) -> Enrollment:
    """Pending → rejected, with the reason shown to the learner (required)."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("承認しない理由を入力してください。"))
    return _atomic(_reject_tx, enrollment_id, actor, reason)


def _reject_tx(enrollment_id: int, actor, reason: str) -> Enrollment:
    now = utcnow()
    enrollment, session = _lock_enrollment(enrollment_id)
    _require_admin_of(actor, enrollment.staff_member)
    if enrollment.status != PENDING:
        raise Conflict(_("この申込は承認待ちではありません。"))
    old = _set_status(enrollment, REJECTED, actor, now)
    enrollment.decided_at = now
    enrollment.decided_by_id = actor.id
    enrollment.reason = reason
    db.session.flush()
    record_action(actor, "enrollment.reject", "enrollment", enrollment.id, enrollment.municipality_id,
                  session_id=session.id, reason=reason)
    _notify(enrollment, "rejected")
    _changed(enrollment, old, actor)
    return enrollment


# ---------------------------------------------------------------- swap (差し替え)


def swap_nominee(enrollment_id: int, new_staff_member_id: int, actor, reason: str = "") -> Enrollment:
    """Replace a nominee with another staff member of the same municipality, keeping the
    seat (or waitlist place) and the order of arrival. Returns the new enrollment."""
    return _atomic(_swap_tx, enrollment_id, new_staff_member_id, actor, (reason or "").strip())


def _swap_tx(enrollment_id: int, new_staff_member_id: int, actor, reason: str) -> Enrollment:
    now = utcnow()
    old_enrollment, session = _lock_enrollment(enrollment_id)
    old_member = _lock_staff(old_enrollment.staff_member_id)
    _require_admin_of(actor, old_member)
    if old_enrollment.status not in ACTIVE_STATUSES:
        raise Conflict(_("取り消し済みの申込は差し替えられません。"))
    if new_staff_member_id == old_member.id:
        raise InvalidInput(_("同じ職員には差し替えられません。"))
    new_member = _lock_staff(new_staff_member_id)
    _require_admin_of(actor, new_member)
    if new_member.municipality_id != old_enrollment.municipality_id:
        raise NotAllowed(_("差し替えは同じ自治体の職員どうしに限られます。"))
    if session.status != SCHEDULED or _started(session, now):
        raise SessionStarted(_("この研修回はすでに開始しているか中止されたため、差し替えできません。"))
    _check_member(session, new_member)
    existing = _active_enrollment(session.id, new_member.id)
    if existing is not None:
        raise AlreadyEnrolled(_("差し替え先の職員はすでにこの研修回に申し込んでいます。"), enrollment=existing)
    status = old_enrollment.status
    if status == CONFIRMED:
        _refuse_overlap(session, new_member.id)
    previous = _set_status(old_enrollment, CANCELLED, actor, now)
    old_enrollment.reason = reason or _("差し替え")
    db.session.flush()  # the old row leaves the unique index before the new one enters it
    new_enrollment = _place(session, new_member, actor, SWAP, now, arrival_seq=old_enrollment.arrival_seq,
                            replaces=old_enrollment, status=status)
    record_action(actor, "enrollment.swap", "enrollment", new_enrollment.id, new_enrollment.municipality_id,
                  session_id=session.id, replaced_enrollment_id=old_enrollment.id,
                  from_staff_member_id=old_member.id, to_staff_member_id=new_member.id, reason=reason)
    _notify(old_enrollment, "cancelled")
    _notify(new_enrollment, _NOTICE_FOR[status])
    _changed(old_enrollment, previous, actor)
    _changed(new_enrollment, None, actor)
    if status == CONFIRMED:
        signals.attendees_changed.send(session, actor=actor)
    return new_enrollment


# ---------------------------------------------------------------- session cancelled


def cancel_session_enrollments(session: TrainingSession | int, actor, reason: str) -> list[Enrollment]:
    """Cancel every active enrollment of a session (the trainer cancelled the session);
    counters go back to zero. Returns the cancelled enrollments."""
    session_id = session if isinstance(session, int) else session.id
    return _atomic(_cancel_session_tx, session_id, actor, (reason or "").strip())


def _cancel_session_tx(session_id: int, actor, reason: str) -> list[Enrollment]:
    now = utcnow()
    session = lock_session(session_id)
    if not (_is_platform_admin(actor) or _is_trainer_of(actor, session)):
        raise NotAllowed(_("この研修回の申込を一括で取り消す権限がありません。"))
    cancelled = []
    had_confirmed = False
    for enrollment in db.session.scalars(
        select(Enrollment)
        .where(Enrollment.session_id == session.id, Enrollment.status.in_(ACTIVE_STATUSES))
        .order_by(Enrollment.arrival_seq)
        .execution_options(populate_existing=True)
    ).all():
        had_confirmed = had_confirmed or enrollment.status == CONFIRMED
        old = _set_status(enrollment, CANCELLED, actor, now)
        enrollment.reason = reason or _("研修回の中止")
        cancelled.append((enrollment, old))
    session.confirmed_count = 0
    for quota in db.session.scalars(
        _for_update(select(SessionQuota).where(SessionQuota.session_id == session.id)).execution_options(
            populate_existing=True
        )
    ).all():
        quota.confirmed_count = 0
    db.session.flush()
    for enrollment, old in cancelled:
        _notify(enrollment, "cancelled")
        _changed(enrollment, old, actor)
    if had_confirmed:
        signals.attendees_changed.send(session, actor=actor)
    if cancelled:
        record_action(actor, "enrollment.cancel_session", "training_session", session.id, None,
                      count=len(cancelled), reason=reason)
    return [e for e, _old in cancelled]
