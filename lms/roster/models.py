"""The staff roster (職員名簿) of each municipality.

Enrollments, attendance and completions belong to a StaffMember, so that staff who
never signed in can be nominated and reported, and a transfer keeps their history.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, UniqueConstraint, case
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model
from lms.roster.kana import normalise_kana

ACTIVE = "active"
LEFT = "left"


class StaffMember(Model):
    __tablename__ = "staff_member"
    __table_args__ = (
        # The integration API's pages and incremental syncs (lms.api.paging): a municipality's rows
        # in (updated_at, id) order.
        Index("ix_staff_member_municipality_updated", "municipality_id", "updated_at", "id"),
        # The platform client's syncs of every municipality (lms.api: (updated_at, id) pages).
        Index("ix_staff_member_updated", "updated_at", "id"),
        UniqueConstraint("municipality_id", "employee_number"),
        Index("ix_staff_member_municipality_department", "municipality_id", "department"),
        # Covering index for the dashboards (lms.completion.reports: index-only scans).
        Index("ix_staff_member_reporting", "municipality_id", "status",
              postgresql_include=["department", "job_title", "hired_on", "user_id"]),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    employee_number: Mapped[str] = mapped_column(String(20))  # 職員番号
    full_name: Mapped[str] = mapped_column(String(100))  # 氏名
    full_name_kana: Mapped[str] = mapped_column(String(200), default="")  # 氏名カナ
    department: Mapped[str] = mapped_column(String(200), default="")  # 所属
    job_title: Mapped[str] = mapped_column(String(100), default="")  # 職名
    job_grade: Mapped[str] = mapped_column(String(50), default="", server_default="")  # 職層 (係長級, 課長級 …)
    # 所属長 of their 所属 (department), or its deputy (代理): they approve their 所属's requests
    # for courses whose approval goes through the department head (lms.enrollment.approvals).
    department_head: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    deputy_head: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    # Microsoft 365 sign-in name (UPN), stored lower-case; used to link at first sign-in.
    sign_in_name: Mapped[str] = mapped_column(String(320), default="", index=True)
    email: Mapped[str] = mapped_column(String(320), default="")
    status: Mapped[str] = mapped_column(String(10), default=ACTIVE)
    hired_on: Mapped[date | None] = mapped_column(Date)  # 採用日, for "new staff of a fiscal year"
    left_on: Mapped[date | None] = mapped_column(Date)
    # Where the entry came from: csv, graph, sign_in (created at first sign-in), manual, demo.
    source: Mapped[str] = mapped_column(String(10), default="manual")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"), unique=True)
    # The Entra identity this entry is linked to (kept even if the user row is deactivated).
    entra_tenant_id: Mapped[str | None] = mapped_column(String(36))
    entra_object_id: Mapped[str | None] = mapped_column(String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    municipality = relationship("Municipality")
    user = relationship("User", back_populates="staff_member")
    history: Mapped[list[StaffHistory]] = relationship(
        back_populates="staff_member", order_by="StaffHistory.effective_on"
    )

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE

    @validates("full_name_kana")
    def _normalise_kana(self, _key: str, value: str | None) -> str:
        return normalise_kana(value)

    def __repr__(self) -> str:
        return f"<StaffMember {self.employee_number} {self.full_name}>"


def kana_order() -> tuple:
    """Roster order wherever staff are listed: by 氏名カナ (full-width katakana, so 五十音順),
    entries without kana (synced from Microsoft 365, which has none) last, then 職員番号."""
    return (case((StaffMember.full_name_kana == "", 1), else_=0), StaffMember.full_name_kana,
            StaffMember.employee_number)


class StaffHistory(Model):
    """A transfer (人事異動) or departure: the department and title before and after."""

    __tablename__ = "staff_history"

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_member_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id"), index=True)
    effective_on: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(10))  # transfer, left, returned
    from_department: Mapped[str] = mapped_column(String(200), default="")
    to_department: Mapped[str] = mapped_column(String(200), default="")
    from_job_title: Mapped[str] = mapped_column(String(100), default="")
    to_job_title: Mapped[str] = mapped_column(String(100), default="")
    recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    staff_member: Mapped[StaffMember] = relationship(back_populates="history")
