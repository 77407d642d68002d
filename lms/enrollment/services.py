"""Enrollment operations: enroll, cancel, promote, approve, reject, nominate, swap.

Every public operation here is ONE write transaction that it commits itself, so that a
lock timeout, deadlock or serialization failure can be retried as a whole (``_atomic``):

* the session row is locked before anything about its seats is decided (``SELECT … FOR
  UPDATE`` on PostgreSQL; ``BEGIN IMMEDIATE`` on SQLite, which serialises writers), then
  the quota row; the staff member row(s) concerned are locked before the session's (a
  learner's own requests queue on it, so "one active enrollment" and "no overlap" hold);
* ``TrainingSession.confirmed_count`` and ``SessionQuota.confirmed_count`` change in the
  same transaction as every status change; their CHECK constraints make overbooking
  impossible even if a rule were wrong;
* each status change is published as ``enrollment_status_changed`` inside the transaction
  (notifications queue the outbox row, composed later by the worker; the completion area
  recomputes its dashboard summaries), so it is committed together with the change, or not
  at all.

The rules themselves are pure functions in ``lms.enrollment.rules``; the statements that
lock rows and count seats are in ``lms.enrollment.seats`` (docs/enrollment.md).

Call these with no pending changes in the database session (they start their own write
transaction). A request that still fails after the retries raises ``EnrollmentBusy``
with a Japanese message; nothing is half-done.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased, joinedload

from lms.audit.services import record_action
from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, TRAINER
from lms.common import signals
from lms.common.database import begin_write, is_retryable
from lms.common.errors import Conflict, DomainError, InvalidInput, NotAllowed, NotFound
from lms.common.timeutil import as_utc, utcnow
from lms.courses.models import SCHEDULED, SessionQuota, TrainingSession
from lms.enrollment import approvals, rules, seats, series
from lms.enrollment.models import (
    ACTIVE_STATUSES,
    APPROVED,
    CANCELLED,
    CONFIRMED,
    NOMINATION,
    NOT_SELECTED,
    OFFICE_STEP,
    PENDING,
    REJECTED,
    RESERVED,
    RESUBMITTED,
    RETURNED,
    RETURNED_STEP,
    SELECTED,
    SELECTION_STEP,
    SELF,
    SERIES,
    SKIPPED_NO_APPROVER,
    SOURCES,
    STEP_REJECTED,
    SUPERVISOR_STEP,
    SWAP,
    WAITLISTED,
    Enrollment,
    Outcome,
)
from lms.enrollment.queries import waitlist_position
from lms.enrollment.rules import EnrollmentClosed, EnrollmentError, NotEligible, OverlapsConfirmed, SessionStarted
from lms.extensions import db
from lms.roster.models import StaffMember
from lms.roster.services import staff_member_for

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
    "departed_places",
    "withdraw_departed_staff",
    "decide_selection",
    "decide_selection_in_order",
    "enroll",
    "enroll_self",
    "follow_new_part",
    "lock_session",
    "nominate",
    "promote_waitlist",
    "reject_enrollment",
    "status_message",
    "swap_nominee",
    "waiting_for_selection",
]


# ---------------------------------------------------------------- refusals of this module


class AlreadyEnrolled(EnrollmentError, Conflict):
    """The staff member already holds an active enrollment (``.enrollment``)."""

    def __init__(self, message: str = "", enrollment: Enrollment | None = None, **context):
        super().__init__(message, **context)
        self.enrollment = enrollment


class EnrollmentBusy(EnrollmentError, Conflict):
    """The database stayed locked through every retry; nothing was changed."""


class NoRosterEntry(NotEligible):
    """The signed-in user has no roster entry, and none could be linked or created."""


# ---------------------------------------------------------------- transactions

ATTEMPTS = 6


def _atomic(func, *args):
    """Run ``func(*args)`` as one transaction and commit; retry it whole on a lock timeout,
    deadlock, serialization failure or a unique-index race. Domain errors roll back and
    propagate unchanged."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            result = func(*args)
            db.session.commit()
            return result
        except DomainError:
            db.session.rollback()
            raise
        except Exception as exc:
            db.session.rollback()
            if not (is_retryable(exc) or isinstance(exc, IntegrityError)):
                raise
            if attempt == ATTEMPTS:
                log.warning("enrollment transaction gave up after %d attempts: %s", attempt, exc)
                raise EnrollmentBusy(
                    _("ただいま申込が集中しているため処理できませんでした。申込は行われていません。少し待ってから、もう一度お試しください。")
                ) from exc
            time.sleep(0.01 * attempt * attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def lock_session(session_id: int) -> TrainingSession:
    """Start the write transaction and lock the session row (fresh values)."""
    return seats.lock_session(session_id)


def _lock_enrollment(enrollment_id: int) -> tuple[Enrollment, TrainingSession]:
    """Lock the session of an enrollment, then read the enrollment fresh."""
    begin_write()
    session_id = db.session.scalar(select(Enrollment.session_id).where(Enrollment.id == enrollment_id))
    if session_id is None:
        raise NotFound(_("申込が見つかりません。"))
    session = seats.lock_session(session_id)
    enrollment = db.session.scalar(
        select(Enrollment).where(Enrollment.id == enrollment_id).execution_options(populate_existing=True)
    )
    if enrollment is None:
        raise NotFound(_("申込が見つかりません。"))
    return enrollment, session


# ---------------------------------------------------------------- events and shared steps

_NOTICE_FOR = {CONFIRMED: "confirmed", WAITLISTED: "waitlisted", PENDING: "pending"}


def _changed(enrollment: Enrollment, old: str | None, actor, notice: str | None,
             position: int | None = None) -> list[Enrollment]:
    """Publish the change (notifications queue ``notice``; see lms/notifications/receivers.py).
    A place gained or lost in the first part of a 連続講座 is gained or lost in every part; a
    place there cancelled takes the later parts and make-ups with it, and the learner is told
    once of them all (``series_places_cancelled``). Returns the enrollments that went with it."""
    follows = ((old == CONFIRMED) != (enrollment.status == CONFIRMED) and enrollment.source != SERIES
               and series.is_first(enrollment.session))
    together = follows and notice == "cancelled"
    signals.enrollment_status_changed.send(
        enrollment, old_status=old, new_status=enrollment.status, actor=actor, notice=None if together else notice,
        position=position)
    if not follows:
        return []
    session = enrollment.session
    gone = _follow_series(enrollment, session, actor)
    _tell_series_left(enrollment.staff_member_id, session.id, [enrollment, *gone] if together else gone, actor)
    return gone


def _tell_series_left(staff_member_id: int, series_id: int, enrollments: list[Enrollment], actor) -> None:
    """The learner's places in a series that went together, told in one notice (date order)."""
    if not enrollments:
        return
    ordered = sorted(enrollments, key=lambda e: (as_utc(e.session.starts_at), e.session_id))
    signals.series_places_cancelled.send(None, staff_member_id=staff_member_id, series_id=series_id,
                                         enrollment_ids=[e.id for e in ordered], actor=actor)


def _follow_series(enrollment: Enrollment, first: TrainingSession, actor) -> list[Enrollment]:
    """Give (or take back) the staff member's place in each later part of the series as they
    have (or no longer have) one in its first part: a confirmed enrollment of source SERIES
    per part, each published as any change is (the part's calendar invitation, roster,
    Teams meeting). The parts' capacity is the first's: a place there is one in every part.
    Returns the enrollments cancelled (later parts and make-ups; published without a notice of
    their own: the caller tells the learner of them all at once)."""
    member = enrollment.staff_member
    keep = enrollment.status == CONFIRMED
    now = utcnow()
    gone: list[Enrollment] = []
    if not keep:
        gone += _leave_makeups(first.id, enrollment.staff_member_id, actor,
                               enrollment.reason or _("連続講座の受講取消に伴う取消"), now)
    later = seats.lock_later_parts(first.id)
    if not later:
        return gone
    held = {e.session_id: e for e in db.session.scalars(
        select(Enrollment).where(Enrollment.staff_member_id == member.id, Enrollment.source == SERIES,
                                 Enrollment.session_id.in_([p.id for p in later]))
        .execution_options(populate_existing=True))}
    for part in later:
        mirrored = held.get(part.id)
        if keep and part.status == SCHEDULED and (mirrored is None or mirrored.status != CONFIRMED):
            if part.capacity != first.capacity:
                part.capacity = first.capacity
            if mirrored is None:
                mirrored = seats.add_enrollment(part, member, status=CONFIRMED, source=SERIES,
                                                actor_id=getattr(actor, "id", None), now=now)
                old = None
            else:
                old = _set_status(mirrored, CONFIRMED, actor, now)
            mirrored.confirmed_at = now
            seats.count_seats(part, None, +1)
            _changed(mirrored, old, actor, "confirmed")
            signals.attendees_changed.send(part, actor=actor)
        elif not keep and mirrored is not None and mirrored.status == CONFIRMED:
            _leave_part(mirrored, part, actor, enrollment.reason or "", now)
            gone.append(mirrored)
    return gone


def _leave_part(mirrored: Enrollment, part: TrainingSession, actor, reason: str, now: datetime) -> None:
    """A confirmed place in a later part of a series given up (the part locked after the
    first): its seat counted back, the change published without a notice of its own."""
    old = _set_status(mirrored, CANCELLED, actor, now)
    mirrored.reason = reason
    seats.count_seats(part, None, -1)
    _changed(mirrored, old, actor, None)
    signals.attendees_changed.send(part, actor=actor)


def _leave_makeups(first_id: int, staff_member_id: int, actor, reason: str, now: datetime,
                   only: Callable[[TrainingSession], bool] | None = None) -> list[Enrollment]:
    """A place in the series lost: the staff member's 補講 places (confirmed or waitlisted) go
    with it, each make-up's seat passing to its waitlist. Only a series place entitles one to a
    make-up, so none is kept (a make-up is locked after the first part, as the parts are);
    ``only``: those of the make-up sessions it accepts (a departure: after its day).
    Returns the enrollments cancelled (published without a notice of their own)."""
    gone = []
    for held in series.makeup_places(first_id, staff_member_id):
        makeup = seats.lock_session(held.session_id)
        fresh = _fresh(held.id)
        if fresh is not None and fresh.status in ACTIVE_STATUSES and (only is None or only(makeup)):
            _cancel_locked(fresh, makeup, actor, reason, now, audited=True, notice=None)
            gone.append(fresh)
    return gone


def _fresh(enrollment_id: int) -> Enrollment | None:
    """The enrollment read again (its session locked by the caller)."""
    return db.session.scalar(select(Enrollment).where(Enrollment.id == enrollment_id)
                             .execution_options(populate_existing=True))


def follow_new_part(part: TrainingSession, actor=None) -> int:
    """A part just added to a series: everyone with a place in its first part gets one in it
    (in the caller's transaction, under the first's lock). Returns how many."""
    if not series.is_later_part(part):
        return 0
    first = db.session.get(TrainingSession, part.series_id, with_for_update=True, populate_existing=True)
    if first is None:
        return 0
    confirmed = list(db.session.scalars(select(Enrollment).where(
        Enrollment.session_id == first.id, Enrollment.status == CONFIRMED).order_by(Enrollment.arrival_seq)))
    for enrollment in confirmed:
        _follow_series(enrollment, first, actor)
    return len(confirmed)


def _set_status(enrollment: Enrollment, status: str, actor, now: datetime) -> str:
    old = enrollment.status
    enrollment.status = status
    if old == CANCELLED and status != CANCELLED:  # a place taken again (a 連続講座's later day): a fresh one
        enrollment.cancelled_at, enrollment.cancelled_by_id = None, None
        enrollment.late_cancellation, enrollment.reason = False, ""
    if status == CONFIRMED:
        enrollment.confirmed_at = now
    elif status == WAITLISTED:
        enrollment.waitlisted_at = now
    elif status == CANCELLED:
        enrollment.cancelled_at = now
        enrollment.cancelled_by_id = getattr(actor, "id", None)
    return old


def _already_message(existing: Enrollment) -> str:
    if existing.status == CONFIRMED:
        return _("すでにこの研修回の受講が確定しています。")
    if existing.status == WAITLISTED:
        return _("すでにこの研修回のキャンセル待ちに登録されています（%(n)s 番目）。", n=waitlist_position(existing))
    return _("すでにこの研修回に申し込んでいます（承認待ち）。")


def _overlap_error(other: Enrollment) -> OverlapsConfirmed:
    return rules.overlap_refusal(other.session.course.title, other.session.title)


def _refuse_overlap(session: TrainingSession, member_id: int) -> None:
    other = seats.overlapping_confirmed(session, member_id)
    if other is not None:
        raise _overlap_error(other)


def _check_eligible(session: TrainingSession, member: StaffMember) -> None:
    """The rules' eligibility, then — for a course with 受講要件 only — the completion area's
    answer (``enrollment_prerequisites``: raises MissingPrerequisite naming what is missing)."""
    rules.check_eligible(session.course, member)
    if why := rules.departure_refusal(session.starts_at, member.left_on):
        raise NotEligible(why)
    if session.makeup_for_id is not None and not series.holds_place(session.series_id or 0, member.id):
        raise NotEligible(_("補講は、この連続講座の受講が決まっている人だけが申し込めます。"))
    if session.course.has_prerequisites:
        signals.enrollment_prerequisites.send(session.course, staff_member_id=member.id,
                                              session_starts_at=rules.utc(session.starts_at))


def _arrive(session: TrainingSession, member: StaffMember, actor, source: str, now: datetime) -> Enrollment:
    """A new arrival (the caller holds the session's lock and has checked the rules): the
    status the seats give, the row, the counters, the event."""
    course = session.course
    quota = None
    seat = False
    makeup = session.makeup_for_id is not None
    if not rules.needs_approval(course, source, makeup) and session.confirmed_count < session.capacity:
        quotas = seats.lock_quotas(session.id)
        quota = next((q for q in quotas if q.municipality_id == member.municipality_id), None)
        seat = rules.seat_free(session, quota, rules.held_for_others(quotas, member.municipality_id))
    status = rules.arrival_status(course, source, seat, makeup)
    enrollment = seats.add_enrollment(session, member, status=status, source=source,
                                      actor_id=getattr(actor, "id", None), now=now)
    if status == PENDING:  # its first approval step (before the event: the notices follow the step)
        approvals.start(enrollment, member, course)
        db.session.flush()
    position = None
    reason: tuple[str, int] | None = None
    if status == WAITLISTED:
        # Last in the queue: everyone waiting now (read under the session's lock) plus one.
        position = session.waitlisted_count + 1
        reason = rules.waitlist_reason(session, quota), (quota.seats if quota is not None else 0)
        seats.note_waitlisted(session)
    if status == CONFIRMED:
        seats.count_seats(session, quota, +1)
    _changed(enrollment, None, actor, _NOTICE_FOR[status], position)
    if status == CONFIRMED:
        signals.attendees_changed.send(session, actor=actor)
    # Where they stand at commit (plain attributes, for the answer: not expired by the commit).
    enrollment.position_at_arrival = position
    enrollment.outcome_message = status_message(enrollment, position, reason)
    enrollment.outcome = Outcome(enrollment.id, status, enrollment.outcome_message)
    return enrollment


# ---------------------------------------------------------------- enroll


def enroll(session_id: int, staff_member_id: int, actor, source: str = SELF) -> Enrollment:
    """Enroll a staff member (by themselves, ``source="self"``; see ``nominate`` for admins).

    Returns the enrollment: pending_approval, confirmed or waitlisted (``outcome_message``
    says where they stand). Raises EnrollmentClosed, SessionStarted, NotEligible,
    AlreadyEnrolled, OverlapsConfirmed, NotFound, NotAllowed or EnrollmentBusy.
    """
    if source not in SOURCES:
        raise InvalidInput(_("申込の種別が正しくありません。"))
    return _atomic(_enroll_tx, session_id, staff_member_id, actor, source)


def enroll_self(session_id: int, user) -> Enrollment:
    """A signed-in learner enrolls themselves. Their roster entry is the one linked to them;
    on a first enrollment it is linked (or created) from their sign-in, in the same
    transaction. Raises ``NoRosterEntry`` when there is none to be had; otherwise as ``enroll``."""
    return _atomic(_enroll_tx, session_id, None, user, SELF)


def _enroll_tx(session_id: int, staff_member_id: int | None, actor, source: str) -> Enrollment:
    now = utcnow()
    begin_write()
    # The staff member's row first: their own requests queue on it.
    if staff_member_id is None:
        member = seats.lock_staff_of_user(actor.id)
        if member is None:
            member = staff_member_for(actor)  # link (or create) the roster entry on first use
            if member is None:
                raise NoRosterEntry(
                    _("職員名簿にあなたの登録がないため、申し込めません。所属の研修担当にお問い合わせください。"))
            db.session.flush()
    else:
        member = seats.lock_staff(staff_member_id)
        if source == SELF and actor is not None and member.user_id != actor.id:
            raise NotAllowed(_("本人以外の申込はできません。"))
    signals.enrollment_arriving.send(member, municipality_id=member.municipality_id)
    session, same_id, other_id = seats.lock_session_for(session_id, member.id)
    rules.check_open(session, session.course, now)
    _check_eligible(session, member)
    if same_id is not None:
        existing = db.session.get_one(Enrollment, same_id)
        raise AlreadyEnrolled(_already_message(existing), enrollment=existing)
    if other_id is not None:
        raise _overlap_error(db.session.get_one(Enrollment, other_id))
    return _arrive(session, member, actor, source, now)


# ---------------------------------------------------------------- nominate


@dataclass(frozen=True)
class NominationResult:
    enrollment: Enrollment
    created: bool  # False: the staff member was already active in the session (idempotent)
    message: str


def nominate(session_id: int, staff_member_id: int, actor, source: str = NOMINATION) -> NominationResult:
    """A municipal admin (or platform admin) enrolls a staff member of their municipality.

    No approval step but the organiser's 選考 where the course has one (``rules.needs_approval``).
    Nominating someone already active returns the existing enrollment
    with ``created=False`` (so a CSV uploaded twice changes nothing).
    """
    if source not in SOURCES or source == SELF:
        raise InvalidInput(_("申込の種別が正しくありません。"))
    return _atomic(_nominate_tx, session_id, staff_member_id, actor, source)


def _nominate_tx(session_id: int, staff_member_id: int, actor, source: str) -> NominationResult:
    now = utcnow()
    begin_write()
    member = seats.lock_staff(staff_member_id)
    _require_admin_of(actor, member)
    _refuse_placing_oneself(actor, member)
    signals.enrollment_arriving.send(member, municipality_id=member.municipality_id)
    session, same_id, other_id = seats.lock_session_for(session_id, member.id)
    if same_id is not None:
        existing = db.session.get_one(Enrollment, same_id)
        return NominationResult(existing, False, _already_message(existing))
    rules.check_open(session, session.course, now)
    _check_eligible(session, member)
    if other_id is not None:
        raise _overlap_error(db.session.get_one(Enrollment, other_id))
    enrollment = _arrive(session, member, actor, source, now)
    record_action(actor, "enrollment.nominate", "enrollment", enrollment.id, member.municipality_id,
                  session_id=session.id, staff_member_id=member.id, status=enrollment.status, source=source)
    return NominationResult(enrollment, True, enrollment.outcome_message)


def status_message(enrollment: Enrollment, position: int | None = None,
                   reason: tuple[str, int] | None = None) -> str:
    """Where the learner stands, in one sentence. ``reason``: why a new arrival waits
    (``rules.waitlist_reason`` and the municipality's 割当人数), known when it was decided;
    later only a full session is told apart from seats held by 割当人数."""
    if enrollment.status == CONFIRMED:
        return _("受講が確定しました。")
    if enrollment.status == WAITLISTED:
        if position is None:
            position = waitlist_position(enrollment)
        if reason is None:
            session = enrollment.session
            if seats.overlapping_confirmed(session, enrollment.staff_member_id) is not None:
                # Passed over by promotion (a place elsewhere at that time): not really "next".
                return _("同じ時間帯のほかの研修回の受講が決まっているため、席が空いても繰り上がりません（キャンセル待ち %(n)s 番目）。そちらを取り消すと、順番どおり繰り上がります。",
                         n=position)
            why = rules.FULL if session.confirmed_count >= session.capacity else rules.HELD
            seats_of_town = 0
        else:
            why, seats_of_town = reason
        if why == rules.QUOTA_FULL:
            return _("所属する区市町村の割当人数（%(seats)s 人）に達しているため、キャンセル待ち %(n)s 番目です。",
                     seats=seats_of_town, n=position)
        if why == rules.HELD:
            return _("空いている席は区市町村ごとの割当人数として確保されているため、キャンセル待ち %(n)s 番目です。", n=position)
        return _("定員に達しているため、キャンセル待ち %(n)s 番目です。", n=position)
    if enrollment.status == PENDING:
        return approvals.received_message(enrollment.approval_step)
    if enrollment.status == REJECTED:
        return _("申込は承認されませんでした。")
    return _("申込は取り消されました。")


# ---------------------------------------------------------------- cancel


def cancel_deadline(session: TrainingSession) -> datetime:
    return as_utc(session.cancel_deadline) or rules.utc(session.starts_at)


def can_cancel(enrollment: Enrollment, actor, now: datetime | None = None) -> tuple[bool, str]:
    """Whether ``actor`` may cancel ``enrollment`` now, and if not why (for the button)."""
    now = now or utcnow()
    if enrollment.status == CANCELLED:
        return False, _("この申込はすでに取り消されています。")
    if enrollment.status == REJECTED:
        return False, _("この申込は承認されなかったため、取り消すものはありません。")
    if enrollment.source == SERIES:
        return False, _("連続講座の一部の回です。取り消すときは最初の回の申込を取り消してください（すべての回が取り消されます）。")
    session = enrollment.session
    member = enrollment.staff_member
    if enrollment.status == CONFIRMED and as_utc(session.ends_at) <= now:
        # Held: the place is part of what happened (attendance, completion, the certificate);
        # cancelling it now would contradict them. Attendance is corrected, not the enrollment.
        return False, _("この研修回は終了しているため、受講確定の申込は取り消せません。出席の記録を直すときは、研修の担当者に出欠の修正を依頼してください。")
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
    member's municipality, the course's trainer and platform admins: any time until a
    confirmed place's session has ended (after the deadline it is recorded as a late
    cancellation). Anyone else's: NotFound, as for an id
    that names nothing.
    """
    return _atomic(_cancel_tx, enrollment_id, actor, (reason or "").strip())


def _cancel_tx(enrollment_id: int, actor, reason: str) -> Enrollment:
    now = utcnow()
    enrollment, session = _lock_enrollment(enrollment_id)
    if not _concerns(actor, enrollment):  # someone else's: answered as if there were none
        raise NotFound(_("申込が見つかりません。"))
    allowed, why = can_cancel(enrollment, actor, now)
    if not allowed:
        if enrollment.status not in ACTIVE_STATUSES:
            raise Conflict(why)
        raise NotAllowed(why)
    by_someone_else = enrollment.staff_member.user_id != getattr(actor, "id", None)
    _cancel_locked(enrollment, session, actor, reason, now, audited=by_someone_else)
    return enrollment


def _cancel_locked(enrollment: Enrollment, session: TrainingSession, actor, reason: str, now: datetime,
                   audited: bool, notice: str | None = "cancelled") -> int:
    """Cancel ``enrollment``, whose session the caller holds locked: the seat counted back and
    given to the waitlist (or the turn in the approval queue released), the change published
    (``notice`` None: the caller tells the learner). Returns how many enrollments were
    cancelled (a series' first part takes its later parts and make-ups)."""
    was_confirmed = enrollment.status == CONFIRMED
    kept_turn = enrollment.status == PENDING and enrollment.approval_step != RETURNED_STEP
    old = _set_status(enrollment, CANCELLED, actor, now)
    enrollment.late_cancellation = now > cancel_deadline(session)
    enrollment.reason = reason
    if was_confirmed:
        seats.count_seats(session, seats.lock_quota(session.id, enrollment.municipality_id), -1)
    db.session.flush()
    if audited:
        record_action(actor, "enrollment.cancel", "enrollment", enrollment.id, enrollment.municipality_id,
                      session_id=session.id, late=enrollment.late_cancellation, reason=reason)
    gone = _changed(enrollment, old, actor, notice)
    if was_confirmed:
        promote_waitlist(session, actor)
        signals.attendees_changed.send(session, actor=actor)
    elif kept_turn:
        _release_turn(session, actor)
    return 1 + len(gone)


# ---------------------------------------------------------------- departures (退職・転出)


def departed_places(now: datetime | None = None) -> list[int]:
    """Ids of the active enrollments that staff recorded as 退職・転出 (left, or leaving on a
    later day: a scheduled departure) hold in sessions on a later day than their departure
    (Tokyo dates) and not yet started. A later part of a 連続講座 is listed on its own only
    while the place in the series stays (its first part is on or before the departure day, or
    under way: that day's record is kept); otherwise its first part's enrollment is listed,
    and takes the parts with it."""
    now = as_utc(now or utcnow())
    first = aliased(TrainingSession)
    rows = db.session.execute(
        select(Enrollment.id, Enrollment.source, StaffMember.left_on, TrainingSession.starts_at,
               first.starts_at, first.status)
        .join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .outerjoin(first, first.id == TrainingSession.series_id)
        .where(StaffMember.left_on.is_not(None),  # left, or leaving on that day (scheduled)
               Enrollment.status.in_(ACTIVE_STATUSES),
               TrainingSession.status == SCHEDULED, TrainingSession.starts_at > now)
        .order_by(Enrollment.id)
    ).all()
    due = []
    for eid, source, left_on, starts_at, first_starts_at, first_status in rows:
        if left_on is None or not rules.after_departure(starts_at, left_on):
            continue
        if (source == SERIES and first_starts_at is not None and first_status == SCHEDULED
                and as_utc(first_starts_at) > now and rules.after_departure(first_starts_at, left_on)):
            continue  # the whole series goes with its first part's enrollment (listed itself)
        due.append(eid)
    return due


def withdraw_departed_staff(now: datetime | None = None) -> int:
    """Staff recorded as 退職・転出 give up their places in sessions after their departure day:
    each such enrollment (confirmed, waitlisted or waiting for approval) is cancelled with the
    reason 「退職・転出」, its seat going at once to the waitlist, each in a transaction of its
    own — a 連続講座's places together, in one (``_withdraw_from_series``). The roster publishes
    the departure (``staff_member_left``) and the worker runs this soon after; a periodic run
    catches any departure recorded another way. Returns how many enrollments were cancelled
    (a series' parts and make-ups each counted)."""
    due = departed_places(now)
    db.session.rollback()  # (the read above; each cancellation is its own write transaction)
    return sum(_atomic(_withdraw_tx, enrollment_id) for enrollment_id in due)


def _withdraw_tx(enrollment_id: int) -> int:
    now = utcnow()
    begin_write()
    found = db.session.execute(
        select(Enrollment.staff_member_id, TrainingSession.series_id)
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id).where(Enrollment.id == enrollment_id)
    ).first()
    if found is None:
        return 0
    member_id, series_id = found
    if series_id is not None:  # under the series' first part's lock, as every change of its places
        return _withdraw_from_series(series_id, member_id, now)
    enrollment, session = _lock_enrollment(enrollment_id)
    # Read again under the lock: the entry may have returned, the request ended, the session begun.
    if enrollment.status not in ACTIVE_STATUSES or not _departs_before(enrollment.staff_member, session, now):
        return 0
    return _cancel_locked(enrollment, session, None, _("退職・転出"), now, audited=True)


