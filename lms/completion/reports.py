"""Read-side aggregates for 受講履歴, the dashboards, the comparison and the exports.

Every number is a SQL aggregate (GROUP BY); Python only merges a few grouped result
sets keyed by course, group or month. ``municipality_id=None`` means every municipality
(platform admins); callers check access before calling.

Definitions (per fiscal year, sessions counted by their start in Tokyo's 年度):
- 申込者 (enrolled): staff with a confirmed enrollment in a session of the course.
- 出席者 (attended): staff whose attendance of such a session was judged attended.
- 修了 (completed): completion rows in status completed, by how they were earned.
- 未修了 (not yet): enrolled staff without a completion.
- 修了率: completed / (completed + not yet).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import and_, case, distinct, exists, func, literal, or_, select

from lms.common.timeutil import fiscal_year_bounds, fiscal_year_of, to_tokyo, utcnow
from lms.completion.models import (
    COMPLETED,
    VIA_ARCHIVE,
    VIA_BOTH,
    VIA_LIVE,
    VIA_MANUAL,
    Completion,
    MandatoryAssignment,
)
from lms.completion.services import assignment_members_filter
from lms.courses.models import Course, TrainingSession
from lms.enrollment.models import CONFIRMED, Enrollment
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.roster.models import ACTIVE, StaffMember


def current_fiscal_year() -> int:
    return fiscal_year_of(utcnow())


def rate(completed: int, base: int) -> float | None:
    return round(completed * 100.0 / base, 1) if base else None


# ---------------------------------------------------------------- per course


@dataclass
class CourseRow:
    course_id: int
    title: str
    enrolled: int = 0
    attended: int = 0
    completed_live: int = 0
    completed_archive: int = 0
    completed_both: int = 0
    completed_manual: int = 0
    not_yet: int = 0

    @property
    def completed(self) -> int:
        return self.completed_live + self.completed_archive + self.completed_both + self.completed_manual

    @property
    def rate(self) -> float | None:
        return rate(self.completed, self.completed + self.not_yet)


def _session_in_year(fiscal_year: int):
    start, end = fiscal_year_bounds(fiscal_year)
    return and_(TrainingSession.starts_at >= start, TrainingSession.starts_at < end)


def _completed_exists(fiscal_year: int, staff_col, course_col):
    return exists().where(
        Completion.staff_member_id == staff_col,
        Completion.course_id == course_col,
        Completion.fiscal_year == fiscal_year,
        Completion.status == COMPLETED,
    )


def enrollment_counts_query(municipality_id: int | None, fiscal_year: int, course_ids=None):
    """course_id, enrolled, not_yet — the bare aggregate behind the dashboard's first columns."""
    not_completed = ~_completed_exists(fiscal_year, Enrollment.staff_member_id, TrainingSession.course_id)
    q = (
        select(
            TrainingSession.course_id,
            func.count(distinct(Enrollment.staff_member_id)).label("enrolled"),
            func.count(distinct(case((not_completed, Enrollment.staff_member_id)))).label("not_yet"),
        )
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .where(Enrollment.status == CONFIRMED, _session_in_year(fiscal_year))
        .group_by(TrainingSession.course_id)
    )
    if municipality_id is not None:
        q = q.join(StaffMember, StaffMember.id == Enrollment.staff_member_id).where(
            StaffMember.municipality_id == municipality_id
        )
    if course_ids is not None:
        q = q.where(TrainingSession.course_id.in_(course_ids))
    return q


def attendance_counts_query(municipality_id: int | None, fiscal_year: int, course_ids=None):
    from lms.attendance.models import Attendance

    q = (
        select(TrainingSession.course_id, func.count(distinct(Attendance.staff_member_id)).label("attended"))
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .where(Attendance.attended.is_(True), _session_in_year(fiscal_year))
        .group_by(TrainingSession.course_id)
    )
    if municipality_id is not None:
        q = q.join(StaffMember, StaffMember.id == Attendance.staff_member_id).where(
            StaffMember.municipality_id == municipality_id
        )
    if course_ids is not None:
        q = q.where(TrainingSession.course_id.in_(course_ids))
    return q


