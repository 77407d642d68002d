"""Courses (研修) and their sessions (研修回)."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import CheckConstraint, ForeignKey, Index, String, Text, UniqueConstraint, event, or_
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship
from sqlalchemy.sql import expression

from lms.common.i18n import localized_name
from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.courses import next_session
from lms.extensions import Model

# Course status
DRAFT = "draft"
PUBLISHED = "published"
CANCELLED = "cancelled"
COURSE_STATUSES = (DRAFT, PUBLISHED, CANCELLED)

# Session delivery
TEAMS = "teams"
ONSITE = "onsite"
HYBRID = "hybrid"
DELIVERIES = (TEAMS, ONSITE, HYBRID)
# What each delivery is called (the session form, the catalogue, the change notices).
DELIVERY_LABELS = {
    TEAMS: _l("オンライン（Teams）"),
    ONSITE: _l("会場（集合）"),  # a delivery, not the venue's own label 「会場」
    HYBRID: _l("ハイブリッド（会場と Teams）"),
}

# Session status
SCHEDULED = "scheduled"
SESSION_STATUSES = (SCHEDULED, CANCELLED)

# Completion modes (used by the completion area)
BY_ATTENDANCE = "attendance"
BY_ARCHIVE = "archive"
BY_EITHER = "either"
BY_BOTH = "both"
COMPLETION_MODES = (BY_ATTENDANCE, BY_ARCHIVE, BY_EITHER, BY_BOTH)


class SearchSynonym(Model):
    """A group of words a catalogue search treats as one (エクセル Excel): ``words`` separated
    by spaces, as the platform admin typed them (lms.courses.search folds them)."""

    __tablename__ = "search_synonym"

    id: Mapped[int] = mapped_column(primary_key=True)
    words: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Category(Model):
    __tablename__ = "category"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    name_en: Mapped[str] = mapped_column(String(100), default="")
    sort_order: Mapped[int] = mapped_column(default=0)

    @property
    def label(self) -> str:
        """The name in the page's language (the stored English name in English mode)."""
        return localized_name(self.name, self.name_en)