def _departs_before(member: StaffMember, session: TrainingSession, now: datetime) -> bool:
    """The member leaves on an earlier day than the session, which is still to come."""
    return (member.left_on is not None and session.status == SCHEDULED and not rules.has_started(session, now)
            and rules.after_departure(session.starts_at, member.left_on))


def _withdraw_from_series(first_id: int, member_id: int, now: datetime) -> int:
    """A departed member's places in a 連続講座, in one transaction and one notice. The series'
    first part after the departure: its enrollment is cancelled and takes the parts and
    make-ups with it. Otherwise (the first day is on or before the departure day, or under
    way, and stays on record) the make-ups and later parts after the departure day and not
    yet started are given up: each seat counted back, a make-up's going to its waitlist.
    Returns how many enrollments were cancelled."""
    first = seats.lock_session(first_id)
    member = db.session.scalar(select(StaffMember).where(StaffMember.id == member_id)
                               .execution_options(populate_existing=True))
    if member is None or member.left_on is None:
        return 0
    reason = _("退職・転出")
    place = db.session.scalar(select(Enrollment).where(
        Enrollment.session_id == first.id, Enrollment.staff_member_id == member_id,
        Enrollment.status.in_(ACTIVE_STATUSES)).execution_options(populate_existing=True))
    if place is not None and _departs_before(member, first, now):
        return _cancel_locked(place, first, None, reason, now, audited=True)
    # make-ups, then parts: _follow_series's order
    gone = _leave_makeups(first.id, member_id, None, reason, now,
                          only=lambda makeup: _departs_before(member, makeup, now))
    later = seats.lock_later_parts(first.id)
    mirrored = {e.session_id: e for e in db.session.scalars(
        select(Enrollment).where(Enrollment.staff_member_id == member_id, Enrollment.source == SERIES,
                                 Enrollment.status == CONFIRMED, Enrollment.session_id.in_([p.id for p in later]))
        .execution_options(populate_existing=True))} if later else {}
    for part in later:
        enrollment = mirrored.get(part.id)
        if enrollment is not None and _departs_before(member, part, now):
            _leave_part(enrollment, part, None, reason, now)
            record_action(None, "enrollment.cancel", "enrollment", enrollment.id, enrollment.municipality_id,
                          session_id=part.id, late=False, reason=reason)
            gone.append(enrollment)
    _tell_series_left(member_id, first.id, gone, None)
    return len(gone)


