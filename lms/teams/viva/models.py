"""Viva Learning: the per-tenant switch, and a mirror of what was last sent to each tenant.

The mirror rows record the hash of the JSON last sent for an item, so that a change reaches
Graph once (a run that finds the same hash sends nothing) and the nightly reconciliation
knows what Graph should hold.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model

# VivaActivity.kind: a 指名研修 (mandatory assignment) or the learner's own enrollment.
ASSIGNMENT = "assignment"
SELF_INITIATED = "self"


class VivaTenant(Model):
    """A municipality's tenant as a Viva Learning provider: the provider's registration id
    (created by the tenant's admin, see docs/viva-learning.md) and the switch."""

    __tablename__ = "viva_tenant"

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36), unique=True)
    enabled: Mapped[bool] = mapped_column(default=False)
    registration_id: Mapped[str] = mapped_column(String(100), default="")
    # "" never run, "ok", "failed" (last_error says why)
    status: Mapped[str] = mapped_column(String(10), default="")
    last_error: Mapped[str] = mapped_column(Text, default="")
    last_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_reconciled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class VivaContent(Model):
    """A course as learningContent in a tenant: what was last sent (its hash) and Graph's id."""

    __tablename__ = "viva_content"
    __table_args__ = (UniqueConstraint("tenant_id", "course_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(100))
    content_id: Mapped[str] = mapped_column(String(200), default="")  # learningContent.id
    is_active: Mapped[bool] = mapped_column(default=True)
    sent_hash: Mapped[str] = mapped_column(String(64), default="")
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class VivaActivity(Model):
    """A learner's course activity in a tenant (one per staff member, course and fiscal year).

    A row is written with ``activity_id`` empty and ``pending_by`` (the worker) *before* the
    POST that creates the activity: a run that finds such a row of a worker that died looks the
    activity up by its external id before creating it again."""

    __tablename__ = "viva_activity"
    __table_args__ = (
        UniqueConstraint("tenant_id", "staff_member_id", "course_id", "fiscal_year"),
        UniqueConstraint("tenant_id", "external_id"),
        Index("ix_viva_activity_course_year", "course_id", "fiscal_year"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    staff_member_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id"), index=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"))
    fiscal_year: Mapped[int] = mapped_column()
    kind: Mapped[str] = mapped_column(String(10))
    external_id: Mapped[str] = mapped_column(String(36))
    activity_id: Mapped[str] = mapped_column(String(200), default="")  # learningCourseActivity.id
    sent_status: Mapped[str] = mapped_column(String(12), default="")
    sent_hash: Mapped[str] = mapped_column(String(64), default="")
    pending_by: Mapped[str | None] = mapped_column(String(200))
    pending_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