def completion_counts_query(municipality_id: int | None, fiscal_year: int, course_ids=None):
    q = (
        select(Completion.course_id, Completion.method, func.count().label("n"))
        .where(Completion.fiscal_year == fiscal_year, Completion.status == COMPLETED)
        .group_by(Completion.course_id, Completion.method)
    )
    if municipality_id is not None:
        q = q.join(StaffMember, StaffMember.id == Completion.staff_member_id).where(
            StaffMember.municipality_id == municipality_id
        )
    if course_ids is not None:
        q = q.where(Completion.course_id.in_(course_ids))
    return q


def course_summary(municipality_id: int | None, fiscal_year: int, course_ids=None) -> list[CourseRow]:
    rows: dict[int, CourseRow] = {}

    def row(course_id: int) -> CourseRow:
        if course_id not in rows:
            rows[course_id] = CourseRow(course_id=course_id, title="")
        return rows[course_id]

    for course_id, enrolled, not_yet in db.session.execute(
        enrollment_counts_query(municipality_id, fiscal_year, course_ids)
    ):
        r = row(course_id)
        r.enrolled, r.not_yet = enrolled, not_yet
    for course_id, attended in db.session.execute(attendance_counts_query(municipality_id, fiscal_year, course_ids)):
        row(course_id).attended = attended
    field_of = {VIA_LIVE: "completed_live", VIA_ARCHIVE: "completed_archive", VIA_BOTH: "completed_both",
                VIA_MANUAL: "completed_manual"}
    for course_id, method, n in db.session.execute(completion_counts_query(municipality_id, fiscal_year, course_ids)):
        name = field_of.get(method)
        if name:
            setattr(row(course_id), name, getattr(row(course_id), name) + n)
    if rows:
        titles = dict(db.session.execute(select(Course.id, Course.title).where(Course.id.in_(list(rows)))).all())
        for course_id, r in rows.items():
            r.title = titles.get(course_id, "")
    return sorted(rows.values(), key=lambda r: (-(r.enrolled + r.completed), r.title, r.course_id))


# ---------------------------------------------------------------- per 所属 / 職名


@dataclass
class GroupRow:
    name: str
    staff: int = 0
    enrolled: int = 0
    completed: int = 0

    @property
    def rate(self) -> float | None:
        return rate(self.completed, self.staff)


GROUPS = ("department", "job_title")


def group_breakdown(municipality_id: int | None, fiscal_year: int, by: str, course_id: int | None = None) -> list[GroupRow]:
    """Active staff per group, staff with a confirmed enrollment, and staff with at least one
    completion (of the course, if given) in the fiscal year; rate = completed / staff."""
    if by not in GROUPS:
        raise ValueError(by)
    col = getattr(StaffMember, by)
    scope = [StaffMember.municipality_id == municipality_id] if municipality_id is not None else []
    rows: dict[str, GroupRow] = {}

    def row(name: str) -> GroupRow:
        return rows.setdefault(name or "", GroupRow(name=name or ""))

    staff_q = select(col, func.count()).where(StaffMember.status == ACTIVE, *scope).group_by(col)
    for name, n in db.session.execute(staff_q):
        row(name).staff = n
    enrolled_q = (
        select(col, func.count(distinct(Enrollment.staff_member_id)))
        .select_from(Enrollment)
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
        .where(Enrollment.status == CONFIRMED, _session_in_year(fiscal_year), *scope)
        .group_by(col)
    )
    if course_id is not None:
        enrolled_q = enrolled_q.where(TrainingSession.course_id == course_id)
    for name, n in db.session.execute(enrolled_q):
        row(name).enrolled = n
    completed_q = (
        select(col, func.count(distinct(Completion.staff_member_id)))
        .select_from(Completion)
        .join(StaffMember, StaffMember.id == Completion.staff_member_id)
        .where(Completion.fiscal_year == fiscal_year, Completion.status == COMPLETED, *scope)
        .group_by(col)
    )
    if course_id is not None:
        completed_q = completed_q.where(Completion.course_id == course_id)
    for name, n in db.session.execute(completed_q):
        row(name).completed = n
    return sorted(rows.values(), key=lambda r: (-r.staff, r.name))


