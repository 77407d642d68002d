"""Completions (修了), certificates (修了証) and mandatory assignments."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model

COMPLETED = "completed"
REVOKED = "revoked"

# How it was earned
VIA_LIVE = "live"
VIA_ARCHIVE = "archive"
VIA_BOTH = "both"
VIA_MANUAL = "manual"


class Completion(Model):
    __tablename__ = "completion"
    __table_args__ = (
        # The integration API's pages and incremental syncs (lms.api.paging): a municipality's rows
        # in (updated_at, id) order.
        Index("ix_completion_municipality_updated", "municipality_id", "updated_at", "id"),
        # The platform client's syncs of every municipality (lms.api: (updated_at, id) pages).
        Index("ix_completion_updated", "updated_at", "id"),
        UniqueConstraint("staff_member_id", "course_id", "fiscal_year"),
        # A course's completions in a year (the comparison, the certificates ZIP) and, with the
        # municipality, one summary key's (lms.completion.summary) from the index alone.
        Index("ix_completion_course_year_status_municipality", "course_id", "fiscal_year", "status",
              "municipality_id", postgresql_include=["staff_member_id", "method", "completed_at"]),
        Index("ix_completion_municipality_year", "municipality_id", "fiscal_year"),
        # Covering index for the dashboards (lms.completion.reports: index-only scans).
        Index("ix_completion_municipality_reporting", "municipality_id", "fiscal_year", "status",
              postgresql_include=["staff_member_id", "course_id", "method", "completed_at"]),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_member_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id"))
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"))
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    fiscal_year: Mapped[int] = mapped_column()
    status: Mapped[str] = mapped_column(String(10), default=COMPLETED)
    method: Mapped[str] = mapped_column(String(10))
    completed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    session_id: Mapped[int | None] = mapped_column(ForeignKey("training_session.id"))
    archive_id: Mapped[int | None] = mapped_column(ForeignKey("archive.id"))
    certificate_serial: Mapped[str | None] = mapped_column(String(40), unique=True)
    # Manual completion or revocation (audited)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    reason: Mapped[str] = mapped_column(Text, default="")
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    staff_member = relationship("StaffMember")
    course = relationship("Course")
    municipality = relationship("Municipality")


_EVERYWHERE = "municipality_id IS NULL"
_ALL_STAFF = "new_staff_fiscal_year IS NULL"


class MandatoryAssignment(Model):
    """A course marked mandatory for a group: municipality, 所属, 職名 or new staff of a year."""

    __tablename__ = "mandatory_assignment"
    __table_args__ = (
        # One assignment per course, year and group (lms.completion.services checks it first, with a
        # message naming the one there is). "Every municipality" and "not only new staff" are NULL,
        # and NULLs never clash in a unique index: one partial index for each combination of them
        # (both databases; an index on coalesce() is not reflected on SQLite).
        Index("uq_mandatory_assignment_group", "course_id", "fiscal_year", "municipality_id",
              "new_staff_fiscal_year", "department", "job_title", unique=True),
        Index("uq_mandatory_assignment_group_everywhere", "course_id", "fiscal_year", "new_staff_fiscal_year",
              "department", "job_title", unique=True, sqlite_where=text(_EVERYWHERE),
              postgresql_where=text(_EVERYWHERE)),
        Index("uq_mandatory_assignment_group_all_staff", "course_id", "fiscal_year", "municipality_id",
              "department", "job_title", unique=True, sqlite_where=text(_ALL_STAFF),
              postgresql_where=text(_ALL_STAFF)),
        Index("uq_mandatory_assignment_group_everywhere_all_staff", "course_id", "fiscal_year",
              "department", "job_title", unique=True, sqlite_where=text(f"{_EVERYWHERE} AND {_ALL_STAFF}"),
              postgresql_where=text(f"{_EVERYWHERE} AND {_ALL_STAFF}")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    fiscal_year: Mapped[int] = mapped_column()
    # Null: every municipality (platform admins only).
    municipality_id: Mapped[int | None] = mapped_column(ForeignKey("municipality.id"), index=True)
    department: Mapped[str] = mapped_column(String(200), default="")
    job_title: Mapped[str] = mapped_column(String(100), default="")
    # Staff hired in this fiscal year only.
    new_staff_fiscal_year: Mapped[int | None] = mapped_column()
    due_on: Mapped[date] = mapped_column(Date)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")

    course = relationship("Course")
    municipality = relationship("Municipality")


# ---------------------------------------------------------------- dashboard summaries
#
# What the dashboards count, kept per (municipality, fiscal year, course) and per
# (municipality, fiscal year, staff member), so that a dashboard reads a municipality's
# summary rows (a few thousand) instead of aggregating its enrollments, attendance and
# completions (tens of thousands). Maintained by lms.completion.summary in the same
# transaction as every change to those rows (never stale); ``flask lms completion-summary``
# checks them against a fresh aggregate or rebuilds them. A row with every count zero is
# not kept.


class CourseYearSummary(Model):
    """One municipality's figures for one course in one fiscal year (sessions counted by
    their start in Tokyo's 年度). Enrollments and completions count for the municipality
    recorded on them; attendance for the staff member's municipality.

    enrolled: staff with a confirmed enrollment in a session of the course; done: those of
    them with a completion (status completed); attended: staff judged attended in such a
    session; completed_*: completions by how they were earned; m1 … m12: completions by
    Tokyo month of completed_at, m1 = April … m12 = March."""

    __tablename__ = "completion_course_summary"

    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), primary_key=True)
    enrolled: Mapped[int] = mapped_column(default=0)
    done: Mapped[int] = mapped_column(default=0)
    attended: Mapped[int] = mapped_column(default=0)
    completed_live: Mapped[int] = mapped_column(default=0)
    completed_archive: Mapped[int] = mapped_column(default=0)
    completed_both: Mapped[int] = mapped_column(default=0)
    completed_manual: Mapped[int] = mapped_column(default=0)
    m1: Mapped[int] = mapped_column(default=0)
    m2: Mapped[int] = mapped_column(default=0)
    m3: Mapped[int] = mapped_column(default=0)
    m4: Mapped[int] = mapped_column(default=0)
    m5: Mapped[int] = mapped_column(default=0)
    m6: Mapped[int] = mapped_column(default=0)
    m7: Mapped[int] = mapped_column(default=0)
    m8: Mapped[int] = mapped_column(default=0)
    m9: Mapped[int] = mapped_column(default=0)
    m10: Mapped[int] = mapped_column(default=0)
    m11: Mapped[int] = mapped_column(default=0)
    m12: Mapped[int] = mapped_column(default=0)


class StaffYearSummary(Model):
    """Per staff member and fiscal year, for the 所属/職名 breakdowns: the number of courses
    with a confirmed enrollment (recorded for ``municipality_id``) and of completions
    (status completed, recorded for ``municipality_id``)."""

    __tablename__ = "completion_staff_summary"

    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), primary_key=True)
    fiscal_year: Mapped[int] = mapped_column(primary_key=True)
    staff_member_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id"), primary_key=True)
    enrolled_courses: Mapped[int] = mapped_column(default=0)
    completed_courses: Mapped[int] = mapped_column(default=0)
