"""Enrollments (受講申込) of staff members in sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Date, ForeignKey, Index, String, Text, event, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model

PENDING = "pending_approval"
CONFIRMED = "confirmed"
WAITLISTED = "waitlisted"
REJECTED = "rejected"
CANCELLED = "cancelled"
STATUSES = (PENDING, CONFIRMED, WAITLISTED, REJECTED, CANCELLED)
# A staff member holds at most one enrollment in these states per session.
ACTIVE_STATUSES = (PENDING, CONFIRMED, WAITLISTED)

# How the enrollment came about.
SELF = "self"
NOMINATION = "nomination"
CSV = "csv"
SWAP = "swap"
SOURCES = (SELF, NOMINATION, CSV, SWAP)
# A place in a later part of a 連続講座, following the learner's place in its first part
# (lms.enrollment.series): never requested, approved or cancelled on its own.
SERIES = "series"

_ACTIVE_SQL = "status IN ('pending_approval', 'confirmed', 'waitlisted')"


@dataclass(frozen=True)
class Outcome:
    """A new arrival as decided: what the answer to the learner says."""

    enrollment_id: int
    status: str
    message: str


class Enrollment(Model):
    __tablename__ = "enrollment"
    if TYPE_CHECKING:
        # Set by lms.enrollment.services on a new arrival for the answer; not columns.
        position_at_arrival: int | None
        outcome_message: str
        outcome: Outcome
    __table_args__ = (
        # The integration API's pages and incremental syncs (lms.api.paging): a municipality's rows
        # in (updated_at, id) order.
        Index("ix_enrollment_municipality_updated", "municipality_id", "updated_at", "id"),
        # The platform client's syncs of every municipality (lms.api: (updated_at, id) pages).
        Index("ix_enrollment_updated", "updated_at", "id"),
        Index(
            "uq_enrollment_active_per_session",
            "session_id",
            "staff_member_id",
            unique=True,
            sqlite_where=text(_ACTIVE_SQL),
            postgresql_where=text(_ACTIVE_SQL),
        ),
        Index("ix_enrollment_session_status_arrival", "session_id", "status", "arrival_seq"),
        # The session's latest arrival (numbering a new one) in one probe.
        Index("ix_enrollment_session_arrival", "session_id", "arrival_seq"),
        Index("ix_enrollment_staff_status", "staff_member_id", "status"),
        # Covering indexes for the dashboards (lms.completion.reports: index-only scans).
        Index("ix_enrollment_staff_reporting", "staff_member_id", "status", "session_id"),
        Index("ix_enrollment_municipality_reporting", "municipality_id", "status", "session_id", "staff_member_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_session.id"))
    staff_member_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id"))
    # Municipality at the time of the request (quota accounting stays right after a transfer).
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), index=True)
    status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(12), default=SELF)
    # Order of arrival: the waitlist is promoted in this order. One more than the session's
    # latest, numbered by the INSERT under the session's row lock (lms.enrollment.seats); a
    # swap's new enrollment keeps the number of the one it replaces.
    arrival_seq: Mapped[int] = mapped_column(default=0)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    waitlisted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    late_cancellation: Mapped[bool] = mapped_column(default=False)
    # Why it was rejected, refused or cancelled (shown to the learner).
    reason: Mapped[str] = mapped_column(Text, default="")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # While pending: the step it waits for ("supervisor": the 所属長, "office": the training
    # office; None is the office too, as before supervisors existed).
    approval_step: Mapped[str | None] = mapped_column(String(12))
    # A swap (差し替え) cancels one nominee and confirms another in the same seat.
    replaces_enrollment_id: Mapped[int | None] = mapped_column(ForeignKey("enrollment.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    session = relationship("TrainingSession")
    staff_member = relationship("StaffMember")
    municipality = relationship("Municipality")
    requested_by = relationship("User", foreign_keys=[requested_by_id])
    decided_by = relationship("User", foreign_keys=[decided_by_id])
    cancelled_by = relationship("User", foreign_keys=[cancelled_by_id])

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


# Approval steps (Enrollment.approval_step, EnrollmentApproval.step).
SUPERVISOR_STEP = "supervisor"
OFFICE_STEP = "office"
# 選考: the organiser decides, after the other steps (Course.selection).
SELECTION_STEP = "selection"
# Returned to the learner for a change (差し戻し): the request waits for them to send it again.
RETURNED_STEP = "returned"
# What a step did (EnrollmentApproval.decision): approved (and passed on, or decided the seat),
# rejected, or passed on without an approver (no 所属長 is registered for the 所属).
APPROVED = "approved"
STEP_REJECTED = "rejected"
SKIPPED_NO_APPROVER = "no_approver"
RETURNED = "returned"
RESUBMITTED = "resubmitted"  # (step RETURNED_STEP: the learner sent it again, with a note)
SELECTED = "selected"  # (step SELECTION_STEP: 受講決定 — a seat)
RESERVED = "reserved"  # (step SELECTION_STEP: 補欠 — the waitlist, in arrival order)
NOT_SELECTED = "not_selected"  # (step SELECTION_STEP: 見送り — rejected, with the reason)


class EnrollmentApproval(Model):
    """One step's answer to a request, shown to the learner with its date (and audited)."""

    __tablename__ = "enrollment_approval"

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id", ondelete="CASCADE"), index=True)
    step: Mapped[str] = mapped_column(String(12))
    decision: Mapped[str] = mapped_column(String(12))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    comment: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    actor = relationship("User")


class ApprovalDelegation(Model):
    """While a 所属長 (or deputy) is away, someone else of the municipality approves their 所属's
    requests in their place, from ``starts_on`` to ``ends_on`` (Tokyo dates, inclusive)."""

    __tablename__ = "approval_delegation"
    __table_args__ = (Index("ix_approval_delegation_delegate", "delegate_id", "ends_on"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delegator_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id", ondelete="CASCADE"), index=True)
    delegate_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id", ondelete="CASCADE"))
    starts_on: Mapped[date] = mapped_column(Date)
    ends_on: Mapped[date] = mapped_column(Date)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    delegator = relationship("StaffMember", foreign_keys=[delegator_id])
    delegate = relationship("StaffMember", foreign_keys=[delegate_id])


@event.listens_for(Enrollment.__table__, "after_create")
def _install_waitlist_count(_table, connection, **_kw) -> None:
    # create_all: the triggers that keep training_session.waitlisted_count (the migration
    # installs them in a migrated database).
    from lms.enrollment.triggers import install

    install(connection)
