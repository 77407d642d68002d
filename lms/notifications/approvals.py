"""The training offices' daily digest of approval requests (承認待ちの申込).

Each working morning (``is_working_day``: no weekends, national holidays or the year-end
closure) every training office member whose municipality has requests waiting gets one mail
listing them, oldest first, when either

- some arrived that were not told on their own (the member had LMS_APPROVAL_DIGEST_THRESHOLD
  requests that day already: ``queue_approval_requests`` held them for the digest), or
- some have waited LMS_APPROVAL_REMINDER_DAYS working days or more (the reminder).

One digest per member and day (its dedupe key), so running the task every half hour, or on
two workers, sends it once. The digest goes by mail (Teams' activity types carry one request
each, and each request went to Teams when it arrived).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time

from sqlalchemy import or_, select, update

from lms.auth.models import MUNICIPAL_ADMIN, User, UserRole
from lms.common.database import begin_write
from lms.common.timeutil import TOKYO, as_utc, utcnow
from lms.common.workdays import is_working_day, working_days_between
from lms.courses.models import Course, TrainingSession
from lms.enrollment.models import PENDING, RETURNED_STEP, Enrollment
from lms.extensions import db
from lms.notifications.compose import compose_approver_digest
from lms.notifications.models import QUEUED, SKIPPED, OutboxMail
from lms.notifications.services import APPROVAL, HELD_FOR_DIGEST, _deliver_after_commit, _setting
from lms.roster.models import StaffMember

DIGEST = "approval_digest"
# The digest goes out from this time of a working morning (Tokyo).
DIGEST_FROM = time(8, 30)


def queue_approver_digests(now: datetime | None = None) -> int:
    """Queue today's digests (the caller commits). Returns how many were queued."""
    now = as_utc(now or utcnow())
    local = now.astimezone(TOKYO)
    today = local.date()
    if not is_working_day(today) or local.time() < DIGEST_FROM:
        return 0
    overdue_days = _setting("LMS_APPROVAL_REMINDER_DAYS", 3)
    begin_write()
    pending = db.session.execute(
        select(Enrollment.id, Enrollment.municipality_id, Enrollment.requested_at, StaffMember.full_name,
               Course.title, TrainingSession.title)
        .join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .join(Course, Course.id == TrainingSession.course_id)
        .where(Enrollment.status == PENDING,
               or_(Enrollment.approval_step.is_(None), Enrollment.approval_step != RETURNED_STEP))
        .order_by(Enrollment.requested_at, Enrollment.id)
    ).all()
    if not pending:
        return 0
    by_municipality: dict[int, list] = defaultdict(list)
    for row in pending:
        by_municipality[row[1]].append(row)
    admins = db.session.execute(
        select(User.id, User.email, User.display_name, User.locale, User.municipality_id)
        .join(UserRole, UserRole.user_id == User.id)
        .where(UserRole.role == MUNICIPAL_ADMIN, User.active.is_(True), User.municipality_id.in_(list(by_municipality)))
        .order_by(User.id)
    ).all()
    held: dict[int, set[int]] = defaultdict(set)
    for uid, enrollment_id in db.session.execute(
        select(OutboxMail.user_id, OutboxMail.enrollment_id).where(
            OutboxMail.kind == APPROVAL, OutboxMail.status == SKIPPED, OutboxMail.last_error == HELD_FOR_DIGEST)
    ):
        if uid is not None and enrollment_id is not None:
            held[uid].add(enrollment_id)
    keys = {f"{DIGEST}:{uid}:{today.isoformat()}" for uid, *_ in admins}
    taken = set(db.session.scalars(select(OutboxMail.dedupe_key).where(OutboxMail.dedupe_key.in_(keys))))
    queued = 0
    for uid, email, name, locale, municipality_id in admins:
        key = f"{DIGEST}:{uid}:{today.isoformat()}"
        address = (email or "").strip()
        if key in taken or "@" not in address or municipality_id is None:
            continue
        items = [{
            "id": eid, "learner": learner, "session": f"{course} {session}".strip(), "requested_at": requested_at,
            "waited": working_days_between(as_utc(requested_at).astimezone(TOKYO).date(), today),
            "new": eid in held[uid],
        } for eid, _mid, requested_at, learner, course, session in by_municipality[municipality_id]]
        if not any(item["new"] or item["waited"] >= overdue_days for item in items):
            continue
        composed = compose_approver_digest(name or "", locale, items, overdue_days=overdue_days)
        db.session.add(OutboxMail(
            dedupe_key=key, kind=DIGEST, to_address=address, to_name=name or "", subject=composed.subject[:300],
            body_text=composed.body, user_id=uid, municipality_id=municipality_id, status=QUEUED, attempts=0,
            next_attempt_at=utcnow(),
        ))
        told = [item["id"] for item in items if item["new"]]
        if told:
            db.session.execute(
                update(OutboxMail).where(
                    OutboxMail.kind == APPROVAL, OutboxMail.user_id == uid, OutboxMail.enrollment_id.in_(told),
                    OutboxMail.last_error == HELD_FOR_DIGEST,
                ).values(last_error=f"told in the approver's digest of {today.isoformat()}")
                .execution_options(synchronize_session=False)
            )
        queued += 1
    if queued:
        _deliver_after_commit()
    return queued