# ---------------------------------------------------------------- promotion


def promote_waitlist(session: TrainingSession, actor=None) -> list[Enrollment]:
    """Fill free seats with the earliest-arrived waitlisted people who are eligible now
    (their municipality's quota has room, no overlapping confirmed session, still active).

    The caller holds the session lock (``lock_session``) and commits; never promotes
    after the session started. Returns the promoted enrollments.
    """
    now = utcnow()
    if session.status != SCHEDULED or rules.has_started(session, now):
        return []
    promoted: list[Enrollment] = []
    all_quotas = seats.lock_quotas(session.id)
    quotas: dict[int, SessionQuota] = {q.municipality_id: q for q in all_quotas}
    full: set[int] = set()  # municipalities whose quota is used up
    # Requests still with their approvers keep their turn (only courses with approval steps have them).
    pending = seats.pending_in_turn(session.id) if rules.approval_steps(session.course) else []
    for enrollment in seats.waitlisted(session.id):
        if session.confirmed_count >= session.capacity:
            break
        mid = enrollment.municipality_id
        if mid in full:
            continue
        quota = quotas.get(mid)
        if not rules.seat_free(session, quota, rules.held_for_others(all_quotas, mid),
                               rules.ahead_of(pending, enrollment.arrival_seq), set(quotas)):
            if quota is not None:
                full.add(mid)
            continue
        member = seats.lock_staff(enrollment.staff_member_id)
        if not member.is_active or seats.overlapping_confirmed(session, member.id) is not None:
            continue
        old = _set_status(enrollment, CONFIRMED, actor, now)
        seats.count_seats(session, quota, +1)
        seats.note_waitlisted(session, -1)
        _changed(enrollment, old, actor, "promoted")
        promoted.append(enrollment)
    return promoted


