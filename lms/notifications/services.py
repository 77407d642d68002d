"""Queueing notifications in the outbox (in the caller's transaction) and delivering them.

``queue_enrollment_notice`` adds an OutboxMail row in the caller's transaction, so the
notice is committed together with the change or not at all; after that commit the worker
is asked to deliver promptly, and a periodic task catches anything left over.

An enrollment's status notice is queued by the receiver of ``enrollment_status_changed``
while the session's row is locked: the row then holds only what identifies the notice
(enrollment, kind, address), and its subject, body and calendar file are composed after
the commit, outside the lock (``compose_queued_mail``: by the worker that the commit wakes,
and by every delivery before it sends a row not composed yet). No mail is lost if the
process stops in between: the row is committed and the periodic delivery composes it.

Delivery claims each row with one conditional UPDATE (``status='queued'`` → ``sending``),
so two workers never send the same row; a claim left by a worker that died mid-send is
taken over after ``LMS_OUTBOX_STALE_SECONDS``; failures are retried with exponential
backoff up to ``LMS_MAIL_MAX_ATTEMPTS`` and then marked failed (visible to admins, who
can retry). A mail failure never touches the enrollment.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import joinedload
from sqlalchemy.sql.elements import ColumnElement

from lms.audit.services import record_action
from lms.auth.models import (
    MUNICIPAL_ADMIN,
    NOTICE_BOTH,
    NOTICE_CHANNELS,
    NOTICE_MAIL,
    NOTICE_TEAMS,
    PLATFORM_ADMIN,
    User,
    UserRole,
)
from lms.common.after_commit import after_commit
from lms.common.database import LIKE_ESCAPE, begin_write, like_escaped
from lms.common.errors import Conflict, InvalidInput, NotFound
from lms.common.jobs import huey
from lms.common.timeutil import TOKYO, as_utc, utcnow
from lms.courses.models import SCHEDULED, TrainingSession
from lms.enrollment.approvals import supervisors_of
from lms.enrollment.models import CONFIRMED as ENROLLMENT_CONFIRMED
from lms.enrollment.models import OFFICE_STEP, RESUBMITTED, SUPERVISOR_STEP, Enrollment, EnrollmentApproval
from lms.enrollment.models import PENDING as ENROLLMENT_PENDING
from lms.enrollment.queries import waitlist_positions
from lms.extensions import db
from lms.notifications.channels import ChannelDeferred, ChannelUnavailable, registered_channel
from lms.notifications.compose import (
    compose_approval_request,
    compose_enrollment_notice,
    compose_moved_notice,
    compose_report_returned,
    compose_series_cancellation,
)
from lms.notifications.models import (
    FAILED,
    QUEUED,
    SENDING,
    SENT,
    SKIPPED,
    TEAMS_NOT_USED,
    TEAMS_PENDING,
    TEAMS_SENT,
    TEAMS_UNAVAILABLE,
    OutboxMail,
)
from lms.notifications.tasks import deliver_outbox_soon
from lms.roster.models import StaffMember

logger = logging.getLogger(__name__)

# Kinds of enrollment notification.
CONFIRMED = "confirmed"
WAITLISTED = "waitlisted"
PENDING = "pending"
PROMOTED = "promoted"
REJECTED = "rejected"
CHANGED = "changed"
CANCELLED = "cancelled"
REMINDER = "reminder"
RETURNED = "returned"
KINDS = (CONFIRMED, WAITLISTED, PENDING, PROMOTED, REJECTED, CHANGED, CANCELLED, REMINDER, RETURNED)
# A notice to the training offices (not about one enrollment): lms.common.signals.office_notice.
OFFICE = "office"
# An enrollment awaiting approval, told to the training office (研修担当) of its municipality.
APPROVAL = "approval"
REPORT_RETURNED = "report_returned"


DEFAULT_MAX_ATTEMPTS = 8
DEFAULT_STALE_SECONDS = 15 * 60
DEFAULT_BACKOFF_SECONDS = 60
MAX_BACKOFF_SECONDS = 6 * 60 * 60


def _setting(name: str, default: int) -> int:
    value = current_app.config.get(name)
    return default if value in (None, "") else int(value)


# ---------------------------------------------------------------- queueing


_INSERT_MAIL = insert(OutboxMail)


def queue_enrollment_notice(
    enrollment, kind: str, *, dedupe_suffix: str = "", changes: dict | None = None, position: int | None = None,
    fresh: bool = False, compose: bool = True,
) -> OutboxMail | None:
    """Queue the ``kind`` notice for ``enrollment`` in the current transaction.

    Idempotent per (enrollment, kind, dedupe_suffix): a retried transaction or a second
    call returns the row already queued. ``changes`` ({field: (old, new)}) is described in
    "changed" notices; ``position`` is the waitlist position when the caller knows it;
    ``fresh``: the enrollment was inserted in this very transaction, so no notice of it can
    exist yet and the lookup is skipped (the unique key still guards). ``compose=False``:
    the row holds what identifies the notice, and its texts are composed after the commit
    (``compose_queued_mail``). Returns None when the staff member has no mail address.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    member = enrollment.staff_member
    address = (member.email or member.sign_in_name or "").strip()
    if not address or "@" not in address:
        return None
    if enrollment.id is None:
        db.session.flush()
    key = f"enrollment:{enrollment.id}:{kind}:{dedupe_suffix}"
    if not fresh:
        existing = db.session.scalar(select(OutboxMail).where(OutboxMail.dedupe_key == key))
        if existing is not None:
            return existing
    subject = body = ics = ""
    if compose:
        with db.session.no_autoflush:
            subject, body, ics = compose_enrollment_notice(enrollment, kind, changes=changes, position=position)
    _deliver_after_commit()
    values = {
        "dedupe_key": key,
        "kind": kind,
        "to_address": address,
        "to_name": member.full_name,
        "subject": subject[:300],
        "body_text": body,
        "ics": ics,
        "staff_member_id": member.id,
        "enrollment_id": enrollment.id,
        "municipality_id": member.municipality_id,
        "status": QUEUED,
        "attempts": 0,
        "next_attempt_at": utcnow(),
    }
    if fresh and not compose:
        # A new enrollment's notice, queued under the session's lock: one INSERT (built
        # once), no object, on the transaction's connection.
        db.session.connection().execute(_INSERT_MAIL, values)
        return None
    mail = OutboxMail(**values)
    db.session.add(mail)
    return mail