# ---------------------------------------------------------------- trend over the year


def _month_of_completion():
    """'YYYY-MM' of completed_at in Tokyo (no daylight saving: +9 hours on SQLite)."""
    if db.engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("Asia/Tokyo", Completion.completed_at), "YYYY-MM")
    return func.strftime("%Y-%m", Completion.completed_at, "+9 hours")


@dataclass
class MonthRow:
    month: str  # YYYY-MM
    completed: int = 0
    cumulative: int = 0

    @property
    def label_month(self) -> int:
        return int(self.month[5:])


def monthly_trend(municipality_id: int | None, fiscal_year: int, course_id: int | None = None) -> list[MonthRow]:
    month = _month_of_completion().label("month")
    q = (
        select(month, func.count())
        .where(Completion.fiscal_year == fiscal_year, Completion.status == COMPLETED)
        .group_by(month)
    )
    if municipality_id is not None:
        q = q.join(StaffMember, StaffMember.id == Completion.staff_member_id).where(
            StaffMember.municipality_id == municipality_id
        )
    if course_id is not None:
        q = q.where(Completion.course_id == course_id)
    counts = dict(db.session.execute(q).all())
    months = []
    total = 0
    for i in range(12):
        y, m = (fiscal_year, 4 + i) if i < 9 else (fiscal_year + 1, i - 8)
        key = f"{y:04d}-{m:02d}"
        total += counts.get(key, 0)
        months.append(MonthRow(month=key, completed=counts.get(key, 0), cumulative=total))
    return months


# ---------------------------------------------------------------- comparison of municipalities


@dataclass
class ComparisonCell:
    completed: int = 0
    not_yet: int = 0

    @property
    def rate(self) -> float | None:
        return rate(self.completed, self.completed + self.not_yet)


@dataclass
class ComparisonRow:
    municipality_id: int
    name: str
    cells: dict[int, ComparisonCell] = field(default_factory=dict)

    @property
    def total(self) -> ComparisonCell:
        return ComparisonCell(
            completed=sum(c.completed for c in self.cells.values()),
            not_yet=sum(c.not_yet for c in self.cells.values()),
        )


COMPARISON_DEFAULT_COURSES = 8
COMPARISON_MAX_COURSES = 20


def default_comparison_courses(fiscal_year: int) -> list[int]:
    """Courses mandatory in the year first, then those with most completions."""
    mandatory = list(
        db.session.scalars(
            select(MandatoryAssignment.course_id)
            .where(MandatoryAssignment.fiscal_year == fiscal_year)
            .group_by(MandatoryAssignment.course_id)
            .order_by(MandatoryAssignment.course_id)
            .limit(COMPARISON_DEFAULT_COURSES)
        )
    )
    if len(mandatory) >= COMPARISON_DEFAULT_COURSES:
        return mandatory
    busiest = db.session.scalars(
        select(Completion.course_id)
        .where(Completion.fiscal_year == fiscal_year, Completion.status == COMPLETED)
        .group_by(Completion.course_id)
        .order_by(func.count().desc(), Completion.course_id)
        .limit(COMPARISON_DEFAULT_COURSES)
    )
    for course_id in busiest:
        if course_id not in mandatory and len(mandatory) < COMPARISON_DEFAULT_COURSES:
            mandatory.append(course_id)
    return mandatory


