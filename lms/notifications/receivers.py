"""Signal receivers of the notifications area (run inside the sender's transaction)."""

from __future__ import annotations

from sqlalchemy import select

from lms.common.signals import enrollment_status_changed, session_updated
from lms.enrollment.models import Enrollment
from lms.extensions import db
from lms.notifications.compose import CHANGE_LABELS, compose_enrollment_notice
from lms.notifications.models import QUEUED, OutboxMail
from lms.notifications.services import CHANGED, queue_enrollment_notice


@enrollment_status_changed.connect
def _queue_status_notice(enrollment, old_status=None, notice: str | None = None, **_):
    """The learner hears of every status change. The seat was decided under the session's
    lock, which is still held: only the outbox row is written now; its texts are composed
    after the commit (see lms.notifications.services)."""
    if notice:
        queue_enrollment_notice(enrollment, notice, fresh=old_status is None, compose=False)


@session_updated.connect
def _describe_session_changes(session, actor=None, changes=None, **_):
    """The "changed" notices of this revision say what changed (old → new).

    The courses area queues them just before sending this signal, in the same
    transaction; here they are recomposed with the changes, before anything is committed.
    """
    relevant = {name: value for name, value in (changes or {}).items() if name in CHANGE_LABELS}
    if not relevant:
        return
    mails = db.session.scalars(
        select(OutboxMail).where(
            OutboxMail.kind == CHANGED,
            OutboxMail.status == QUEUED,
            OutboxMail.dedupe_key.like(f"enrollment:%:{CHANGED}:rev{session.revision}"),
            OutboxMail.enrollment_id.in_(select(Enrollment.id).where(Enrollment.session_id == session.id)),
        )
    ).all()
    for mail in mails:
        enrollment = db.session.get(Enrollment, mail.enrollment_id)
        with db.session.no_autoflush:
            composed = compose_enrollment_notice(enrollment, CHANGED, changes=relevant)
        mail.subject, mail.body_text, mail.ics = composed.subject[:300], composed.body, composed.ics