def queue_series_cancelled_notice(enrollment_ids: list[int]) -> OutboxMail | None:
    """One "cancelled" notice for a learner's places in a 連続講座 that went together (the
    enrollments of its days and make-ups, in date order), listing every one, with a calendar
    cancellation for each. One enrollment alone gets the ordinary notice. Composed now (the
    list is known only in this transaction); keyed as the first enrollment's notice."""
    enrollments = [e for e in (db.session.get(Enrollment, eid) for eid in enrollment_ids) if e is not None]
    if len(enrollments) <= 1:
        return queue_enrollment_notice(enrollments[0], CANCELLED, compose=False) if enrollments else None
    lead = enrollments[0]
    mail = queue_enrollment_notice(lead, CANCELLED, compose=False)
    if mail is None or mail.status != QUEUED:
        return mail
    with db.session.no_autoflush:
        composed = compose_series_cancellation(enrollments)
    mail.subject, mail.body_text, mail.ics = composed.subject[:300], composed.body, composed.ics
    return mail


def _not_composed():
    return and_(OutboxMail.status == QUEUED, OutboxMail.body_text == "", OutboxMail.enrollment_id.is_not(None))


def is_uncomposed(mail: OutboxMail) -> bool:
    """Queued without its texts yet (the worker composes it before sending)."""
    return mail.status == QUEUED and mail.body_text == "" and mail.enrollment_id is not None


def compose_mail(mail: OutboxMail) -> None:
    """Fill in the subject, body and calendar file of a row queued uncomposed (the caller commits)."""
    enrollment = db.session.get(Enrollment, mail.enrollment_id)
    if enrollment is None:
        return
    with db.session.no_autoflush:
        composed = compose_enrollment_notice(enrollment, mail.kind)
    mail.subject, mail.body_text, mail.ics = composed.subject[:300], composed.body, composed.ics


def compose_queued_mail(limit: int = 500, *, ids: list[int] | None = None) -> int:
    """Compose the rows that were queued without their texts (of ``ids`` if given; commits).
    Returns how many.

    In bulk, as a rush leaves them: the enrollments with their session, course, staff member
    and account in one statement, the waitlist positions in one per session; the texts are
    composed while only reading, then written in one short transaction, each row only if
    still uncomposed (so a row composed meanwhile by another worker keeps its texts, and
    SQLite's single writer is held for the writes only)."""
    query = select(OutboxMail.id, OutboxMail.enrollment_id, OutboxMail.kind).where(_not_composed())
    if ids is not None:
        query = query.where(OutboxMail.id.in_(ids))
    queued = db.session.execute(query.order_by(OutboxMail.id).limit(limit)).all()
    if not queued:
        db.session.rollback()
        return 0
    enrollments = {e.id: e for e in db.session.scalars(
        select(Enrollment).where(Enrollment.id.in_({enrollment_id for _id, enrollment_id, _kind in queued}))
        .options(joinedload(Enrollment.session).joinedload(TrainingSession.course),
                 joinedload(Enrollment.staff_member).joinedload(StaffMember.user)))}
    positions = waitlist_positions(list(enrollments.values()))  # (of the waitlisted ones)
    texts = []
    with db.session.no_autoflush:
        for mail_id, enrollment_id, kind in queued:
            enrollment = enrollments.get(enrollment_id) if enrollment_id is not None else None
            if enrollment is None:
                continue
            composed = compose_enrollment_notice(enrollment, kind, position=positions.get(enrollment.id))
            texts.append({"mail_id": mail_id, "new_subject": composed.subject[:300], "new_body": composed.body,
                          "new_ics": composed.ics})
    db.session.rollback()
    if not texts:
        return 0
    begin_write()
    table = OutboxMail.__table__
    db.session.execute(
        update(table).where(table.c.id == bindparam("mail_id"), _not_composed())
        .values(subject=bindparam("new_subject"), body_text=bindparam("new_body"), ics=bindparam("new_ics")),
        texts)
    db.session.commit()
    return len(texts)