# ---------------------------------------------------------------- approval


def approve_enrollment(enrollment_id: int, actor) -> Enrollment:
    """Pending → confirmed if a seat is free (capacity and quota), else waitlisted."""
    return _atomic(_approve_tx, enrollment_id, actor)


def _require_approver(actor, enrollment: Enrollment, member: StaffMember) -> str:
    """The step ``actor`` answers for this request: its 所属長 (or deputy) at the supervisor
    step, its training office (or a platform admin) at the office step."""
    step = enrollment.approval_step or OFFICE_STEP
    if step == SELECTION_STEP:  # decided with the others on the organiser's 選考 page
        if not (_is_trainer_of(actor, enrollment.session) or _is_admin_of(actor, member)):
            raise NotAllowed(_("この職員の申込を操作する権限がありません。"))
        raise Conflict(_("この申込は主催者の選考を待っています。選考の結果が決まるまでお待ちください。"))
    if step == RETURNED_STEP:
        if not (approvals.is_supervisor_of(actor, member) or _is_admin_of(actor, member)):
            raise NotAllowed(_("この職員の申込を操作する権限がありません。"))
        raise Conflict(_("この申込は差し戻し中です。申込者が申し込み直すまで操作できません。"))
    if step == SUPERVISOR_STEP:
        if approvals.is_supervisor_of(actor, member):
            return step
        if approvals.supervisors_of(member):
            raise NotAllowed(_("この申込は所属長の承認を待っています。所属長（または代理）だけが承認できます。"))
        # Nobody heads the 所属 now (a vacancy, a transfer): the training office answers.
        _require_admin_of(actor, member)
        _refuse_own_request(actor, member)
        approvals.record(enrollment, SUPERVISOR_STEP, SKIPPED_NO_APPROVER, None)
        return OFFICE_STEP
    _require_admin_of(actor, member)
    _refuse_own_request(actor, member)
    _refuse_second_step(actor, enrollment, step)
    return step


