"""Signal receivers of the notifications area (run inside the sender's transaction)."""

from __future__ import annotations

from sqlalchemy import select

from lms.common.signals import (
    approval_step_reached,
    enrollment_status_changed,
    office_notice,
    report_returned,
    series_places_cancelled,
    session_updated,
)
from lms.courses.services import NOTIFIED_FIELDS
from lms.enrollment.models import ACTIVE_STATUSES, RETURNED_STEP, SELECTION_STEP, Enrollment
from lms.enrollment.models import PENDING as AWAITING_APPROVAL
from lms.extensions import db
from lms.notifications.compose import CHANGE_LABELS, compose_enrollment_notice
from lms.notifications.models import QUEUED
from lms.notifications.services import (
    CHANGED,
    RETURNED,
    queue_approval_requests,
    queue_enrollment_notice,
    queue_moved_notices,
    queue_office_notices,
    queue_report_returned,
    queue_series_cancelled_notice,
    resubmissions,
)


@enrollment_status_changed.connect
def _queue_status_notice(enrollment, old_status=None, notice: str | None = None, **_):
    """The learner hears of every status change. The seat was decided under the session's
    lock, which is still held: only the outbox row is written now; its texts are composed
    after the commit (see lms.notifications.services)."""
    if notice:
        queue_enrollment_notice(enrollment, notice, fresh=old_status is None, compose=False)


@series_places_cancelled.connect
def _queue_series_notice(_sender, enrollment_ids=(), **_):
    """A learner's days and make-ups of a 連続講座 that went together (published without a
    notice each): one notice lists them all."""
    queue_series_cancelled_notice(list(enrollment_ids))


@enrollment_status_changed.connect
def _queue_approval_requests(enrollment, new_status=None, **_):
    """An enrollment now awaiting approval is told to whoever answers its first step (the
    organiser's 選考 is not told request by request: they decide a session's requests together
    on its 選考 page)."""
    if new_status == AWAITING_APPROVAL and enrollment.approval_step != SELECTION_STEP:
        queue_approval_requests(enrollment)


@approval_step_reached.connect
def _queue_next_step_requests(enrollment, step: str | None = None, moved_from: str | None = None, **_):
    """Approved at one step, sent again, or moved to another 所属 (``moved_from``): the
    approvers it waits for now are told; after a move, so are the 所属長 of the 所属 it left.
    Returned to the learner (差し戻し): the learner is told why."""
    if step == RETURNED_STEP:
        queue_enrollment_notice(enrollment, RETURNED, dedupe_suffix=f"r{resubmissions(enrollment.id)}")
        return
    if step == SELECTION_STEP:
        return
    queue_approval_requests(enrollment)
    if moved_from:
        queue_moved_notices(enrollment, moved_from)


@session_updated.connect
def _queue_changed_notices(session, actor=None, changes=None, **_):
    """A change of time, place, link or delivery (a new ``revision``) is told to every
    active enrollee, saying what changed (old → new). A notice of this revision queued
    already is recomposed with the changes."""
    changes = changes or {}
    if not any(name in changes for name in NOTIFIED_FIELDS):
        return
    relevant = {name: value for name, value in changes.items() if name in CHANGE_LABELS} or None
    enrollments = db.session.scalars(
        select(Enrollment).where(Enrollment.session_id == session.id, Enrollment.status.in_(ACTIVE_STATUSES))
    ).all()
    for enrollment in enrollments:
        mail = queue_enrollment_notice(enrollment, CHANGED, dedupe_suffix=f"rev{session.revision}", changes=relevant)
        if mail is not None and relevant and mail.status == QUEUED and mail not in db.session.new:
            # Queued earlier in this revision without the changes: say what changed.
            with db.session.no_autoflush:
                composed = compose_enrollment_notice(enrollment, CHANGED, changes=relevant)
            mail.subject, mail.body_text, mail.ics = composed.subject[:300], composed.body, composed.ics


@office_notice.connect
def _queue_office_notices(_sender, municipality_ids=(), key: str = "", subject: str = "", body: str = "",
                          platform_admins: bool = False, **_):
    """A notice for the training offices of some municipalities, or the platform admins
    (composed by the sender)."""
    queue_office_notices(list(municipality_ids), key, subject, body, platform_admins=platform_admins)


@report_returned.connect
def _queue_report_returned(submission, comment: str = "", **_):
    """A 受講報告 returned by its reviewer: its writer is told why (by mail, after the commit)."""
    queue_report_returned(submission, comment)