def _deliver_after_commit() -> None:
    after_commit(_request_delivery_quietly, key="outbox-delivery")


def _request_delivery_quietly() -> None:
    try:
        request_prompt_delivery()
    except Exception:  # a queue outage must not fail the committed change; the periodic task delivers
        logger.exception("could not enqueue outbox delivery; the periodic task will deliver")


def request_prompt_delivery() -> None:
    """Ask the worker to deliver queued mail now (after the commit that queued it).

    In immediate mode (tests) delivery runs only when LMS_OUTBOX_DELIVER_INLINE is set, in a
    thread of its own with its own database session, as a worker would.
    """
    if not huey.immediate:
        _enqueue_throttled()
        return
    if not current_app.config.get("LMS_OUTBOX_DELIVER_INLINE"):
        return

    def run():
        with current_app.app_context():  # a context of its own: its own database session
            deliver_outbox_soon()

    # The thread runs in a copy of this context, where current_app is this app.
    worker = threading.Thread(target=contextvars.copy_context().run, args=(run,))
    worker.start()
    worker.join()


# At most one "deliver now" job per process and window: under a rush of enrollments one job
# delivers everything queued so far (it loops until nothing is due), and a trailing job at
# the end of the window picks up what was committed meanwhile.
_THROTTLE_SECONDS = 0.5
_throttle_lock = threading.Lock()
_throttle_state = {"last": float("-inf"), "trailing": False}


def _enqueue_throttled() -> None:
    import time

    now = time.monotonic()
    with _throttle_lock:
        wait = _throttle_state["last"] + _THROTTLE_SECONDS - now
        if wait <= 0:
            _throttle_state["last"] = now
            fire = True
        else:
            fire = False
            if not _throttle_state["trailing"]:
                _throttle_state["trailing"] = True
                timer = threading.Timer(wait, _trailing_enqueue)
                timer.daemon = True
                timer.start()
    if fire:
        _enqueue_now()


def _trailing_enqueue() -> None:
    import time

    with _throttle_lock:
        _throttle_state["trailing"] = False
        _throttle_state["last"] = time.monotonic()
    try:
        _enqueue_now()
    except Exception:  # the periodic sweep delivers it
        logger.exception("could not enqueue outbox delivery; the periodic task will deliver")


def _enqueue_now() -> None:
    deliver_outbox_soon()


# ---------------------------------------------------------------- delivery


@dataclass
class DeliveryReport:
    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    not_applicable: list[int] = field(default_factory=list)  # reminders that no longer apply
    skipped: int = 0  # claimed by another worker first


def _due_condition(now: datetime, stale_cutoff: datetime):
    return or_(
        and_(OutboxMail.status == QUEUED, OutboxMail.next_attempt_at <= now),
        and_(OutboxMail.status == SENDING, OutboxMail.claimed_at < stale_cutoff),
    )


def backoff_seconds(attempts: int) -> int:
    base = _setting("LMS_MAIL_BACKOFF_SECONDS", DEFAULT_BACKOFF_SECONDS)
    return min(base * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)