def comparison_query(fiscal_year: int, course_ids: list[int]):
    """municipality_id, course_id, completed, not_yet: the bare aggregate of the comparison."""
    completed_flag = _completed_exists(fiscal_year, Enrollment.staff_member_id, TrainingSession.course_id)
    enrolled = (
        select(
            StaffMember.municipality_id.label("municipality_id"),
            TrainingSession.course_id.label("course_id"),
            func.count(distinct(case((~completed_flag, Enrollment.staff_member_id)))).label("not_yet"),
            literal(0).label("completed"),
        )
        .select_from(Enrollment)
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
        .where(Enrollment.status == CONFIRMED, _session_in_year(fiscal_year),
               TrainingSession.course_id.in_(course_ids))
        .group_by(StaffMember.municipality_id, TrainingSession.course_id)
    )
    completed = (
        select(
            StaffMember.municipality_id.label("municipality_id"),
            Completion.course_id.label("course_id"),
            literal(0).label("not_yet"),
            func.count().label("completed"),
        )
        .select_from(Completion)
        .join(StaffMember, StaffMember.id == Completion.staff_member_id)
        .where(Completion.fiscal_year == fiscal_year, Completion.status == COMPLETED,
               Completion.course_id.in_(course_ids))
        .group_by(StaffMember.municipality_id, Completion.course_id)
    )
    return enrolled.union_all(completed)


def comparison(fiscal_year: int, course_ids: list[int]) -> list[ComparisonRow]:
    municipalities = db.session.execute(
        select(Municipality.id, Municipality.name).where(Municipality.active.is_(True)).order_by(
            Municipality.sort_order, Municipality.code
        )
    ).all()
    rows = {mid: ComparisonRow(municipality_id=mid, name=name) for mid, name in municipalities}
    if course_ids:
        for mid, course_id, not_yet, completed in db.session.execute(comparison_query(fiscal_year, course_ids)):
            r = rows.get(mid)
            if r is None:
                continue
            cell = r.cells.setdefault(course_id, ComparisonCell())
            cell.not_yet += not_yet
            cell.completed += completed
    return list(rows.values())


# ---------------------------------------------------------------- mandatory assignments


def assignments_in_scope(municipality_id: int | None, fiscal_year: int) -> list[MandatoryAssignment]:
    q = select(MandatoryAssignment).where(MandatoryAssignment.fiscal_year == fiscal_year)
    if municipality_id is not None:
        q = q.where(or_(MandatoryAssignment.municipality_id == municipality_id,
                        MandatoryAssignment.municipality_id.is_(None)))
    return list(db.session.scalars(q.order_by(MandatoryAssignment.due_on, MandatoryAssignment.id)))


@dataclass
class AssignmentStatus:
    assignment: MandatoryAssignment
    targets: int
    completed: int

    @property
    def missing(self) -> int:
        return self.targets - self.completed

    @property
    def overdue(self) -> bool:
        return self.missing > 0 and self.assignment.due_on < to_tokyo(utcnow()).date()

    @property
    def rate(self) -> float | None:
        return rate(self.completed, self.targets)


def _assignment_completed(assignment: MandatoryAssignment):
    return _completed_exists(assignment.fiscal_year, StaffMember.id, literal(assignment.course_id))


def assignment_statuses(municipality_id: int | None, fiscal_year: int) -> list[AssignmentStatus]:
    result = []
    for a in assignments_in_scope(municipality_id, fiscal_year):
        members = assignment_members_filter(a, municipality_id)
        targets, completed = db.session.execute(
            select(func.count(), func.count(case((_assignment_completed(a), 1)))).select_from(StaffMember).where(members)
        ).one()
        result.append(AssignmentStatus(assignment=a, targets=targets, completed=completed))
    return result


def missing_staff_query(assignment: MandatoryAssignment, municipality_id: int | None):
    """Roster members of the assignment's group who have not completed the course —
    whether or not they ever signed in."""
    return (
        select(
            Municipality.name.label("municipality"),
            StaffMember.id.label("staff_member_id"),
            StaffMember.employee_number,
            StaffMember.full_name,
            StaffMember.department,
            StaffMember.job_title,
            StaffMember.hired_on,
            StaffMember.user_id,
        )
        .join(Municipality, Municipality.id == StaffMember.municipality_id)
        .where(assignment_members_filter(assignment, municipality_id), ~_assignment_completed(assignment))
        .order_by(Municipality.sort_order, StaffMember.department, StaffMember.employee_number, StaffMember.id)
    )


