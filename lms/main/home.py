"""What each role reads first on the home page: a few figures and short lists, each from one
query (never one per row), scoped like the pages they link to — a municipal admin sees only
their own municipality."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import and_, exists, func, or_, select

from lms.archives.models import DRAFT as ARCHIVE_DRAFT
from lms.archives.models import VERIFYING, Archive, ArchiveFile
from lms.attendance.models import Attendance
from lms.audit.models import AuditLog
from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, TRAINER
from lms.common.timeutil import utcnow
from lms.completion import reports
from lms.courses.models import DRAFT, PUBLISHED, SCHEDULED, Course, SessionQuota, TrainingSession
from lms.enrollment.models import CONFIRMED, PENDING, Enrollment
from lms.extensions import db
from lms.municipalities.models import TenantMapping
from lms.notifications.models import FAILED, OutboxMail

LIST_LIMIT = 5
# A session that ended this long ago without a roll call is no longer a reminder.
ROLL_CALL_WINDOW = timedelta(days=60)


@dataclass
class TrainerHome:
    upcoming: list[TrainingSession] = field(default_factory=list)
    roll_call_missing: list[TrainingSession] = field(default_factory=list)
    archives_waiting: list[Archive] = field(default_factory=list)


@dataclass
class MunicipalHome:
    municipality_id: int
    pending: int = 0
    quotas_open: list[SessionQuota] = field(default_factory=list)
    mandatory_missing: int = 0
    fiscal_year: int = 0
    mandatory_courses: int = 0  # mandatory designations of the year (none: no 0 to read as "all done")


@dataclass
class PlatformHome:
    tenants: int = 0
    mail_failed: int = 0
    denials: list[AuditLog] = field(default_factory=list)
    courses_without_sessions: list[Course] = field(default_factory=list)
    drafts: int = 0


def _owned(user):
    """Courses the trainer owns (a platform admin who is also a trainer: the same rule)."""
    return Course.owner_id == user.id


def trainer_home(user) -> TrainerHome:
    now = utcnow()
    upcoming = db.session.scalars(
        select(TrainingSession).join(Course, Course.id == TrainingSession.course_id)
        .where(_owned(user), TrainingSession.status == SCHEDULED, TrainingSession.ends_at > now)
        .order_by(TrainingSession.starts_at).limit(LIST_LIMIT)
    ).all()
    has_confirmed = exists().where(Enrollment.session_id == TrainingSession.id, Enrollment.status == CONFIRMED)
    has_attendance = exists().where(Attendance.session_id == TrainingSession.id)
    missing = db.session.scalars(
        select(TrainingSession).join(Course, Course.id == TrainingSession.course_id)
        .where(_owned(user), TrainingSession.status == SCHEDULED, TrainingSession.ends_at <= now,
               TrainingSession.ends_at > now - ROLL_CALL_WINDOW, has_confirmed, ~has_attendance)
        .order_by(TrainingSession.starts_at.desc()).limit(LIST_LIMIT)
    ).all()
    verifying = exists().where(ArchiveFile.archive_id == Archive.id, ArchiveFile.status == VERIFYING)
    archives = db.session.scalars(
        select(Archive).join(Course, Course.id == Archive.course_id)
        .where(_owned(user), or_(Archive.status == ARCHIVE_DRAFT, verifying))
        .order_by(Archive.updated_at.desc()).limit(LIST_LIMIT)
    ).all()
    return TrainerHome(list(upcoming), list(missing), list(archives))


def municipal_home(municipality_id: int) -> MunicipalHome:
    now = utcnow()
    pending = db.session.scalar(
        select(func.count()).select_from(Enrollment)
        .where(Enrollment.municipality_id == municipality_id, Enrollment.status == PENDING)
    ) or 0
    quotas = db.session.scalars(
        select(SessionQuota).join(TrainingSession, TrainingSession.id == SessionQuota.session_id)
        .where(SessionQuota.municipality_id == municipality_id, SessionQuota.confirmed_count < SessionQuota.seats,
               TrainingSession.status == SCHEDULED, TrainingSession.starts_at > now,
               or_(TrainingSession.enroll_closes_at.is_(None), TrainingSession.enroll_closes_at > now))
        .order_by(func.coalesce(TrainingSession.enroll_closes_at, TrainingSession.starts_at), SessionQuota.id)
        .limit(LIST_LIMIT)
    ).all()
    fiscal_year = reports.current_fiscal_year()
    # One query per mandatory assignment of the year (a handful), none per staff member.
    statuses = reports.assignment_statuses(municipality_id, fiscal_year)
    missing = reports.mandatory_missing(statuses, municipality_id)
    return MunicipalHome(municipality_id, pending, list(quotas), missing, fiscal_year, len(statuses))


def platform_home() -> PlatformHome:
    tenants = db.session.scalar(select(func.count()).select_from(TenantMapping)) or 0
    failed = db.session.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.status == FAILED)) or 0
    denials = db.session.scalars(
        select(AuditLog).where(AuditLog.action == "access.denied")
        .order_by(AuditLog.occurred_at.desc(), AuditLog.id.desc()).limit(LIST_LIMIT)
    ).all()
    no_sessions = db.session.scalars(
        select(Course).where(Course.status.in_((DRAFT, PUBLISHED)),
                             ~exists().where(and_(TrainingSession.course_id == Course.id)))
        .order_by(Course.updated_at.desc()).limit(LIST_LIMIT)
    ).all()
    drafts = db.session.scalar(select(func.count()).select_from(Course).where(Course.status == DRAFT)) or 0
    return PlatformHome(tenants, failed, list(denials), list(no_sessions), drafts)


def home_panels(user) -> dict:
    """The home page's role sections for ``user`` (learners: none beyond the menu)."""
    panels: dict = {}
    if user.has_role(TRAINER):
        panels["trainer"] = trainer_home(user)
    if user.has_role(MUNICIPAL_ADMIN) and user.municipality_id is not None:
        panels["municipal"] = municipal_home(user.municipality_id)
    if user.has_role(PLATFORM_ADMIN):
        panels["platform"] = platform_home()
    return panels