def claim_mail(mail_id: int, now: datetime | None = None, *, due_at: datetime | None = None) -> datetime | None:
    """Claim one row for sending (commits). Returns the claim time, or None if not ours.

    One conditional UPDATE: of two workers racing for the row, exactly one changes it."""
    now = now or utcnow()
    due_at = due_at or now
    stale_cutoff = due_at - timedelta(seconds=_setting("LMS_OUTBOX_STALE_SECONDS", DEFAULT_STALE_SECONDS))
    begin_write()
    result = db.session.execute(
        update(OutboxMail)
        .where(OutboxMail.id == mail_id, _due_condition(due_at, stale_cutoff))
        .values(status=SENDING, claimed_at=now, attempts=OutboxMail.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    db.session.commit()
    return now if cast(CursorResult[Any], result).rowcount == 1 else None


def deliver_due_mail(*, limit: int = 200, now: datetime | None = None) -> DeliveryReport:
    """Send every due row (queued and due, or stale claims), one claim at a time.

    ``now`` fixes the clock (tests); otherwise each claim is stamped with the current time,
    so a long batch never looks stale to another worker.
    """
    from lms.notifications.mail import MailError, send_mail

    clock = (lambda: now) if now is not None else utcnow
    report = DeliveryReport()
    start = clock()
    stale_cutoff = start - timedelta(seconds=_setting("LMS_OUTBOX_STALE_SECONDS", DEFAULT_STALE_SECONDS))
    max_attempts = _setting("LMS_MAIL_MAX_ATTEMPTS", DEFAULT_MAX_ATTEMPTS)
    report.failed += _fail_exhausted_stale_claims(stale_cutoff, max_attempts)
    ids = db.session.scalars(
        select(OutboxMail.id).where(_due_condition(start, stale_cutoff)).order_by(OutboxMail.id).limit(limit)
    ).all()
    db.session.rollback()
    if ids:
        compose_queued_mail(limit, ids=list(ids))  # (in bulk; one the loop finds uncomposed is composed there)
    for mail_id in ids:
        claimed_at = claim_mail(mail_id, clock(), due_at=start)
        if claimed_at is None:
            report.skipped += 1
            continue
        mail = db.session.get_one(OutboxMail, mail_id)
        if not mail.body_text and mail.enrollment_id is not None:  # queued uncomposed: compose it first
            begin_write()
            mail = db.session.get_one(OutboxMail, mail_id)
            compose_mail(mail)
            db.session.commit()
        mine = and_(OutboxMail.id == mail_id, OutboxMail.status == SENDING, OutboxMail.claimed_at == claimed_at)
        reason = _no_longer_applies(mail)
        if reason:
            begin_write()
            db.session.execute(update(OutboxMail).where(mine).values(status=SKIPPED, claimed_at=None, last_error=reason)
                               .execution_options(synchronize_session=False))
            db.session.commit()
            report.not_applicable.append(mail_id)
            continue
        outcome = _offer_to_channel(mail, mine, clock)
        if outcome == _DEFERRED:
            report.retried.append(mail_id)
            continue
        if outcome == _DELIVERED:  # the person chose Teams alone, and Teams carried it
            begin_write()
            db.session.execute(update(OutboxMail).where(mine).values(
                status=SENT, sent_at=utcnow(), claimed_at=None, message_id=TEAMS_MESSAGE_ID, last_error="",
            ).execution_options(synchronize_session=False))
            db.session.commit()
            report.sent.append(mail_id)
            continue
        try:
            message_id = send_mail(mail)
        except Exception as exc:  # noqa: BLE001 - any backend failure is recorded and retried
            permanent = isinstance(exc, MailError) and exc.permanent
            error = f"{type(exc).__name__}: {exc}"[:2000]
            db.session.rollback()
            attempts = mail.attempts
            if permanent or attempts >= max_attempts:
                values: dict[str, Any] = {"status": FAILED, "claimed_at": None, "last_error": error}
                report.failed.append(mail_id)
                logger.warning("mail %s failed permanently after %s attempts: %s", mail_id, attempts, error)
            else:
                values = {
                    "status": QUEUED,
                    "claimed_at": None,
                    "last_error": error,
                    "next_attempt_at": clock() + timedelta(seconds=backoff_seconds(attempts)),
                }
                report.retried.append(mail_id)
                logger.info("mail %s attempt %s failed, retrying later: %s", mail_id, attempts, error)
            begin_write()
            db.session.execute(update(OutboxMail).where(mine).values(**values).execution_options(synchronize_session=False))
            db.session.commit()
            continue
        begin_write()
        result = db.session.execute(
            update(OutboxMail)
            .where(mine)
            .values(status=SENT, sent_at=utcnow(), claimed_at=None, message_id=message_id[:300], last_error="")
            .execution_options(synchronize_session=False)
        )
        db.session.commit()
        if cast(CursorResult[Any], result).rowcount != 1:  # our claim was taken over while we were sending (far beyond the stale delay)
            logger.warning("mail %s was sent but its claim had been taken over", mail_id)
        report.sent.append(mail_id)
    db.session.expire_all()
    return report


# What a row's offer to the channel leaves to do.
_SEND_MAIL = "mail"
_DELIVERED = "delivered"
_DEFERRED = "deferred"
# The Message-ID column of a row delivered through Teams alone.
TEAMS_MESSAGE_ID = "teams-activity"


def recipient_user(mail: OutboxMail) -> User | None:
    """The account of the row's person: its ``user_id``, or its staff member's account."""
    if mail.user_id is not None:
        return db.session.get(User, mail.user_id)
    if mail.staff_member_id is None:
        return None
    return db.session.scalar(
        select(User).join(StaffMember, StaffMember.user_id == User.id).where(StaffMember.id == mail.staff_member_id)
    )


def notice_choice(user: User | None) -> str:
    choice = getattr(user, "notice_channel", None)
    return choice if choice in NOTICE_CHANNELS else NOTICE_BOTH


def _offer_to_channel(mail: OutboxMail, mine, clock) -> str:
    """Offer a claimed row to the registered channel (Teams) once; say whether its mail goes.

    The channel's outcome is committed under the claim before any mail goes, so a row whose
    mail fails and is retried is never sent through the channel again. A throttled channel
    puts the row back in the queue for when it may be asked again (the attempt is not counted
    against the mail's)."""
    channel = registered_channel()
    state = mail.teams_state
    if state == TEAMS_PENDING and channel is None:
        return _SEND_MAIL  # no channel in this deployment: nothing to look up or record
    user = recipient_user(mail)
    choice = notice_choice(user)
    if state == TEAMS_PENDING:
        error = ""
        if channel is None or choice == NOTICE_MAIL:
            state = TEAMS_NOT_USED
        else:
            try:
                state = TEAMS_SENT if channel(mail, user) is not None else TEAMS_NOT_USED
            except ChannelDeferred as exc:
                db.session.rollback()
                begin_write()
                db.session.execute(update(OutboxMail).where(mine).values(
                    status=QUEUED, claimed_at=None, attempts=OutboxMail.attempts - 1,
                    last_error=f"Teams: {exc}"[:2000],
                    next_attempt_at=clock() + timedelta(seconds=max(float(exc.retry_after), 1.0)),
                ).execution_options(synchronize_session=False))
                db.session.commit()
                logger.info("notice %s: Teams asked to wait %.0fs", mail.id, exc.retry_after)
                return _DEFERRED
            except ChannelUnavailable as exc:
                state, error = TEAMS_UNAVAILABLE, str(exc)
            except Exception as exc:  # noqa: BLE001 - whatever the channel's failure, the mail goes
                logger.warning("notice %s: Teams failed, the mail goes: %s", mail.id, exc)
                state, error = TEAMS_UNAVAILABLE, f"{type(exc).__name__}: {exc}"
        db.session.rollback()
        begin_write()
        db.session.execute(update(OutboxMail).where(mine).values(
            teams_state=state, teams_error=error[:300], teams_sent_at=utcnow() if state == TEAMS_SENT else None,
        ).execution_options(synchronize_session=False))
        db.session.commit()
    if state == TEAMS_SENT and choice == NOTICE_TEAMS:
        return _DELIVERED
    return _SEND_MAIL


def _fail_exhausted_stale_claims(stale_cutoff: datetime, max_attempts: int) -> list[int]:
    """A mail whose worker died on every attempt (it may crash the worker) stops being retried."""
    ids = db.session.scalars(
        select(OutboxMail.id).where(
            OutboxMail.status == SENDING, OutboxMail.claimed_at < stale_cutoff, OutboxMail.attempts >= max_attempts
        )
    ).all()
    if not ids:
        db.session.rollback()
        return []
    failed = []
    begin_write()
    for mail_id in ids:
        result = db.session.execute(
            update(OutboxMail)
            .where(OutboxMail.id == mail_id, OutboxMail.status == SENDING, OutboxMail.claimed_at < stale_cutoff)
            .values(status=FAILED, claimed_at=None, last_error="the worker stopped while sending, on every attempt")
            .execution_options(synchronize_session=False)
        )
        if cast(CursorResult[Any], result).rowcount == 1:
            failed.append(mail_id)
    db.session.commit()
    return failed


def _no_longer_applies(mail: OutboxMail) -> str:
    """Why a queued reminder or approval request should not go out any more ("" if it should)."""
    if mail.kind == APPROVAL and mail.enrollment_id is not None:
        waiting = db.session.execute(select(Enrollment.status, Enrollment.approval_step)
                                     .where(Enrollment.id == mail.enrollment_id)).first()
        if waiting is None or waiting[0] != ENROLLMENT_PENDING:
            return "not sent: the enrollment was decided already"
        if (waiting[1] or OFFICE_STEP) != approval_step_of(mail):
            return "not sent: the request has passed that approval step"
        return ""
    if mail.kind != REMINDER or mail.enrollment_id is None:
        return ""
    enrollment = db.session.get(Enrollment, mail.enrollment_id)
    if enrollment is None or enrollment.status != ENROLLMENT_CONFIRMED:
        return "not sent: the enrollment is no longer confirmed"
    if enrollment.session.status != SCHEDULED:
        return "not sent: the session was cancelled"
    if enrollment.session.starts_at <= utcnow():
        return "not sent: the session has already started"
    return ""


def retry_mail(mail_id: int, actor) -> OutboxMail:
    """Put a failed mail back in the queue (an admin's action; the caller commits)."""
    begin_write()
    mail = db.session.get(OutboxMail, mail_id)
    if mail is None:
        raise NotFound(_("メールが見つかりません。"))
    if mail.status != FAILED:
        raise Conflict(_("再送できるのは送信に失敗したメールだけです。"))
    mail.status = QUEUED
    mail.attempts = 0
    mail.next_attempt_at = utcnow()
    mail.claimed_at = None
    _deliver_after_commit()
    record_action(actor, "notifications.retry", "outbox_mail", mail.id, mail.municipality_id, subject=mail.subject)
    return mail


# ---------------------------------------------------------------- reminders


def queue_session_reminders(now: datetime | None = None) -> int:
    """Queue the "reminder" notice for confirmed enrollees of sessions held tomorrow (Tokyo).

    Idempotent: one reminder per enrollment and session day (dedupe key), so running it
    every few minutes, or on two workers, queues each reminder once. The caller commits.
    """
    now = as_utc(now or utcnow())
    begin_write()
    tomorrow = now.astimezone(TOKYO).date() + timedelta(days=1)
    start = datetime(tomorrow.year, tomorrow.month, tomorrow.day, tzinfo=TOKYO)
    end = start + timedelta(days=1)
    sessions = db.session.scalars(
        select(TrainingSession).where(
            TrainingSession.status == SCHEDULED,
            TrainingSession.starts_at >= as_utc(start),
            TrainingSession.starts_at < as_utc(end),
        )
    ).all()
    queued = 0
    for session in sessions:
        enrollments = db.session.scalars(
            select(Enrollment).where(Enrollment.session_id == session.id, Enrollment.status == ENROLLMENT_CONFIRMED)
        ).all()
        for enrollment in enrollments:
            suffix = tomorrow.isoformat()
            key = f"enrollment:{enrollment.id}:{REMINDER}:{suffix}"
            if db.session.scalar(select(OutboxMail.id).where(OutboxMail.dedupe_key == key)) is not None:
                continue
            try:
                with db.session.begin_nested():
                    mail = queue_enrollment_notice(enrollment, REMINDER, dedupe_suffix=suffix)
                    db.session.flush()
            except IntegrityError:  # another worker queued it at the same moment
                continue
            if mail is not None:
                queued += 1
        if session.reminder_sent_at is None:
            session.reminder_sent_at = now
    return queued


# ---------------------------------------------------------------- reading


def outbox_query(municipality_id: int | None, *, status: str = "", q: str = ""):
    """Mails visible to an admin: all (None) or one municipality's."""
    stmt = select(OutboxMail)
    if municipality_id is not None:
        stmt = stmt.where(OutboxMail.municipality_id == municipality_id)
    if status in (QUEUED, SENDING, SENT, FAILED, SKIPPED):
        stmt = stmt.where(OutboxMail.status == status)
    if q:
        like = f"%{like_escaped(q)}%"
        stmt = stmt.where(or_(*(column.ilike(like, escape=LIKE_ESCAPE)
                                for column in (OutboxMail.to_address, OutboxMail.subject, OutboxMail.to_name))))
    return stmt.order_by(OutboxMail.id.desc())


def delivery_backlog(municipality_id: int | None, *, older_than_minutes: int = 10) -> int:
    """Mails due for more than ``older_than_minutes`` and still not sent: a sign that no
    worker is running (or that the mail server refuses everything)."""
    cutoff = utcnow() - timedelta(minutes=older_than_minutes)
    stmt = select(func.count()).select_from(OutboxMail).where(
        OutboxMail.status.in_((QUEUED, SENDING)), OutboxMail.next_attempt_at <= cutoff
    )
    if municipality_id is not None:
        stmt = stmt.where(OutboxMail.municipality_id == municipality_id)
    return int(db.session.scalar(stmt) or 0)


def queue_office_notices(municipality_ids: list[int], key: str, subject: str, body: str, *,
                         platform_admins: bool = False) -> int:
    """Queue ``subject``/``body`` to every municipal admin (with a mail address) of the
    municipalities, and to the platform admins when asked; once per (key, recipient), so a
    repeated call queues nothing new. Returns how many mails were queued now."""
    if not municipality_ids and not platform_admins:
        return 0
    offices = and_(UserRole.role == MUNICIPAL_ADMIN, User.municipality_id.in_(municipality_ids))
    admins = db.session.execute(
        select(User.id, User.email, User.display_name, User.municipality_id)
        .join(UserRole, UserRole.user_id == User.id)
        .where(or_(offices, UserRole.role == PLATFORM_ADMIN) if platform_admins else offices)
        .distinct().order_by(User.id)
    ).all()
    keys = {f"office:{key}:{uid}" for uid, *_ in admins}
    taken = set(db.session.scalars(select(OutboxMail.dedupe_key).where(OutboxMail.dedupe_key.in_(keys)))) if keys else set()
    queued = 0
    for uid, email, name, mid in admins:
        dedupe = f"office:{key}:{uid}"
        address = (email or "").strip()
        if dedupe in taken or "@" not in address:
            continue
        db.session.add(OutboxMail(dedupe_key=dedupe[:200], kind=OFFICE, to_address=address, to_name=name or "",
                                  subject=subject[:300], body_text=body, municipality_id=mid, status=QUEUED,
                                  attempts=0, next_attempt_at=utcnow()))
        queued += 1
    if queued:
        _deliver_after_commit()
    return queued


# An approval request not sent on its own because its approver had many that day: the next
# approver digest (lms.notifications.approvals) carries it.
HELD_FOR_DIGEST = "held for the approver's daily digest"


def approver_key(user_id: int | None, staff_member_id: int | None) -> str:
    """How an approver is named in dedupe keys: their user id, or ``s<roster id>`` for a 所属長
    without a user account (reached at the roster's address)."""
    return str(user_id) if user_id is not None else f"s{staff_member_id}"


def _busy_approvers(approvers: list[tuple[int | None, int | None]]) -> set[str]:
    """The approvers (``approver_key``) of ``approvers`` ((user id, roster id) pairs) who have had
    LMS_APPROVAL_DIGEST_THRESHOLD approval requests today (Tokyo): a training office member or
    a 所属長 by their user, a 所属長 without a user account by their roster entry."""
    threshold = _setting("LMS_APPROVAL_DIGEST_THRESHOLD", 10)
    user_ids = sorted({uid for uid, _sid in approvers if uid is not None})
    staff_ids = sorted({sid for uid, sid in approvers if uid is None and sid is not None})
    if not (user_ids or staff_ids) or threshold <= 0:
        return set()
    today = utcnow().astimezone(TOKYO).date()
    since = as_utc(datetime(today.year, today.month, today.day, tzinfo=TOKYO))
    whose: list[ColumnElement[bool]] = []
    if user_ids:
        whose.append(OutboxMail.user_id.in_(user_ids))
    if staff_ids:
        whose.append(and_(OutboxMail.user_id.is_(None), OutboxMail.staff_member_id.in_(staff_ids)))
    rows = db.session.execute(
        select(OutboxMail.user_id, OutboxMail.staff_member_id, func.count()).where(
            OutboxMail.kind == APPROVAL, or_(*whose), OutboxMail.created_at >= since,
        ).group_by(OutboxMail.user_id, OutboxMail.staff_member_id)
    ).all()
    counts: dict[str, int] = {}
    for uid, sid, count in rows:
        key = approver_key(uid, sid)
        counts[key] = counts.get(key, 0) + count
    return {key for key, count in counts.items() if count >= threshold}


def resubmissions(enrollment_id: int) -> int:
    """How many times a request was sent again after being returned (差し戻し)."""
    return int(db.session.scalar(select(func.count()).select_from(EnrollmentApproval).where(
        EnrollmentApproval.enrollment_id == enrollment_id, EnrollmentApproval.decision == RESUBMITTED)) or 0)


def approval_step_of(mail: OutboxMail) -> str:
    """The approval step an approval request was sent for ("supervisor" or "office")."""
    parts = mail.dedupe_key.split(":")
    return parts[2] if len(parts) > 3 and parts[2] == SUPERVISOR_STEP else OFFICE_STEP


def _approvers(enrollment, step: str) -> list[tuple[int | None, int | None, str, str, str | None]]:
    """(user id, roster id, address, name, language) of whoever answers ``step``: the 所属長 and
    deputies of the learner's 所属, or the training office (municipal admins) of their municipality."""
    if step == SUPERVISOR_STEP:
        out: list[tuple[int | None, int | None, str, str, str | None]] = []
        for head in supervisors_of(enrollment.staff_member):
            user = head.user
            address = (user.email if user is not None and user.email else head.email) or ""
            out.append((head.user_id, head.id, address, head.full_name, user.locale if user is not None else None))
        return out
    admins = db.session.execute(
        select(User.id, User.email, User.display_name, User.locale)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == MUNICIPAL_ADMIN, User.municipality_id == enrollment.municipality_id, User.active.is_(True))
        .order_by(User.id)
    ).all()
    return [(uid, None, email or "", name or "", locale) for uid, email, name, locale in admins]


def queue_approval_requests(enrollment) -> int:
    """Tell whoever answers the request's approval step that it waits for them: its 所属長 (and
    deputies), or the training office of its municipality (the municipal admins). One notice
    per approver, step and enrollment (a repeated call queues nothing new). An approver who has
    had LMS_APPROVAL_DIGEST_THRESHOLD requests today gets this one in the next daily digest
    instead (its row is kept, skipped, as the digest's record). In the caller's transaction.
    Returns how many were queued to go now."""
    if enrollment.id is None:
        db.session.flush()
    step = enrollment.approval_step or OFFICE_STEP
    approvers = _approvers(enrollment, step)
    again = resubmissions(enrollment.id)  # sent again after a return: a new round of requests
    round_ = f":r{again}" if again else ""
    keys = {f"{APPROVAL}:{enrollment.id}:{step}:{approver_key(uid, sid)}{round_}" for uid, sid, *_ in approvers}
    taken = set(db.session.scalars(select(OutboxMail.dedupe_key).where(OutboxMail.dedupe_key.in_(keys)))) if keys else set()
    busy = _busy_approvers([(uid, sid) for uid, sid, *_ in approvers])
    queued = 0
    for uid, sid, email, name, locale in approvers:
        key = f"{APPROVAL}:{enrollment.id}:{step}:{approver_key(uid, sid)}{round_}"
        address = email.strip()
        if key in taken or "@" not in address:
            continue
        with db.session.no_autoflush:
            composed = compose_approval_request(enrollment, name, locale, step)
        held = approver_key(uid, sid) in busy  # many today already: this one waits for the day's digest
        db.session.add(OutboxMail(
            dedupe_key=key, kind=APPROVAL, to_address=address, to_name=name, subject=composed.subject[:300],
            body_text=composed.body, enrollment_id=enrollment.id, user_id=uid, staff_member_id=sid,
            municipality_id=enrollment.municipality_id, status=SKIPPED if held else QUEUED, attempts=0,
            next_attempt_at=utcnow(), last_error=HELD_FOR_DIGEST if held else "",
        ))
        queued += 0 if held else 1
    if queued:
        _deliver_after_commit()
    return queued


# A request that left a 所属長's hands (its learner moved to another 所属), told to that 所属長.
MOVED = "approval_moved"


def queue_moved_notices(enrollment, from_department: str) -> int:
    """Tell the 所属長 (and deputies) of ``from_department`` that the request no longer waits
    for them: its learner moved to another 所属. Once per head and move. Returns how many."""
    member = enrollment.staff_member
    heads = db.session.scalars(select(StaffMember).where(
        StaffMember.municipality_id == member.municipality_id, StaffMember.department == from_department,
        StaffMember.status == "active", or_(StaffMember.department_head.is_(True), StaffMember.deputy_head.is_(True)),
        StaffMember.id != member.id)).all()
    queued = 0
    for head in heads:
        user = head.user
        address = ((user.email if user is not None and user.email else head.email) or "").strip()
        key = f"{MOVED}:{enrollment.id}:{member.department}:{head.id}"[:200]
        if "@" not in address or db.session.scalar(select(OutboxMail.id).where(OutboxMail.dedupe_key == key)):
            continue
        with db.session.no_autoflush:
            composed = compose_moved_notice(enrollment, head.full_name, user.locale if user is not None else None)
        db.session.add(OutboxMail(
            dedupe_key=key, kind=MOVED, to_address=address, to_name=head.full_name, subject=composed.subject[:300],
            body_text=composed.body, enrollment_id=enrollment.id, user_id=head.user_id, staff_member_id=head.id,
            municipality_id=enrollment.municipality_id, status=QUEUED, attempts=0, next_attempt_at=utcnow(),
        ))
        queued += 1
    if queued:
        _deliver_after_commit()
    return queued


def queue_report_returned(submission, comment: str) -> OutboxMail | None:
    """Tell the writer of a 受講報告 that it was returned (差し戻し), with the comment; once per
    return (a report may be returned again after it is sent again)."""
    member = submission.staff_member
    user = member.user
    address = ((user.email if user is not None and user.email else member.email) or "").strip()
    reviewed = as_utc(submission.reviewed_at) or utcnow()
    key = f"{REPORT_RETURNED}:{submission.id}:{int(reviewed.timestamp())}"
    if "@" not in address or db.session.scalar(select(OutboxMail.id).where(OutboxMail.dedupe_key == key)):
        return None
    with db.session.no_autoflush:
        composed = compose_report_returned(submission, comment, member.full_name, user.locale if user is not None else None)
    mail = OutboxMail(dedupe_key=key, kind=REPORT_RETURNED, to_address=address, to_name=member.full_name,
                      subject=composed.subject[:300], body_text=composed.body, user_id=member.user_id,
                      staff_member_id=member.id, municipality_id=submission.municipality_id, status=QUEUED,
                      attempts=0, next_attempt_at=utcnow())
    db.session.add(mail)
    _deliver_after_commit()
    return mail


def save_notice_choice(user: User, choice: str) -> bool:
    """Record how ``user`` wants their notices (the caller commits). True when it changed."""
    if choice not in NOTICE_CHANNELS:
        raise InvalidInput(_("受け取り方を選んでください。"))
    if user.notice_channel == choice:
        return False
    before = user.notice_channel
    user.notice_channel = choice
    record_action(user, "notifications.channel", "user", user.id, user.municipality_id,
                  changes={"notice_channel": [before, choice]})
    return True
