"""年間研修計画: a fiscal year's plan, the municipalities' demand survey (予定調査) and the
allocation of seats (割当) that becomes the sessions' quotas (割当人数)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model

# Plan status: a draft is the platform admin's alone; a published plan's survey is open to
# the training offices until its deadline; allocations are run on a published plan.
PLAN_DRAFT = "draft"
PLAN_PUBLISHED = "published"
PLAN_STATUSES = (PLAN_DRAFT, PLAN_PUBLISHED)

PRIORITIES = (1, 2, 3, 4, 5)  # 1 = highest

# What the training offices answer the survey for: each course (the allocation then divides a
# municipality's seats among the course's sessions) or, where the plan says so, each session.
SURVEY_BY_COURSE = "course"
SURVEY_BY_SESSION = "session"
SURVEY_UNITS = (SURVEY_BY_COURSE, SURVEY_BY_SESSION)


class TrainingPlan(Model):
    """One fiscal year's plan: the courses whose sessions start in that year."""

    __tablename__ = "training_plan"
    __table_args__ = (
        UniqueConstraint("fiscal_year"),
        CheckConstraint("guaranteed_minimum >= 0", name="guaranteed_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    fiscal_year: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(10), default=PLAN_DRAFT)
    # The demand survey closes at this time (answers are refused afterwards).
    survey_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Seats every requesting municipality gets first (保障枠), see lms.planning.allocation.
    guaranteed_minimum: Mapped[int] = mapped_column(default=1)
    survey_unit: Mapped[str] = mapped_column(String(10), default=SURVEY_BY_COURSE)
    note: Mapped[str] = mapped_column(Text, default="")
    # 研修負担金: whether a cancellation after the session's cancel deadline, and a confirmed
    # participant who did not attend, are charged like a participant.
    charge_late_cancellation: Mapped[bool] = mapped_column(default=True)
    charge_no_show: Mapped[bool] = mapped_column(default=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class PlanDemand(Model):
    """予定調査: how many staff one municipality wants to send to one course (``course_id``)
    or, in a plan surveyed per session, to one session (``session_id``)."""

    __tablename__ = "plan_demand"
    __table_args__ = (
        UniqueConstraint("plan_id", "session_id", "municipality_id"),
        UniqueConstraint("plan_id", "course_id", "municipality_id"),
        CheckConstraint("(session_id IS NULL) <> (course_id IS NULL)", name="one_item"),
        CheckConstraint("requested >= 0", name="requested_nonnegative"),
        CheckConstraint("priority BETWEEN 1 AND 5", name="priority_range"),
        Index("ix_plan_demand_municipality", "plan_id", "municipality_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("training_plan.id", ondelete="CASCADE"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("training_session.id", ondelete="CASCADE"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    requested: Mapped[int] = mapped_column(default=0)
    priority: Mapped[int] = mapped_column(default=3)
    comment: Mapped[str] = mapped_column(String(500), default="")
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    session = relationship("TrainingSession")
    municipality = relationship("Municipality")


class PlanAllocation(Model):
    """割当: one municipality's seats in one session, with the arithmetic behind them and any
    adjustment by hand. ``published_at`` is set when it became the session's quota.

    In a plan surveyed per course the arithmetic (requested … remainder_bonus) is the
    course's, ``course_seats`` the municipality's seats in the whole course, and ``seats``
    this session's part of them."""

    __tablename__ = "plan_allocation"
    __table_args__ = (
        UniqueConstraint("plan_id", "session_id", "municipality_id"),
        CheckConstraint("seats >= 0", name="seats_nonnegative"),
        CheckConstraint("adjusted_seats IS NULL OR adjusted_seats >= 0", name="adjusted_nonnegative"),
        Index("ix_plan_allocation_session", "session_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("training_plan.id", ondelete="CASCADE"))
    session_id: Mapped[int] = mapped_column(ForeignKey("training_session.id", ondelete="CASCADE"))
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    requested: Mapped[int] = mapped_column()
    priority: Mapped[int] = mapped_column()
    guaranteed: Mapped[int] = mapped_column()
    # The exact proportional share as a fraction (numerator / denominator).
    share_numerator: Mapped[int] = mapped_column()
    share_denominator: Mapped[int] = mapped_column()
    proportional: Mapped[int] = mapped_column()
    remainder_bonus: Mapped[int] = mapped_column()
    course_seats: Mapped[int | None] = mapped_column()
    seats: Mapped[int] = mapped_column()
    adjusted_seats: Mapped[int | None] = mapped_column()
    adjust_reason: Mapped[str] = mapped_column(String(500), default="")
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    session = relationship("TrainingSession")
    municipality = relationship("Municipality")

    @property
    def final_seats(self) -> int:
        return self.seats if self.adjusted_seats is None else self.adjusted_seats

    @property
    def share_display(self) -> str:
        value = round(self.share_numerator / self.share_denominator, 1) if self.share_denominator else 0.0
        return f"{value:.1f}" if value != int(value) else str(int(value))


# ---------------------------------------------------------------- 研修負担金 (fees)

# What a statement line charges for.
LINE_PARTICIPANT = "participant"
LINE_LATE_CANCELLATION = "late_cancellation"
LINE_NO_SHOW = "no_show"
LINE_CORRECTION = "correction"
LINE_KINDS = (LINE_PARTICIPANT, LINE_LATE_CANCELLATION, LINE_NO_SHOW, LINE_CORRECTION)


class PlanCourseFee(Model):
    """The fee per participant of one course in one year's plan, in whole yen (0 allowed)."""

    __tablename__ = "plan_course_fee"
    __table_args__ = (
        UniqueConstraint("plan_id", "course_id"),
        CheckConstraint("fee_yen >= 0", name="fee_nonnegative"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("training_plan.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    fee_yen: Mapped[int] = mapped_column(default=0)


class PlanFeeExemption(Model):
    """減免: a reduction in percent for a municipality, a course, or one municipality in one
    course (the most specific applies)."""

    __tablename__ = "plan_fee_exemption"
    __table_args__ = (
        UniqueConstraint("plan_id", "municipality_id", "course_id"),
        CheckConstraint("percent BETWEEN 1 AND 100", name="percent_range"),
        CheckConstraint("municipality_id IS NOT NULL OR course_id IS NOT NULL", name="names_something"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("training_plan.id", ondelete="CASCADE"))
    municipality_id: Mapped[int | None] = mapped_column(ForeignKey("municipality.id"))
    course_id: Mapped[int | None] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    percent: Mapped[int] = mapped_column()
    reason: Mapped[str] = mapped_column(String(500), default="")

    municipality = relationship("Municipality")
    course = relationship("Course")


class FeeStatement(Model):
    """An issued statement of one municipality's fees for one plan. Never changed after it
    is issued: a later version carries only the differences, as correction lines."""

    __tablename__ = "fee_statement"
    __table_args__ = (UniqueConstraint("plan_id", "municipality_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("training_plan.id", ondelete="CASCADE"))
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    version: Mapped[int] = mapped_column()
    total_yen: Mapped[int] = mapped_column()
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    municipality = relationship("Municipality")
    lines: Mapped[list[FeeStatementLine]] = relationship(back_populates="statement", order_by="FeeStatementLine.id")


class FeeStatementLine(Model):
    """One charge (or correction) on a statement, with what it was computed from."""

    __tablename__ = "fee_statement_line"
    __table_args__ = (Index("ix_fee_statement_line_statement", "statement_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    statement_id: Mapped[int] = mapped_column(ForeignKey("fee_statement.id", ondelete="CASCADE"))
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("enrollment.id"))
    kind: Mapped[str] = mapped_column(String(20))
    course_title: Mapped[str] = mapped_column(String(200))
    session_starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    staff_name: Mapped[str] = mapped_column(String(200))
    employee_number: Mapped[str] = mapped_column(String(50), default="")
    fee_yen: Mapped[int] = mapped_column()
    exemption_percent: Mapped[int] = mapped_column(default=0)
    amount_yen: Mapped[int] = mapped_column()
    note: Mapped[str] = mapped_column(String(500), default="")

    statement: Mapped[FeeStatement] = relationship(back_populates="lines")


# A training office's request about its seats of one session.
EXCHANGE_OFFER = "offer"  # give seats to another municipality
EXCHANGE_ASK = "ask"  # ask for more seats
EXCHANGE_PENDING, EXCHANGE_APPROVED, EXCHANGE_REJECTED = "pending", "approved", "rejected"


class SeatExchange(Model):
    """割当の譲渡・追加希望: an office offers seats to another municipality, or asks for more;
    the platform admin approves (the quotas change) or rejects (with a reason)."""

    __tablename__ = "seat_exchange"
    __table_args__ = (
        CheckConstraint("seats >= 1", name="seats_positive"),
        Index("ix_seat_exchange_plan_status", "plan_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("training_plan.id", ondelete="CASCADE"))
    session_id: Mapped[int] = mapped_column(ForeignKey("training_session.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(10))
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))  # who asks / offers
    to_municipality_id: Mapped[int | None] = mapped_column(ForeignKey("municipality.id"))  # an offer's recipient
    seats: Mapped[int] = mapped_column()
    reason: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(10), default=EXCHANGE_PENDING)
    decision_reason: Mapped[str] = mapped_column(String(500), default="")
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    session = relationship("TrainingSession")
    municipality = relationship("Municipality", foreign_keys=[municipality_id])
    to_municipality = relationship("Municipality", foreign_keys=[to_municipality_id])
