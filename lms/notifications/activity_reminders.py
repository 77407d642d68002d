"""Reminders of required activities (事前課題, アンケート, 確認テスト, 受講報告) about to close.

Each learner with a confirmed place who can still do something toward a required, published
activity that is open (not done, no report waiting for its review, a quiz attempt left) is mailed
once, ``LMS_ACTIVITY_REMINDER_HOURS`` before its window closes for their session (dedupe key
per activity, learner and session: running the task every half hour, or on two workers, sends
it once). One statement per activity finds who is due, one reads what they have done."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select

from lms.activities import services as activities
from lms.activities.models import END, Activity, ActivitySubmission
from lms.auth.models import User
from lms.common.timeutil import as_utc, utcnow
from lms.courses.models import SCHEDULED, TrainingSession
from lms.enrollment.models import CONFIRMED, SERIES, Enrollment
from lms.extensions import db
from lms.notifications.compose import compose_activity_reminder
from lms.notifications.models import QUEUED, OutboxMail
from lms.notifications.services import _deliver_after_commit, _setting
from lms.roster.models import StaffMember

ACTIVITY_DUE = "activity_due"
# How long a 連続講座 may run, at most, for its reminders (its window counts from its last day).
SERIES_SPAN = timedelta(days=366)


def queue_activity_reminders(now: datetime | None = None) -> int:
    """Queue the reminders due now (the caller commits). Returns how many."""
    now = as_utc(now or utcnow())
    hours = _setting("LMS_ACTIVITY_REMINDER_HOURS", 48)
    if hours <= 0:
        return 0
    horizon = now + timedelta(hours=hours)
    queued = 0
    for activity in db.session.scalars(select(Activity).where(Activity.required.is_(True),
                                                              Activity.published.is_(True))):
        # closes = anchor + offset, within (now, horizon]  ⇔  anchor within (now - offset, horizon - offset]
        offset = timedelta(hours=activity.closes_offset_hours)
        anchor = TrainingSession.ends_at if activity.closes_anchor == END else TrainingSession.starts_at
        due = db.session.execute(
            select(TrainingSession, StaffMember, User.locale, User.email, Enrollment.id)
            .join(Enrollment, Enrollment.session_id == TrainingSession.id)
            .join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
            .outerjoin(User, User.id == StaffMember.user_id)
            .where(TrainingSession.course_id == activity.course_id, TrainingSession.status == SCHEDULED,
                   TrainingSession.makeup_for_id.is_(None), Enrollment.status == CONFIRMED,
                   Enrollment.source != SERIES,
                   # (a 連続講座's window ends after its first day's: checked below, by its window)
                   or_(anchor > now - offset, TrainingSession.series_id.is_not(None) & (anchor > now - offset - SERIES_SPAN)),
                   anchor <= horizon - offset)
        ).all()
        if not due:
            continue
        handed: dict[tuple[int, int], list[ActivitySubmission]] = {}
        for row in db.session.scalars(select(ActivitySubmission).where(
                ActivitySubmission.activity_id == activity.id,
                ActivitySubmission.staff_member_id.in_([m.id for _s, m, _l, _e, _i in due]))):
            handed.setdefault((row.staff_member_id, row.session_id), []).append(row)
        keys = {f"{ACTIVITY_DUE}:{activity.id}:{m.id}:{s.id}" for s, m, _l, _e, _i in due}
        taken = set(db.session.scalars(select(OutboxMail.dedupe_key).where(OutboxMail.dedupe_key.in_(keys))))
        for session, member, locale, email, enrollment_id in due:
            key = f"{ACTIVITY_DUE}:{activity.id}:{member.id}:{session.id}"
            address = (email or member.email or "").strip()
            opens, closes = activities.window(activity, session)
            if not now < closes <= horizon:
                continue
            # (not yet open: no key taken, so the reminder goes once it opens)
            if key in taken or opens > now or "@" not in address or not activities.left_to_do(
                    activity, handed.get((member.id, session.id), [])):
                continue
            composed = compose_activity_reminder(activity, closes, member.full_name, locale)
            db.session.add(OutboxMail(
                dedupe_key=key, kind=ACTIVITY_DUE, to_address=address, to_name=member.full_name,
                subject=composed.subject[:300], body_text=composed.body, user_id=member.user_id,
                staff_member_id=member.id, enrollment_id=enrollment_id, municipality_id=member.municipality_id,
                status=QUEUED, attempts=0,
                next_attempt_at=utcnow()))
            queued += 1
    if queued:
        _deliver_after_commit()
    return queued


def reminded_activity(mail: OutboxMail) -> Activity | None:
    """The activity an ``activity_due`` reminder is about (its key names it)."""
    parts = (mail.dedupe_key or "").split(":")
    if mail.kind != ACTIVITY_DUE or len(parts) != 4 or not parts[1].isdigit():
        return None
    return db.session.get(Activity, int(parts[1]))
