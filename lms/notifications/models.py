"""The mail outbox: queued in the same transaction as the change, sent by the worker."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model

QUEUED = "queued"
SENDING = "sending"
SENT = "sent"
FAILED = "failed"
# Teams activity notice of a row (``teams_state``): not decided yet; sent to the person's
# activity feed; not through Teams (a kind Teams does not carry, or the person chose mail);
# Teams could not reach the person (``teams_error`` says why), so the mail goes.
TEAMS_PENDING = ""
TEAMS_SENT = "sent"
TEAMS_NOT_USED = "not_used"
TEAMS_UNAVAILABLE = "unavailable"
# Not sent because it no longer applied when its turn came (a reminder after a cancellation).
SKIPPED = "skipped"


class OutboxMail(Model):
    __tablename__ = "outbox_mail"
    __table_args__ = (Index("ix_outbox_mail_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    # Unique per logical notification, so a retried transaction never queues it twice.
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(30))
    to_address: Mapped[str] = mapped_column(String(320))
    to_name: Mapped[str] = mapped_column(String(200), default="")
    subject: Mapped[str] = mapped_column(String(300))
    body_text: Mapped[str] = mapped_column(Text)
    ics: Mapped[str] = mapped_column(Text, default="")
    staff_member_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id"))
    enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollment.id"))
    municipality_id: Mapped[int | None] = mapped_column(ForeignKey("municipality.id"))
    # The recipient's account, for a notice to someone who is not addressed through a roster
    # entry (a training office's approval request); staff members are found through
    # ``staff_member_id``.
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    teams_state: Mapped[str] = mapped_column(String(12), default=TEAMS_PENDING, server_default=TEAMS_PENDING)
    teams_error: Mapped[str] = mapped_column(String(300), default="", server_default="")
    teams_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(10), default=QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Set while a worker holds the row; a stale claim is taken over after a crash.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    message_id: Mapped[str] = mapped_column(String(300), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