def _refuse_own_request(actor, member: StaffMember) -> None:
    """Nobody decides their own request: a training officer's own 受講申込 is answered by
    another officer of the municipality or a platform admin (as a 所属長's goes to theirs)."""
    if member.user_id is not None and member.user_id == getattr(actor, "id", None):
        raise NotAllowed(_("ご自身の申込は承認・却下・差し戻しできません。同じ研修担当のほかの方か、システム管理者が判断します。"))


def _refuse_placing_oneself(actor, member: StaffMember) -> None:
    """A training officer neither nominates nor swaps themselves in: that would give them a
    place no one else approved, round the own-request rule. They apply as anyone does, and
    another officer or a platform admin decides."""
    if member.user_id is not None and member.user_id == getattr(actor, "id", None):
        raise NotAllowed(_("ご自身を推薦・差し替えの対象にはできません。ご自身で申し込むと、同じ研修担当のほかの方か、システム管理者が判断します。"))


def _refuse_second_step(actor, enrollment: Enrollment, step: str) -> None:
    """Nobody answers two steps of one request: whoever approved an earlier step (a 所属長's
    stand-in who is also a 研修担当) leaves this one to another approver, or the two steps
    would be one person's decision."""
    earlier = approvals.approved_earlier(approvals.history([enrollment.id]).get(enrollment.id, []), actor)
    if earlier is not None:
        raise NotAllowed(approvals.approved_earlier_message(earlier, step))


