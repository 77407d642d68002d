"""Queueing notifications in the outbox, in the caller's transaction.

The worker (lms.notifications.tasks) sends what is queued; a crash never loses a
notification, and a mail failure never touches the enrollment.
"""

from __future__ import annotations

from lms.extensions import db
from lms.notifications.models import OutboxMail

# Kinds of enrollment notification.
CONFIRMED = "confirmed"
WAITLISTED = "waitlisted"
PENDING = "pending"
PROMOTED = "promoted"
REJECTED = "rejected"
CHANGED = "changed"
CANCELLED = "cancelled"
REMINDER = "reminder"
KINDS = (CONFIRMED, WAITLISTED, PENDING, PROMOTED, REJECTED, CHANGED, CANCELLED, REMINDER)


def queue_enrollment_notice(enrollment, kind: str, *, dedupe_suffix: str = "") -> OutboxMail | None:
    """Queue the ``kind`` notice for ``enrollment`` (idempotent per enrollment, kind and suffix).

    Returns None when the staff member has no mail address.
    """
    from lms.notifications.compose import compose_enrollment_notice

    member = enrollment.staff_member
    address = (member.email or member.sign_in_name or "").strip()
    if not address:
        return None
    key = f"enrollment:{enrollment.id}:{kind}:{dedupe_suffix}"
    existing = db.session.query(OutboxMail).filter_by(dedupe_key=key).one_or_none()
    if existing is not None:
        return existing
    subject, body, ics = compose_enrollment_notice(enrollment, kind)
    mail = OutboxMail(
        dedupe_key=key,
        kind=kind,
        to_address=address,
        to_name=member.full_name,
        subject=subject,
        body_text=body,
        ics=ics,
        staff_member_id=member.id,
        enrollment_id=enrollment.id,
        municipality_id=member.municipality_id,
    )
    db.session.add(mail)
    return mail
