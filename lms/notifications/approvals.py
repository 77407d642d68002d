"""The approvers' daily digest of approval requests (承認待ちの申込): the training offices' and
the 所属長's.

Each working morning (``is_working_day``: no weekends, national holidays or the year-end
closure) every approver with requests waiting for them gets one mail listing them, oldest
first:

- a training office member (municipal admin): the requests of their municipality waiting at the
  office step, and those waiting for a 所属長 where the 所属 has none now (the office answers
  them); not those still waiting for a 所属長, nor those returned to the learner or at 選考;
- a 所属長 or deputy (``StaffMember.department_head`` / ``deputy_head``), and whoever stands in
  for one of them today (``ApprovalDelegation``): the requests of their 所属 waiting at the
  supervisor step (never their own), as ``supervisors_of`` would tell them now. A 所属長
  without a user account is reached at the roster's address; the link goes to the 承認 page.

It goes out when either

- some arrived that were not told on their own (the approver had LMS_APPROVAL_DIGEST_THRESHOLD
  requests that day already: ``queue_approval_requests`` held them for the digest), or
- some have waited LMS_APPROVAL_REMINDER_DAYS working days or more (the reminder).

One digest per approver and day (its dedupe key: the user, or ``s<roster id>`` for a 所属長
without one; someone who answers both steps gets both in one mail), so running the task every
half hour, or on two workers, sends it once. The digest goes by mail (Teams' activity types
carry one request each, and each request went to Teams when it arrived).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any

from sqlalchemy import or_, select, update

from lms.auth.models import MUNICIPAL_ADMIN, User, UserRole
from lms.common.database import begin_write
from lms.common.timeutil import TOKYO, as_utc, utcnow
from lms.common.workdays import is_working_day, working_days_between
from lms.courses.models import Course, TrainingSession
from lms.enrollment.models import OFFICE_STEP, PENDING, SUPERVISOR_STEP, ApprovalDelegation, Enrollment
from lms.extensions import db
from lms.notifications.compose import compose_approver_digest
from lms.notifications.models import QUEUED, SKIPPED, OutboxMail
from lms.notifications.services import APPROVAL, HELD_FOR_DIGEST, _deliver_after_commit, _setting, approver_key
from lms.roster.models import ACTIVE, StaffMember

DIGEST = "approval_digest"
# The digest goes out from this time of a working morning (Tokyo).
DIGEST_FROM = time(8, 30)


@dataclass
class _Recipient:
    user_id: int | None
    staff_member_id: int | None
    address: str
    name: str
    locale: str | None
    municipality_id: int
    items: dict[int, str] = field(default_factory=dict)  # enrollment id → the step they answer it at


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
        select(Enrollment.id, Enrollment.municipality_id, Enrollment.approval_step, Enrollment.requested_at,
               StaffMember.id, StaffMember.municipality_id, StaffMember.department, StaffMember.full_name,
               Course.title, TrainingSession.title)
        .join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .join(Course, Course.id == TrainingSession.course_id)
        .where(Enrollment.status == PENDING,
               or_(Enrollment.approval_step.is_(None), Enrollment.approval_step.in_((OFFICE_STEP, SUPERVISOR_STEP))))
        .order_by(Enrollment.requested_at, Enrollment.id)
    ).all()
    if not pending:
        return 0
    rows = {row[0]: row for row in pending}
    recipients: dict[str, _Recipient] = {}
    # Requests at the 所属長's step: theirs, told as ``supervisors_of`` would tell them now.
    supervisors = _supervisors({(member_mid, department) for _eid, _mid, step, _at, _lid, member_mid, department, *_
                                in pending if step == SUPERVISOR_STEP and (department or "").strip()}, today)
    for eid, _mid, step, _at, learner_id, member_mid, department, *_ in pending:
        if step != SUPERVISOR_STEP:
            continue
        for recipient in supervisors.get((member_mid, department), []):
            if recipient.staff_member_id == learner_id:
                continue  # never their own request
            key = approver_key(recipient.user_id, recipient.staff_member_id)
            recipients.setdefault(key, recipient).items.setdefault(eid, SUPERVISOR_STEP)
    supervised = {eid for recipient in recipients.values() for eid in recipient.items}
    # The office's: those at its step, and those waiting for a 所属長 nobody is now (it answers them).
    by_municipality: dict[int, list[int]] = defaultdict(list)
    for eid, mid, *_ in pending:
        if eid not in supervised:
            by_municipality[mid].append(eid)
    if by_municipality:
        for uid, email, name, locale, municipality_id in db.session.execute(
            select(User.id, User.email, User.display_name, User.locale, User.municipality_id)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == MUNICIPAL_ADMIN, User.active.is_(True),
                   User.municipality_id.in_(list(by_municipality)))
            .distinct().order_by(User.id)
        ):
            if municipality_id is None:
                continue
            member = recipients.get(str(uid))
            if member is None:
                member = recipients[str(uid)] = _Recipient(uid, None, "", "", None, municipality_id)
            # (A 所属長 who is also in the training office: one digest of both, to their user's address.)
            member.address, member.name, member.locale = email or "", name or "", locale
            for eid in by_municipality[municipality_id]:
                member.items.setdefault(eid, OFFICE_STEP)
    if not recipients:
        return 0
    # Requests held for the digest: (approver, enrollment, step) → their rows.
    held: dict[tuple[str, int, str], list[int]] = defaultdict(list)
    for mail_id, user_id, staff_id, enrollment_id, dedupe_key in db.session.execute(
        select(OutboxMail.id, OutboxMail.user_id, OutboxMail.staff_member_id, OutboxMail.enrollment_id,
               OutboxMail.dedupe_key)
        .join(Enrollment, Enrollment.id == OutboxMail.enrollment_id)
        .where(OutboxMail.kind == APPROVAL, OutboxMail.status == SKIPPED, OutboxMail.last_error == HELD_FOR_DIGEST,
               Enrollment.status == PENDING)
    ):
        if enrollment_id is None:
            continue
        held_at = SUPERVISOR_STEP if dedupe_key.split(":")[2:3] == [SUPERVISOR_STEP] else OFFICE_STEP
        held[(approver_key(user_id, staff_id), enrollment_id, held_at)].append(mail_id)
    day = today.isoformat()
    keys = {f"{DIGEST}:{key}:{day}" for key in recipients}
    taken = set(db.session.scalars(select(OutboxMail.dedupe_key).where(OutboxMail.dedupe_key.in_(keys))))
    told: list[int] = []
    queued = 0
    for key, recipient in sorted(recipients.items(), key=lambda pair: (pair[1].user_id is None, pair[1].user_id or 0,
                                                                       pair[1].staff_member_id or 0)):
        dedupe_key = f"{DIGEST}:{key}:{day}"
        address = recipient.address.strip()
        if dedupe_key in taken or "@" not in address:
            continue
        items: list[dict[str, Any]] = []
        for eid, answered_at in recipient.items.items():
            _eid, _mid, step, requested_at, _lid, _lmid, _dept, learner, course, session = rows[eid]
            mails = held.get((key, eid, step or OFFICE_STEP), [])
            items.append({
                "id": eid, "learner": learner, "session": f"{course} {session}".strip(), "requested_at": requested_at,
                "waited": working_days_between(as_utc(requested_at).astimezone(TOKYO).date(), today),
                "new": bool(mails), "step": answered_at, "mails": mails,
            })
        items.sort(key=lambda item: (item["requested_at"], item["id"]))
        if not any(item["new"] or item["waited"] >= overdue_days for item in items):
            continue
        composed = compose_approver_digest(recipient.name, recipient.locale, items, overdue_days=overdue_days)
        db.session.add(OutboxMail(
            dedupe_key=dedupe_key, kind=DIGEST, to_address=address, to_name=recipient.name,
            subject=composed.subject[:300], body_text=composed.body, user_id=recipient.user_id,
            staff_member_id=recipient.staff_member_id, municipality_id=recipient.municipality_id, status=QUEUED,
            attempts=0, next_attempt_at=utcnow(),
        ))
        told += [mail_id for item in items for mail_id in item["mails"]]
        queued += 1
    if told:
        db.session.execute(
            update(OutboxMail).where(OutboxMail.id.in_(told), OutboxMail.last_error == HELD_FOR_DIGEST)
            .values(last_error=f"told in the approver's digest of {day}")
            .execution_options(synchronize_session=False)
        )
    if queued:
        _deliver_after_commit()
    return queued


def _supervisors(pairs: set[tuple[int, str]], today: date) -> dict[tuple[int, str], list[_Recipient]]:
    """Who is told of the requests waiting for the 所属長 of each (municipality, 所属) of ``pairs``
    on ``today``: its active heads and deputies, and whoever stands in for one of them that day
    (two statements). Leaving out the learner is the caller's (nobody answers their own request)."""
    if not pairs:
        return {}
    heads = db.session.execute(
        select(StaffMember.id, StaffMember.municipality_id, StaffMember.department, StaffMember.full_name,
               StaffMember.email, StaffMember.user_id, User.email, User.locale)
        .outerjoin(User, User.id == StaffMember.user_id)
        .where(StaffMember.municipality_id.in_(sorted({mid for mid, _d in pairs})),
               StaffMember.department.in_(sorted({department for _m, department in pairs})),
               StaffMember.status == ACTIVE,
               or_(StaffMember.department_head.is_(True), StaffMember.deputy_head.is_(True)))
        .order_by(StaffMember.deputy_head, StaffMember.id)
    ).all()
    out: dict[tuple[int, str], list[_Recipient]] = defaultdict(list)
    pair_of: dict[int, tuple[int, str]] = {}
    for sid, mid, department, name, roster_email, uid, user_email, locale in heads:
        if (mid, department) in pairs:
            pair_of[sid] = (mid, department)
            out[(mid, department)].append(_Recipient(uid, sid, user_email or roster_email or "", name, locale, mid))
    if pair_of:
        for delegator_id, sid, mid, name, roster_email, uid, user_email, locale in db.session.execute(
            select(ApprovalDelegation.delegator_id, StaffMember.id, StaffMember.municipality_id, StaffMember.full_name,
                   StaffMember.email, StaffMember.user_id, User.email, User.locale)
            .join(StaffMember, StaffMember.id == ApprovalDelegation.delegate_id)
            .outerjoin(User, User.id == StaffMember.user_id)
            .where(ApprovalDelegation.delegator_id.in_(sorted(pair_of)), StaffMember.status == ACTIVE,
                   ApprovalDelegation.starts_on <= today, ApprovalDelegation.ends_on >= today)
            .order_by(ApprovalDelegation.id)
        ):
            told = out[pair_of[delegator_id]]
            if all(recipient.staff_member_id != sid for recipient in told):
                told.append(_Recipient(uid, sid, user_email or roster_email or "", name, locale, mid))
    return out