def _approve_tx(enrollment_id: int, actor) -> Enrollment:
    now = utcnow()
    enrollment, session = _lock_enrollment(enrollment_id)
    member = seats.lock_staff(enrollment.staff_member_id)
    if enrollment.status != PENDING:
        _require_admin_of(actor, member)
        raise Conflict(_("この申込は承認待ちではありません。"))
    step = _require_approver(actor, enrollment, member)
    if session.status != SCHEDULED or rules.has_started(session, now):
        raise SessionStarted(_("この研修回はすでに開始しているか中止されたため、承認できません。"))
    approvals.record(enrollment, step, APPROVED, actor)
    following = rules.step_after(session.course, step)
    if following is not None:  # approved at this step: the next one answers now
        enrollment.approval_step = following
        db.session.flush()
        record_action(actor, "enrollment.approve_step", "enrollment", enrollment.id, enrollment.municipality_id,
                      session_id=session.id, step=step)
        signals.approval_step_reached.send(enrollment, step=following, actor=actor)
        return enrollment
    enrollment.approval_step = None
    _check_eligible(session, member)
    _refuse_overlap(session, member.id)
    status, quota = _decided_place(session, enrollment.municipality_id, enrollment.arrival_seq)
    old = _set_status(enrollment, status, actor, now)
    enrollment.decided_at = now
    enrollment.decided_by_id = actor.id
    db.session.flush()
    if status == CONFIRMED:
        seats.count_seats(session, quota, +1)
    else:
        seats.note_waitlisted(session)
    record_action(actor, "enrollment.approve", "enrollment", enrollment.id, enrollment.municipality_id,
                  session_id=session.id, status=status)
    _changed(enrollment, old, actor, _NOTICE_FOR[status])
    if status == CONFIRMED:
        signals.attendees_changed.send(session, actor=actor)
    return enrollment


def _decided_place(session: TrainingSession, municipality_id: int,
                   arrival_seq: int) -> tuple[str, SessionQuota | None]:
    """Where a request through its last approval step goes: a free seat (capacity and the
    municipality's quota) or the waitlist, in turn — requests that arrived earlier and are
    still with their approvers keep their seat. Returns the status and the quota row (locked)."""
    quotas = seats.lock_quotas(session.id)
    quota = next((q for q in quotas if q.municipality_id == municipality_id), None)
    ahead = rules.ahead_of(seats.pending_in_turn(session.id), arrival_seq)
    free = rules.seat_free(session, quota, rules.held_for_others(quotas, municipality_id), ahead,
                           {q.municipality_id for q in quotas})
    return (CONFIRMED if free else WAITLISTED), quota


