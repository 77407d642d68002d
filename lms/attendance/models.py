"""Attendance of a session: imported from Teams, taken by roll call or QR check-in, or corrected."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model

# Sources
TEAMS_REPORT = "teams"
ROLL_CALL = "roll_call"
QR_CHECKIN = "qr"
MANUAL = "manual"


class Attendance(Model):
    __tablename__ = "attendance"
    __table_args__ = (
        # One row per staff member per session once matched.
        Index(
            "uq_attendance_session_staff",
            "session_id",
            "staff_member_id",
            unique=True,
        ),
        # Covering index for the dashboards (lms.completion.reports: index-only scans).
        Index("ix_attendance_staff_reporting", "staff_member_id", "attended", "session_id"),
        # The integration API's syncs ((updated_at, id) pages).
        Index("ix_attendance_updated", "updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_session.id"), index=True)
    staff_member_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id"), index=True)
    source: Mapped[str] = mapped_column(String(10), default=TEAMS_REPORT)
    attended_seconds: Mapped[int] = mapped_column(default=0)
    # Percentage of the scheduled time attended, and the verdict by the course rule.
    attended_pct: Mapped[int] = mapped_column(default=0)
    attended: Mapped[bool] = mapped_column(default=False)
    # [[join_iso, leave_iso], ...]
    intervals: Mapped[list] = mapped_column(JSON, default=list)
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Manual correction (audited)
    corrected_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    correction_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    session = relationship("TrainingSession")
    staff_member = relationship("StaffMember")


class AttendanceRecord(Model):
    """One raw attendance record from a Teams attendance report, kept as received.

    Matched to a staff member by Entra object id (with tenant) first, e-mail second,
    never by display name; unmatched records stay visible for manual matching.
    """

    __tablename__ = "attendance_record"
    __table_args__ = (
        Index("uq_attendance_record_report_record", "report_id", "record_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_session.id"), index=True)
    report_id: Mapped[str] = mapped_column(String(200))
    record_id: Mapped[str] = mapped_column(String(200))
    identity_id: Mapped[str] = mapped_column(String(64), default="")
    identity_tenant_id: Mapped[str] = mapped_column(String(64), default="")
    email: Mapped[str] = mapped_column(String(320), default="")
    display_name: Mapped[str] = mapped_column(String(300), default="")
    role: Mapped[str] = mapped_column(String(40), default="")
    total_seconds: Mapped[int] = mapped_column(default=0)
    intervals: Mapped[list] = mapped_column(JSON, default=list)
    raw: Mapped[dict] = mapped_column(JSON, default=dict)
    staff_member_id: Mapped[int | None] = mapped_column(ForeignKey("staff_member.id"))
    matched_by: Mapped[str] = mapped_column(String(10), default="")  # oid, email, manual, ""
    matched_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    session = relationship("TrainingSession")
    staff_member = relationship("StaffMember")


class AttendanceUpload(Model):
    """An uploaded Teams attendance report file, read and matched, waiting for the trainer's
    confirmation. The parsed rows stay here (the confirmation sends only the trainer's
    choices for unmatched rows); a row is deleted when confirmed and expires after a while."""

    __tablename__ = "attendance_upload"

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_session.id", ondelete="CASCADE"), index=True)
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255), default="")
    digest: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(300), default="")
    # [{"name", "email", "upn", "role", "seconds", "intervals": [[iso, iso]], "staff_member_id", "matched_by"}]
    rows: Mapped[list] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