class Course(Model):
    __tablename__ = "course"
    __table_args__ = (
        CheckConstraint("attendance_threshold_pct BETWEEN 1 AND 100", name="attendance_threshold"),
        CheckConstraint("viewing_threshold_pct BETWEEN 1 AND 100", name="viewing_threshold"),
        Index("ix_course_status_category", "status", "category_id"),
        # The catalogue lists published courses newest first.
        Index("ix_course_status_published", "status", "published_at"),
        # The catalogue's sort keys, read from the index alone (lms.courses.next_session).
        Index("ix_course_status_next_session", "status", "next_session_at", "published_at", "id"),
        Index("ix_course_owner", "owner_id"),
        # Substring search (LIKE '%…%') on PostgreSQL: pg_trgm serves patterns of 3+ characters.
        Index(
            "ix_course_search_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    summary: Mapped[str] = mapped_column(String(500), default="")
    description_md: Mapped[str] = mapped_column(Text, default="")
    category_id: Mapped[int | None] = mapped_column(ForeignKey("category.id"))
    target_audience: Mapped[str] = mapped_column(String(500), default="")
    # All municipalities, or only those listed in course_eligibility.
    eligible_all: Mapped[bool] = mapped_column(default=True)
    # The approval steps of a learner's own request: their 所属長 (supervisor_approval) then
    # their municipality's training office (requires_approval); either, both or none.
    requires_approval: Mapped[bool] = mapped_column(default=False)
    supervisor_approval: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    # 選考: after its approval steps a learner's request waits for the organiser, who decides
    # the places (受講決定), the reserves (補欠) and the rest (見送り) — lms.enrollment.selection.
    selection: Mapped[bool] = mapped_column(default=False, server_default=sa_false())
    status: Mapped[str] = mapped_column(String(10), default=DRAFT)
    # Normalised (NFKC, case-folded) title + summary + description + category for substring
    # search; kept up to date by lms.courses.services.
    search_text: Mapped[str] = mapped_column(Text, default="")
    completion_mode: Mapped[str] = mapped_column(String(10), default=BY_EITHER)
    attendance_threshold_pct: Mapped[int] = mapped_column(default=75)
    viewing_threshold_pct: Mapped[int] = mapped_column(default=90)
    # 連続講座: the share of a series' parts to attend (a make-up part counts for the one it
    # replaces) for its live attendance to count — 欠席が1/4を超えると未修了 (default 75%).
    series_threshold_pct: Mapped[int] = mapped_column(default=75, server_default="75")
    # Organizer mailbox (UPN or object id) for Teams meetings of this course, if not the trainer's.
    organizer_mailbox: Mapped[str] = mapped_column(String(320), default="")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set with the course's prerequisites (lms.courses.services.set_prerequisites): the
    # enrollment path asks about completions only for such a course.
    has_prerequisites: Mapped[bool] = mapped_column(default=False, server_default=expression.false())
    # Who the course is for beyond the municipality (lms.courses.audience): 職層 and 職名 values
    # (one per line; empty = any), years of service (inclusive, either end optional) and new
    # hires of the fiscal year only.
    audience_grades: Mapped[str] = mapped_column(Text, default="", server_default="")
    audience_titles: Mapped[str] = mapped_column(Text, default="", server_default="")
    min_years_of_service: Mapped[int | None] = mapped_column()
    max_years_of_service: Mapped[int | None] = mapped_column()
    new_hires_only: Mapped[bool] = mapped_column(default=False, server_default=expression.false())
    # Start of the next scheduled session, kept by the database (lms.courses.next_session);
    # the application never writes it.
    next_session_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    category = relationship("Category")
    owner = relationship("User")
    sessions: Mapped[list[TrainingSession]] = relationship(
        back_populates="course", order_by="TrainingSession.starts_at"
    )
    eligibility: Mapped[list[CourseEligibility]] = relationship(
        back_populates="course", cascade="all, delete-orphan"
    )
    prerequisites: Mapped[list[CoursePrerequisite]] = relationship(
        foreign_keys="CoursePrerequisite.course_id", cascade="all, delete-orphan",
        order_by="CoursePrerequisite.id",
    )

    @property
    def eligible_municipality_ids(self) -> set[int]:
        return {row.municipality_id for row in self.eligibility}

    def is_open_to(self, municipality_id: int | None) -> bool:
        if self.eligible_all:
            return True
        return municipality_id is not None and municipality_id in self.eligible_municipality_ids


class CourseEligibility(Model):
    __tablename__ = "course_eligibility"
    # "Open to my municipality" looks rows up by municipality.
    __table_args__ = (Index("ix_course_eligibility_municipality", "municipality_id", "course_id"),)

    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"), primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), primary_key=True)

    course: Mapped[Course] = relationship(back_populates="eligibility")
    municipality = relationship("Municipality")


class TrainingSession(Model):
    """A session (研修回). ``confirmed_count`` is kept by the enrollment service in the same
    transaction as every status change; the CHECK makes overbooking impossible at the
    database level whatever the code does. ``waitlisted_count`` is kept by the database
    (lms.enrollment.triggers)."""

    __tablename__ = "training_session"
    __table_args__ = (
        CheckConstraint("capacity >= 0", name="capacity_nonnegative"),
        CheckConstraint("confirmed_count >= 0 AND confirmed_count <= capacity", name="not_overbooked"),
        CheckConstraint("waitlisted_count >= 0", name="waitlisted_nonnegative"),
        CheckConstraint("ends_at > starts_at", name="ends_after_start"),
        Index("ix_training_session_course_starts", "course_id", "starts_at"),
        Index("ix_training_session_starts_at", "starts_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"))
    title: Mapped[str] = mapped_column(String(200), default="")  # e.g. 第1回
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delivery: Mapped[str] = mapped_column(String(10), default=TEAMS)
    location: Mapped[str] = mapped_column(String(300), default="")
    join_url: Mapped[str] = mapped_column(String(2000), default="")
    capacity: Mapped[int] = mapped_column(default=0)
    confirmed_count: Mapped[int] = mapped_column(default=0)
    # Kept by database triggers on enrollment (lms.enrollment.triggers), never by the code;
    # read it under the session's lock (the enrollment services reload it with the lock).
    waitlisted_count: Mapped[int] = mapped_column(default=0, server_default="0")
    enroll_opens_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enroll_closes_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    cancel_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(10), default=SCHEDULED)
    # 連続講座: the sessions of a series (its dated parts) name its first one, the first one
    # itself included (NULL: a session on its own). Learners enrol in the first; the other
    # parts follow that decision (lms.enrollment.series). A make-up part (補講) is a session of
    # the series that stands in for the part ``makeup_for_id`` for whoever missed it.
    series_id: Mapped[int | None] = mapped_column(ForeignKey("training_session.id"), index=True)
    makeup_for_id: Mapped[int | None] = mapped_column(ForeignKey("training_session.id"))
    # Bumped on every change enrollees must hear about (time, place, link).
    revision: Mapped[int] = mapped_column(default=1)
    reminder_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Teams meeting through Microsoft Graph (empty until created).
    organizer_user_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    graph_organizer: Mapped[str] = mapped_column(String(320), default="")
    graph_transaction_id: Mapped[str] = mapped_column(String(64), default="")
    graph_event_id: Mapped[str] = mapped_column(String(512), default="")
    graph_ical_uid: Mapped[str] = mapped_column(String(512), default="")
    graph_online_meeting_id: Mapped[str] = mapped_column(String(512), default="")
    graph_sync_status: Mapped[str] = mapped_column(String(20), default="")
    graph_sync_error: Mapped[str] = mapped_column(Text, default="")
    graph_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attendance_imported_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Secret for onsite QR check-in (rotated by the trainer).
    checkin_token: Mapped[str] = mapped_column(String(64), default="")
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    course: Mapped[Course] = relationship(back_populates="sessions")
    organizer = relationship("User")
    quotas: Mapped[list[SessionQuota]] = relationship(
        back_populates="session", cascade="all, delete-orphan"
    )

    @property
    def free_seats(self) -> int:
        return max(self.capacity - self.confirmed_count, 0)

    @property
    def duration_seconds(self) -> int:
        return int((self.ends_at - self.starts_at).total_seconds())

    @property
    def has_managed_meeting(self) -> bool:
        """The session's Teams meeting is one Manabi made (or is making) through Graph: its
        link is written by Manabi, and a different link typed over it is the trainer's choice
        to hold the session elsewhere (lms.teams cancels Manabi's meeting)."""
        return bool(self.graph_event_id or self.graph_transaction_id)

    @property
    def meeting_link(self) -> str:
        """The Teams join link learners are given: none for a session held only at a venue
        (a link kept from before a switch to 会場 would contradict the change notice)."""
        return (self.join_url or "") if self.delivery in (TEAMS, HYBRID) else ""


@event.listens_for(TrainingSession.__table__, "after_create")
def _install_next_session(_table, connection, **_kw) -> None:
    # create_all: the triggers that keep course.next_session_at (the migration installs them
    # in a migrated database).
    next_session.install(connection)


class CoursePrerequisite(Model):
    """受講要件: a course that must be completed before this one may be taken — in any fiscal
    year, or within the ``within_fiscal_years`` years up to the session's own."""

    __tablename__ = "course_prerequisite"
    __table_args__ = (
        UniqueConstraint("course_id", "required_course_id"),
        CheckConstraint("course_id <> required_course_id", name="not_itself"),
        CheckConstraint("within_fiscal_years IS NULL OR within_fiscal_years BETWEEN 1 AND 20",
                        name="within_fiscal_years_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id", ondelete="CASCADE"))
    required_course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    within_fiscal_years: Mapped[int | None] = mapped_column()

    required_course: Mapped[Course] = relationship(foreign_keys=[required_course_id])


class TrainingPath(Model):
    """研修体系: courses taken one after another (新任 → 2年目 → 主任), shown to learners with
    their progress along it. Kept by the platform admins."""

    __tablename__ = "training_path"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    steps: Mapped[list[TrainingPathStep]] = relationship(
        back_populates="path", cascade="all, delete-orphan", order_by="TrainingPathStep.position")


class TrainingPathStep(Model):
    __tablename__ = "training_path_step"
    __table_args__ = (UniqueConstraint("path_id", "course_id"), UniqueConstraint("path_id", "position"))

    id: Mapped[int] = mapped_column(primary_key=True)
    path_id: Mapped[int] = mapped_column(ForeignKey("training_path.id", ondelete="CASCADE"))
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    position: Mapped[int] = mapped_column()

    path: Mapped[TrainingPath] = relationship(back_populates="steps")
    course: Mapped[Course] = relationship()


class SessionQuota(Model):
    """割当人数: seats of a session held for one municipality."""

    __tablename__ = "session_quota"
    __table_args__ = (
        UniqueConstraint("session_id", "municipality_id"),
        CheckConstraint("seats >= 0", name="seats_nonnegative"),
        CheckConstraint("confirmed_count >= 0 AND confirmed_count <= seats", name="within_quota"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("training_session.id", ondelete="CASCADE"))
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"))
    seats: Mapped[int] = mapped_column(default=0)
    confirmed_count: Mapped[int] = mapped_column(default=0)

    session: Mapped[TrainingSession] = relationship(back_populates="quotas")
    municipality = relationship("Municipality")


def is_a_place():
    """SQL: the session is a place of its own — a session alone, or a 連続講座's first part (its
    later parts and make-ups follow the first's places and are not counted again)."""
    return or_(TrainingSession.series_id.is_(None), TrainingSession.series_id == TrainingSession.id)
