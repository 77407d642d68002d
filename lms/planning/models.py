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
    note: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class PlanDemand(Model):
    """予定調査: how many staff one municipality wants to send to one session."""

    __tablename__ = "plan_demand"
    __table_args__ = (
        UniqueConstraint("plan_id", "session_id", "municipality_id"),
        CheckConstraint("requested >= 0", name="requested_nonnegative"),
        CheckConstraint("priority BETWEEN 1 AND 5", name="priority_range"),
        Index("ix_plan_demand_municipality", "plan_id", "municipality_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    plan_id: Mapped[int] = mapped_column(ForeignKey("training_plan.id", ondelete="CASCADE"))
    session_id: Mapped[int] = mapped_column(ForeignKey("training_session.id", ondelete="CASCADE"))
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
    adjustment by hand. ``published_at`` is set when it became the session's quota."""

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