def reject_enrollment(enrollment_id: int, actor, reason: str) -> Enrollment:
    """Pending → rejected, with the reason shown to the learner (required)."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("承認しない理由を入力してください。"))
    return _atomic(_reject_tx, enrollment_id, actor, reason)


def _reject_tx(enrollment_id: int, actor, reason: str) -> Enrollment:
    now = utcnow()
    enrollment, session = _lock_enrollment(enrollment_id)
    if enrollment.status != PENDING:
        _require_admin_of(actor, enrollment.staff_member)
        raise Conflict(_("この申込は承認待ちではありません。"))
    step = _require_approver(actor, enrollment, enrollment.staff_member)
    approvals.record(enrollment, step, STEP_REJECTED, actor, reason)
    enrollment.approval_step = None
    old = _set_status(enrollment, REJECTED, actor, now)
    enrollment.decided_at = now
    enrollment.decided_by_id = actor.id
    enrollment.reason = reason
    db.session.flush()
    record_action(actor, "enrollment.reject", "enrollment", enrollment.id, enrollment.municipality_id,
                  session_id=session.id, reason=reason)
    _changed(enrollment, old, actor, "rejected")
    _release_turn(session, actor)
    return enrollment


def _release_turn(session: TrainingSession, actor) -> None:
    """A request that kept its turn no longer waits for its approvers (declined, returned,
    cancelled): the seat it kept goes to the waitlist, in arrival order."""
    if session.waitlisted_count > 0 and promote_waitlist(session, actor):
        signals.attendees_changed.send(session, actor=actor)


def return_enrollment(enrollment_id: int, actor, reason: str) -> Enrollment:
    """差し戻し: the approver of the request's step sends it back to the learner for a change,
    with the reason (required, shown to the learner). It holds no seat meanwhile."""
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("差し戻す理由を入力してください。"))
    return _atomic(_return_tx, enrollment_id, actor, reason)


def _return_tx(enrollment_id: int, actor, reason: str) -> Enrollment:
    enrollment, session = _lock_enrollment(enrollment_id)
    if enrollment.status != PENDING:
        _require_admin_of(actor, enrollment.staff_member)
        raise Conflict(_("この申込は承認待ちではありません。"))
    step = _require_approver(actor, enrollment, enrollment.staff_member)
    approvals.record(enrollment, step, RETURNED, actor, reason)
    enrollment.approval_step = RETURNED_STEP
    enrollment.reason = reason
    db.session.flush()
    record_action(actor, "enrollment.return", "enrollment", enrollment.id, enrollment.municipality_id,
                  session_id=session.id, reason=reason)
    signals.approval_step_reached.send(enrollment, step=RETURNED_STEP, actor=actor)
    _release_turn(session, actor)
    return enrollment


def resubmit_enrollment(enrollment_id: int, user, note: str = "") -> Enrollment:
    """The learner sends a returned request again (with an optional note for the approvers);
    it goes through the approval steps from the first, while the session still takes requests."""
    note = (note or "").strip()[:1000]
    return _atomic(_resubmit_tx, enrollment_id, user, note)


def _resubmit_tx(enrollment_id: int, user, note: str) -> Enrollment:
    enrollment, session = _lock_enrollment(enrollment_id)
    member = enrollment.staff_member
    if member.user_id != getattr(user, "id", None):
        raise NotFound(_("申込が見つかりません。"))
    if enrollment.status != PENDING or enrollment.approval_step != RETURNED_STEP:
        raise Conflict(_("この申込は差し戻されていません。"))
    rules.check_open(session, session.course, utcnow())
    approvals.record(enrollment, RETURNED_STEP, RESUBMITTED, user, note)
    enrollment.reason = ""
    approvals.start(enrollment, member, session.course)
    db.session.flush()
    record_action(user, "enrollment.resubmit", "enrollment", enrollment.id, enrollment.municipality_id,
                  session_id=session.id)
    signals.approval_step_reached.send(enrollment, step=enrollment.approval_step, actor=user)
    return enrollment


# ---------------------------------------------------------------- 選考 (the organiser decides)

# What the organiser may decide for each request waiting for 選考.
SELECT, RESERVE, DECLINE = "select", "reserve", "decline"
SELECTION_CHOICES = (SELECT, RESERVE, DECLINE)


@dataclass(frozen=True)
class SelectionResult:
    selected: int
    reserved: int
    declined: int


def decide_selection(session_id: int, decisions: dict[int, str], actor, reason: str = "") -> SelectionResult:
    """選考: the organiser (the course's trainer, or a platform admin) decides requests waiting
    for selection in one go — 受講決定 (a seat), 補欠 (the waitlist, in arrival order) or 見送り
    (declined, with ``reason``, required then). All or nothing: more places than the session
    (and each municipality's 割当人数) has free is refused and nothing changes. Requests not in
    ``decisions`` keep waiting; ids that are not this session's waiting requests are refused."""
    reason = (reason or "").strip()[:1000]
    if any(choice not in SELECTION_CHOICES for choice in decisions.values()):
        raise InvalidInput(_("選考の結果は「受講決定」「補欠」「見送り」から選んでください。"))
    if DECLINE in decisions.values() and not reason:
        raise InvalidInput(_("見送る申込があるときは、申込者に伝える理由を入力してください。"))
    return _atomic(_selection_tx, session_id, dict(decisions), actor, reason)


def decide_selection_in_order(session_id: int, actor) -> SelectionResult:
    """選考 by arrival order: the waiting requests take the free seats first come, first
    served; the rest become 補欠 (the waitlist, in the same order)."""
    return _atomic(_selection_tx, session_id, None, actor, "")


def waiting_for_selection(session_id: int) -> list[Enrollment]:
    """The session's requests waiting for 選考, in arrival order."""
    return list(db.session.scalars(
        select(Enrollment).options(joinedload(Enrollment.staff_member), joinedload(Enrollment.municipality))
        .where(Enrollment.session_id == session_id, Enrollment.status == PENDING,
               Enrollment.approval_step == SELECTION_STEP)
        .order_by(Enrollment.arrival_seq)))


def _selection_blocker(session: TrainingSession, member: StaffMember) -> str:
    """Why the staff member cannot take a seat of the session now ("" if they can)."""
    if not member.is_active:
        return _("%(name)s さんは在籍していないため、受講決定できません。", name=member.full_name)
    if seats.overlapping_confirmed(session, member.id) is not None:
        return _("%(name)s さんは同じ時間帯の別の研修回に参加が決まっているため、受講決定できません。", name=member.full_name)
    return ""


def _selection_tx(session_id: int, decisions: dict[int, str] | None, actor, reason: str) -> SelectionResult:
    now = utcnow()
    session = seats.lock_session(session_id)
    if not (_is_trainer_of(actor, session) or _is_platform_admin(actor)):
        raise NotAllowed(_("この研修回の選考を行う権限がありません。"))
    if session.status != SCHEDULED or rules.has_started(session, now):
        raise SessionStarted(_("この研修回はすでに開始しているか中止されたため、選考できません。"))
    waiting = {e.id: e for e in db.session.scalars(
        select(Enrollment).where(Enrollment.session_id == session.id, Enrollment.status == PENDING,
                                 Enrollment.approval_step == SELECTION_STEP)
        .order_by(Enrollment.arrival_seq).execution_options(populate_existing=True))}
    if decisions is not None and any(eid not in waiting for eid in decisions):
        raise Conflict(_("選考を待っていない申込が含まれています。ページを読み込み直してから、もう一度選考してください。"))
    quotas = seats.lock_quotas(session.id)
    by_municipality = {q.municipality_id: q for q in quotas}
    quota_ids = set(by_municipality)
    counts = {SELECT: 0, RESERVE: 0, DECLINE: 0}
    confirmed_any = False
    free_before = max(session.capacity - session.confirmed_count, 0)
    for eid, enrollment in waiting.items():  # in arrival order
        member = seats.lock_staff(enrollment.staff_member_id)
        quota = by_municipality.get(enrollment.municipality_id)
        free = rules.seat_free(session, quota, rules.held_for_others(quotas, enrollment.municipality_id),
                               None, quota_ids)
        choice = decisions.get(eid) if decisions is not None else (SELECT if free else RESERVE)
        if choice is None:
            continue
        if choice == SELECT:
            blocker = _selection_blocker(session, member)
            if decisions is None and blocker:  # in order: they wait on the waitlist instead
                choice = RESERVE
            elif not free:
                raise Conflict(_("定員（または割当人数）を超えるため、受講決定できません。受講決定にできる残りは %(free)d 人です（選んだのは %(chosen)d 人）。",
                                 free=free_before, chosen=sum(1 for c in (decisions or {}).values() if c == SELECT)))
            elif blocker:
                raise Conflict(blocker)
        status = {SELECT: CONFIRMED, RESERVE: WAITLISTED, DECLINE: REJECTED}[choice]
        approvals.record(enrollment, SELECTION_STEP, {SELECT: SELECTED, RESERVE: RESERVED, DECLINE: NOT_SELECTED}[choice],
                         actor, reason if choice == DECLINE else "")
        enrollment.approval_step = None
        old = _set_status(enrollment, status, actor, now)
        enrollment.decided_at = now
        enrollment.decided_by_id = actor.id
        if choice == DECLINE:
            enrollment.reason = reason
        db.session.flush()
        if status == CONFIRMED:
            seats.count_seats(session, quota, +1)
            confirmed_any = True
        elif status == WAITLISTED:
            seats.note_waitlisted(session)
        _changed(enrollment, old, actor, {CONFIRMED: "confirmed", WAITLISTED: "waitlisted", REJECTED: "rejected"}[status])
        counts[choice] += 1
    if not any(counts.values()):
        raise InvalidInput(_("選考の結果を選んだ申込がありません。"))
    record_action(actor, "enrollment.select", "training_session", session.id, None, selected=counts[SELECT],
                  reserved=counts[RESERVE], declined=counts[DECLINE], in_order=decisions is None)
    if confirmed_any:
        signals.attendees_changed.send(session, actor=actor)
    return SelectionResult(counts[SELECT], counts[RESERVE], counts[DECLINE])


# ---------------------------------------------------------------- swap (差し替え)


def swap_nominee(enrollment_id: int, new_staff_member_id: int, actor, reason: str = "") -> Enrollment:
    """Replace a nominee with another staff member of the same municipality, keeping the
    seat (or waitlist place) and the order of arrival. Returns the new enrollment."""
    return _atomic(_swap_tx, enrollment_id, new_staff_member_id, actor, (reason or "").strip())


def _ended_for_swap(enrollment: Enrollment) -> str:
    """Why an enrollment that is no longer active cannot be swapped (a stale page's button)."""
    successor = db.session.scalar(select(Enrollment).where(Enrollment.replaces_enrollment_id == enrollment.id))
    if successor is not None:
        return _("この申込はすでに %(name)s さんに差し替えられています。", name=successor.staff_member.full_name)
    if enrollment.status == REJECTED:
        return _("承認されなかった申込は差し替えられません。")
    return _("取り消し済みの申込は差し替えられません。")


def _swap_tx(enrollment_id: int, new_staff_member_id: int, actor, reason: str) -> Enrollment:
    now = utcnow()
    old_enrollment, session = _lock_enrollment(enrollment_id)
    old_member = seats.lock_staff(old_enrollment.staff_member_id)
    _require_admin_of(actor, old_member)
    if old_enrollment.status not in ACTIVE_STATUSES:
        raise Conflict(_ended_for_swap(old_enrollment))
    if new_staff_member_id == old_member.id:
        raise InvalidInput(_("同じ職員には差し替えられません。"))
    new_member = seats.lock_staff(new_staff_member_id)
    _require_admin_of(actor, new_member)
    _refuse_placing_oneself(actor, new_member)
    if new_member.municipality_id != old_enrollment.municipality_id:
        raise NotAllowed(_("差し替えは同じ自治体の職員どうしに限られます。"))
    if session.status != SCHEDULED or rules.has_started(session, now):
        raise SessionStarted(_("この研修回はすでに開始しているか中止されたため、差し替えできません。"))
    _check_eligible(session, new_member)
    existing = seats.active_enrollment(session.id, new_member.id)
    if existing is not None:
        raise AlreadyEnrolled(_("差し替え先の職員はすでにこの研修回に申し込んでいます。"), enrollment=existing)
    status = old_enrollment.status
    step = rules.step_after_swap(session.course, old_enrollment.approval_step) if status == PENDING else None
    previous = _set_status(old_enrollment, CANCELLED, actor, now)
    old_enrollment.reason = reason or _("差し替え")
    db.session.flush()  # the old row leaves the unique index before the new one enters it
    quota = None
    if status == PENDING and step is None:  # the swap was the last step: the request is decided
        status, quota = _decided_place(session, new_member.municipality_id, old_enrollment.arrival_seq)
    if status == CONFIRMED:
        _refuse_overlap(session, new_member.id)
    # The seat (or waitlist place, or turn) passes on: same arrival number.
    new_enrollment = seats.add_enrollment(session, new_member, status=status, source=SWAP,
                                          actor_id=getattr(actor, "id", None), now=now,
                                          arrival_seq=old_enrollment.arrival_seq, replaces=old_enrollment)
    if previous == PENDING:
        new_enrollment.approval_step = step
        if status != PENDING:  # decided now: the place is counted as an approval's is
            new_enrollment.decided_at, new_enrollment.decided_by_id = now, getattr(actor, "id", None)
            if status == CONFIRMED:
                seats.count_seats(session, quota, +1)
            else:
                seats.note_waitlisted(session)
        db.session.flush()
    record_action(actor, "enrollment.swap", "enrollment", new_enrollment.id, new_enrollment.municipality_id,
                  session_id=session.id, replaced_enrollment_id=old_enrollment.id,
                  from_staff_member_id=old_member.id, to_staff_member_id=new_member.id, reason=reason)
    _changed(old_enrollment, previous, actor, "cancelled")
    _changed(new_enrollment, None, actor, _NOTICE_FOR[status])
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
    session = seats.lock_session(session_id)
    if not (_is_platform_admin(actor) or _is_trainer_of(actor, session)):
        raise NotAllowed(_("この研修回の申込を一括で取り消す権限がありません。"))
    return cancel_all_enrollments(session, actor, reason)


def cancel_all_enrollments(session: TrainingSession, actor, reason: str) -> list[Enrollment]:
    """Cancel every active enrollment of ``session``, whose row the caller holds locked (in
    the caller's transaction); the counters go back to zero."""
    now = utcnow()
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
    for quota in seats.lock_quotas(session.id):
        quota.confirmed_count = 0
    db.session.flush()
    for enrollment, old in cancelled:
        _changed(enrollment, old, actor, "cancelled")
    if had_confirmed:
        signals.attendees_changed.send(session, actor=actor)
    if cancelled:
        record_action(actor, "enrollment.cancel_session", "training_session", session.id, None,
                      count=len(cancelled), reason=reason)
    return [e for e, _old in cancelled]


# ---------------------------------------------------------------- who may act


def concerns(actor, enrollment: Enrollment) -> bool:
    """Whether ``enrollment`` is ``actor``'s business at all (else answered as missing)."""
    return _concerns(actor, enrollment)


def _concerns(actor, enrollment: Enrollment) -> bool:
    """Whether ``enrollment`` is ``actor``'s business at all: their own, or one they may
    administer (platform admins, the municipality's admins, the course's trainer)."""
    if actor is None:
        return False
    return (
        enrollment.staff_member.user_id == actor.id
        or _is_platform_admin(actor)
        or _is_municipal_admin_of(actor, enrollment.staff_member.municipality_id)
        or _is_municipal_admin_of(actor, enrollment.municipality_id)
        or _is_trainer_of(actor, enrollment.session)
    )


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


def _is_admin_of(actor, member: StaffMember) -> bool:
    return _is_platform_admin(actor) or _is_municipal_admin_of(actor, member.municipality_id)


def _require_admin_of(actor, member: StaffMember) -> None:
    if not _is_admin_of(actor, member):
        raise NotAllowed(_("この職員の申込を操作する権限がありません。"))