# ---------------------------------------------------------------- completion records


def completion_records_query(municipality_id: int | None, fiscal_year: int, course_id: int | None = None):
    """One row per completion (personal data): the list and its export."""
    q = (
        select(
            Completion.id,
            Municipality.name.label("municipality"),
            StaffMember.employee_number,
            StaffMember.full_name,
            StaffMember.department,
            StaffMember.job_title,
            Course.title.label("course"),
            Completion.fiscal_year,
            Completion.status,
            Completion.method,
            Completion.completed_at,
            Completion.certificate_serial,
        )
        .select_from(Completion)
        .join(StaffMember, StaffMember.id == Completion.staff_member_id)
        .join(Municipality, Municipality.id == StaffMember.municipality_id)
        .join(Course, Course.id == Completion.course_id)
        .where(Completion.fiscal_year == fiscal_year)
    )
    if municipality_id is not None:
        q = q.where(StaffMember.municipality_id == municipality_id)
    if course_id is not None:
        q = q.where(Completion.course_id == course_id)
    return q.order_by(Completion.id)


# ---------------------------------------------------------------- 受講履歴


@dataclass
class HistoryRow:
    course_id: int
    title: str
    fiscal_year: int
    last_activity: object = None
    enrolled: bool = False
    attended: bool = False
    viewed: bool = False
    completion: Completion | None = None


def learner_history(staff_member_id: int) -> list[HistoryRow]:
    """My courses (from enrollments, attendance, viewing and completions), newest first."""
    from lms.archives.models import Archive, ArchiveFile, ViewingProgress
    from lms.attendance.models import Attendance

    rows: dict[tuple[int, int], HistoryRow] = {}

    def touch(course_id, title, when, kind):
        fy = fiscal_year_of(when)
        r = rows.setdefault((course_id, fy), HistoryRow(course_id=course_id, title=title, fiscal_year=fy))
        setattr(r, kind, True)
        if r.last_activity is None or when > r.last_activity:
            r.last_activity = when

    for course_id, title, starts_at in db.session.execute(
        select(Course.id, Course.title, TrainingSession.starts_at)
        .join(TrainingSession, TrainingSession.course_id == Course.id)
        .join(Enrollment, Enrollment.session_id == TrainingSession.id)
        .where(Enrollment.staff_member_id == staff_member_id, Enrollment.status == CONFIRMED)
    ):
        touch(course_id, title, starts_at, "enrolled")
    for course_id, title, starts_at in db.session.execute(
        select(Course.id, Course.title, TrainingSession.starts_at)
        .join(TrainingSession, TrainingSession.course_id == Course.id)
        .join(Attendance, Attendance.session_id == TrainingSession.id)
        .where(Attendance.staff_member_id == staff_member_id, Attendance.attended.is_(True))
    ):
        touch(course_id, title, starts_at, "attended")
    for course_id, title, updated_at in db.session.execute(
        select(Course.id, Course.title, ViewingProgress.updated_at)
        .join(Archive, Archive.course_id == Course.id)
        .join(ArchiveFile, ArchiveFile.archive_id == Archive.id)
        .join(ViewingProgress, ViewingProgress.archive_file_id == ArchiveFile.id)
        .where(ViewingProgress.staff_member_id == staff_member_id, ViewingProgress.watched_seconds > 0)
    ):
        touch(course_id, title, updated_at, "viewed")
    for completion in db.session.scalars(
        select(Completion).where(Completion.staff_member_id == staff_member_id)
    ):
        key = (completion.course_id, completion.fiscal_year)
        r = rows.setdefault(key, HistoryRow(course_id=completion.course_id, title=completion.course.title,
                                            fiscal_year=completion.fiscal_year))
        r.completion = completion
        if r.last_activity is None:
            r.last_activity = completion.completed_at
    return sorted(rows.values(), key=lambda r: (-r.fiscal_year, r.title))


def today_tokyo() -> date:
    return to_tokyo(utcnow()).date()
