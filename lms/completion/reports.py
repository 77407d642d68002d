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

The dashboard reads these figures from summaries kept in step with every change
(lms.completion.summary; the tests check them against an aggregate of the base tables,
tests/completion/oracle.py). The platform view adds up the municipalities' figures: the same as counting across
all of them, since a staff member's enrollments and completions are recorded for the
municipality of their roster entry, which does not change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import and_, case, exists, func, literal, or_, select, text

from lms.activities.models import CONFIRMED as ACTIVITY_CONFIRMED
from lms.activities.models import QUIZ, REPORT, Activity, ActivitySubmission
from lms.activities.models import SUBMITTED as ACTIVITY_SUBMITTED
from lms.archives.models import Archive, ArchiveFile, ViewingProgress
from lms.attendance.models import Attendance
from lms.common.pagination import Page
from lms.common.timeutil import fiscal_year_bounds, fiscal_year_of, today_tokyo, utcnow
from lms.completion import summary
from lms.completion.models import (
    COMPLETED,
    Completion,
    CourseYearSummary,
    MandatoryAssignment,
    StaffYearSummary,
)
from lms.completion.services import assignment_members_filter
from lms.courses.models import Course, TrainingSession
from lms.enrollment.models import CONFIRMED, Enrollment
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.roster.models import ACTIVE, StaffMember


def current_fiscal_year() -> int:
    return fiscal_year_of(utcnow())


def fiscal_years_with_data(municipality_id: int | None, also=()) -> list[int]:
    """Fiscal years with any enrollment or completion in the scope (from the summaries),
    plus the years in ``also`` (None ignored), newest first."""
    query = select(CourseYearSummary.fiscal_year).distinct()
    if municipality_id is not None:
        query = query.where(CourseYearSummary.municipality_id == municipality_id)
    years = set(db.session.scalars(query))
    years.update(y for y in also if y is not None)
    return sorted(years, reverse=True)


def rate(completed: int, base: int) -> float | None:
    return round(completed * 100.0 / base, 1) if base else None


# ---------------------------------------------------------------- rows


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


@dataclass
class GroupRow:
    name: str
    staff: int = 0
    enrolled: int = 0
    completed: int = 0

    @property
    def rate(self) -> float | None:
        return rate(self.completed, self.staff)


@dataclass
class MonthRow:
    month: str  # YYYY-MM
    completed: int = 0
    cumulative: int = 0

    @property
    def label_month(self) -> int:
        return int(self.month[5:])


@dataclass
class Dashboard:
    courses: list[CourseRow]
    departments: list[GroupRow]
    job_titles: list[GroupRow]
    trend: list[MonthRow]


GROUPS = ("department", "job_title")


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


def _scope_filter(municipality_id: int | None):
    return [StaffMember.municipality_id == municipality_id] if municipality_id is not None else []


def tune_for_reports(scoped: bool) -> None:
    """Per transaction, PostgreSQL only: no JIT compilation (it costs more than these
    sub-second aggregates gain) and, for one municipality's few thousand rows, no
    parallel workers (their start-up costs more than they save)."""
    if db.engine.dialect.name != "postgresql":
        return
    db.session.execute(text("SET LOCAL jit = off"))
    if scoped:
        db.session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))


def fiscal_month_key(fiscal_year: int, index: int) -> str:
    """'YYYY-MM' of the fiscal year's month ``index`` (1 = April … 12 = March)."""
    y, m = (fiscal_year, 3 + index) if index <= 9 else (fiscal_year + 1, index - 9)
    return f"{y:04d}-{m:02d}"


def assemble_dashboard(fiscal_year: int, courses, groups: dict[str, dict[str, GroupRow]], month_counts: list[int]) -> Dashboard:
    trend, total = [], 0
    for i, n in enumerate(month_counts, start=1):
        total += n
        trend.append(MonthRow(month=fiscal_month_key(fiscal_year, i), completed=n, cumulative=total))
    return Dashboard(
        courses=sorted(courses, key=lambda r: (-(r.enrolled + r.completed), r.title, r.course_id)),
        departments=sorted(groups["department"].values(), key=lambda r: (-r.staff, r.name)),
        job_titles=sorted(groups["job_title"].values(), key=lambda r: (-r.staff, r.name)),
        trend=trend,
    )


# ---------------------------------------------------------------- the dashboard, from the summaries
#
# The page reads CourseYearSummary (one row per course with activity in the municipality
# and year) and, for the 所属/職名 breakdowns, the current roster joined to
# StaffYearSummary (one row per staff member). Both are kept in step with every change by
# lms.completion.summary (the tests compare the figures with tests/completion/oracle.py).


def summary_course_statement(municipality_id: int | None, fiscal_year: int):
    """course_id, title, then the CourseYearSummary counts (summed over municipalities for
    the platform view)."""
    s = CourseYearSummary
    if municipality_id is not None:
        return (
            select(s.course_id, Course.title, *(getattr(s, c) for c in summary.COURSE_COLUMNS))
            .join(Course, Course.id == s.course_id)
            .where(s.municipality_id == municipality_id, s.fiscal_year == fiscal_year)
        )
    return (
        select(s.course_id, Course.title, *(func.sum(getattr(s, c)) for c in summary.COURSE_COLUMNS))
        .join(Course, Course.id == s.course_id)
        .where(s.fiscal_year == fiscal_year)
        .group_by(s.course_id, Course.title)
    )


def summary_group_statement(municipality_id: int | None, fiscal_year: int, course_id: int | None = None):
    """department, job_title, staff, staff enrolled, staff with a completion (of
    ``course_id`` if given) — per (所属, 職名) pair of the current roster; the breakdowns
    add these up per 所属 and per 職名 (each staff member is in one pair). The staff are those
    active now and those who have left but enrolled or completed in the year: a rate is of
    people counted on both sides, so it never passes 100%."""
    if course_id is None:
        if municipality_id is not None:
            facts = (
                select(StaffYearSummary.staff_member_id.label("staff_id"),
                       StaffYearSummary.enrolled_courses.label("enrolled"),
                       StaffYearSummary.completed_courses.label("completed"))
                .where(StaffYearSummary.municipality_id == municipality_id,
                       StaffYearSummary.fiscal_year == fiscal_year)
                .subquery("staff_facts")
            )
        else:
            facts = (
                select(StaffYearSummary.staff_member_id.label("staff_id"),
                       func.max(StaffYearSummary.enrolled_courses).label("enrolled"),
                       func.max(StaffYearSummary.completed_courses).label("completed"))
                .where(StaffYearSummary.fiscal_year == fiscal_year)
                .group_by(StaffYearSummary.staff_member_id)
                .subquery("staff_facts")
            )
        joined = StaffMember.__table__.outerjoin(facts, facts.c.staff_id == StaffMember.id)
        enrolled, completed = facts.c.enrolled > 0, facts.c.completed > 0
    else:
        # One course: its few enrollments and completions in the scope, straight from the base tables.
        enrolled_q = (
            select(Enrollment.staff_member_id.label("staff_id")).distinct()
            .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
            .where(TrainingSession.course_id == course_id, _session_in_year(fiscal_year),
                   Enrollment.status == CONFIRMED)
        )
        completed_q = (
            select(Completion.staff_member_id.label("staff_id")).distinct()
            .where(Completion.course_id == course_id, Completion.fiscal_year == fiscal_year,
                   Completion.status == COMPLETED)
        )
        if municipality_id is not None:
            enrolled_q = enrolled_q.where(Enrollment.municipality_id == municipality_id)
            completed_q = completed_q.where(Completion.municipality_id == municipality_id)
        e, c = enrolled_q.subquery("enrolled_staff"), completed_q.subquery("completed_staff")
        enrolled_id, completed_id = e.c.staff_id, c.c.staff_id
        joined = (StaffMember.__table__.outerjoin(e, e.c.staff_id == StaffMember.id)
                  .outerjoin(c, c.c.staff_id == StaffMember.id))
        enrolled, completed = enrolled_id.is_not(None), completed_id.is_not(None)
    return (
        select(StaffMember.department, StaffMember.job_title,
               func.sum(case((or_(StaffMember.status == ACTIVE, enrolled, completed), 1), else_=0)),
               func.sum(case((enrolled, 1), else_=0)), func.sum(case((completed, 1), else_=0)))
        .select_from(joined)
        .where(*_scope_filter(municipality_id))
        .group_by(StaffMember.department, StaffMember.job_title)
    )


def dashboard_statements(municipality_id: int | None, fiscal_year: int, course_id: int | None = None) -> list:
    """The statements behind the dashboard's figures (the benchmark times them bare)."""
    return [summary_course_statement(municipality_id, fiscal_year),
            summary_group_statement(municipality_id, fiscal_year, course_id)]


def dashboard(municipality_id: int | None, fiscal_year: int, course_id: int | None = None) -> Dashboard:
    """Everything the dashboard shows except mandatory assignments, from the summaries:
    two statements."""
    courses: list[CourseRow] = []
    month_counts = [0] * 12
    tune_for_reports(municipality_id is not None)
    course_stmt, group_stmt = dashboard_statements(municipality_id, fiscal_year, course_id)
    for row in db.session.execute(course_stmt):
        cid, title, values = row[0], row[1], dict(zip(summary.COURSE_COLUMNS, (int(v or 0) for v in row[2:]),
                                                      strict=True))
        if course_id is None or cid == course_id:
            for i in range(12):
                month_counts[i] += values[f"m{i + 1}"]
        r = CourseRow(
            course_id=cid, title=title or "", enrolled=values["enrolled"], attended=values["attended"],
            completed_live=values["completed_live"], completed_archive=values["completed_archive"],
            completed_both=values["completed_both"], completed_manual=values["completed_manual"],
            not_yet=values["enrolled"] - values["done"],
        )
        if r.enrolled or r.attended or r.completed:
            courses.append(r)
    groups: dict[str, dict[str, GroupRow]] = {name: {} for name in GROUPS}
    for department, job_title, staff, enrolled, completed in db.session.execute(group_stmt):
        staff, enrolled, completed = int(staff or 0), int(enrolled or 0), int(completed or 0)
        for name, key in (("department", department or ""), ("job_title", job_title or "")):
            g = groups[name].setdefault(key, GroupRow(name=key))
            g.staff += staff
            g.enrolled += enrolled
            g.completed += completed
    for name in GROUPS:
        groups[name] = {k: g for k, g in groups[name].items() if g.staff or g.enrolled or g.completed}
    return assemble_dashboard(fiscal_year, courses, groups, month_counts)


def course_summary(municipality_id: int | None, fiscal_year: int) -> list[CourseRow]:
    return dashboard(municipality_id, fiscal_year).courses


def group_breakdown(municipality_id: int | None, fiscal_year: int, by: str, course_id: int | None = None) -> list[GroupRow]:
    """Active staff per group, staff with a confirmed enrollment, and staff with at least one
    completion (of the course, if given) in the fiscal year; rate = completed / staff."""
    if by not in GROUPS:
        raise ValueError(by)
    data = dashboard(municipality_id, fiscal_year, course_id)
    return data.departments if by == "department" else data.job_titles


def monthly_trend(municipality_id: int | None, fiscal_year: int, course_id: int | None = None) -> list[MonthRow]:
    return dashboard(municipality_id, fiscal_year, course_id).trend


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
    """Courses mandatory in the year first, then those with the most confirmed seats in the
    year (from the sessions' seat counters: cheap, and the same ranking as enrollments)."""
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
        select(TrainingSession.course_id)
        .where(_session_in_year(fiscal_year))
        .group_by(TrainingSession.course_id)
        .order_by(func.sum(TrainingSession.confirmed_count).desc(), TrainingSession.course_id)
        .limit(COMPARISON_DEFAULT_COURSES * 2)
    )
    for course_id in busiest:
        if course_id not in mandatory and len(mandatory) < COMPARISON_DEFAULT_COURSES:
            mandatory.append(course_id)
    return mandatory


def comparison_query(fiscal_year: int, course_ids: list[int]):
    """municipality_id, course_id, not_yet, completed: the comparison's figures, read from
    the summaries the dashboards read (one row per municipality and course)."""
    s = CourseYearSummary
    completed = s.completed_live + s.completed_archive + s.completed_both + s.completed_manual
    return (
        select(s.municipality_id, s.course_id, (s.enrolled - s.done).label("not_yet"), completed.label("completed"))
        .where(s.fiscal_year == fiscal_year, s.course_id.in_(course_ids))
    )


def comparison(fiscal_year: int, course_ids: list[int]) -> list[ComparisonRow]:
    """Every active municipality with its completed and not-yet figures of the courses:
    the figures of its own dashboard."""
    municipalities = db.session.execute(
        select(Municipality.id, Municipality.name).where(Municipality.active.is_(True)).order_by(
            Municipality.sort_order, Municipality.code
        )
    ).all()
    rows = {mid: ComparisonRow(municipality_id=mid, name=name) for mid, name in municipalities}
    tune_for_reports(scoped=False)
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
        return self.missing > 0 and self.assignment.due_on < today_tokyo()

    @property
    def rate(self) -> float | None:
        return rate(self.completed, self.targets)


@dataclass(frozen=True)
class Headline:
    """The figures a training office reads first (from the dashboard's own rows)."""

    enrolled: int  # enrollments counted per course (延べ)
    completed: int
    rate: float | None  # completed ÷ (completed + not yet), over every course
    mandatory_missing: int  # staff who have not yet completed a mandatory course (per course: 延べ)
    mandatory_overdue: int  # mandatory assignments past their due date with someone missing


def headline(courses: list[CourseRow], statuses: list[AssignmentStatus], municipality_id: int | None) -> Headline:
    completed = sum(c.completed for c in courses)
    return Headline(
        enrolled=sum(c.enrolled for c in courses),
        completed=completed,
        rate=rate(completed, completed + sum(c.not_yet for c in courses)),
        mandatory_missing=mandatory_missing(statuses, municipality_id),
        mandatory_overdue=sum(1 for s in statuses if s.overdue),
    )


def mandatory_missing(statuses: list[AssignmentStatus], municipality_id: int | None) -> int:
    """Staff who have not completed a course mandatory for them, once per course however many of
    the year's assignments make it mandatory for them (one for the whole municipality and one
    for a 所属 overlap). A course with one assignment: its own count; with more, one query over
    their groups together."""
    by_course: dict[int, list[AssignmentStatus]] = {}
    for s in statuses:
        by_course.setdefault(s.assignment.course_id, []).append(s)
    total = 0
    for group in by_course.values():
        if len(group) == 1:
            total += group[0].missing
            continue
        members = or_(*(assignment_members_filter(s.assignment, municipality_id) for s in group))
        total += db.session.scalar(
            select(func.count()).select_from(StaffMember)
            .where(members, ~_assignment_completed(group[0].assignment))
        ) or 0
    return total


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


def completion_records_query(municipality_id: int | None, fiscal_year: int | None, course_id: int | None = None):
    """One row per completion (personal data): the list and its export. ``fiscal_year``
    None: every year."""
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
    )
    if fiscal_year is not None:
        q = q.where(Completion.fiscal_year == fiscal_year)
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


def paginate_rows(query, page: int, per_page: int = 50) -> Page:
    """Page ``page`` (from 1; below 1 is 1) of the rows of ``query``, with their total."""
    page = max(page, 1)
    total = db.session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0
    items = list(db.session.execute(query.limit(per_page).offset((page - 1) * per_page)).all())
    return Page(items=items, total=total, page=page, per_page=per_page)


# ---------------------------------------------------------------- activities (課題の状況)


@dataclass(frozen=True)
class ActivityFigure:
    """One activity of a course: how many of the scope's staff submitted it, passed it (a quiz)
    and have it confirmed (a report), for sessions of the fiscal year. An anonymous survey
    counts who submitted only (its answers are not joined to anyone)."""

    activity_id: int
    course_title: str
    title: str
    kind: str
    required: bool
    submitted: int
    passed: int | None  # quizzes only
    confirmed: int | None  # reports only


def activity_figures(scope: int | None, fiscal_year: int, course_id: int | None = None,
                     limit: int = 200) -> list[ActivityFigure]:
    """Per published activity: the staff of ``scope`` (None: everyone) who submitted, passed,
    had confirmed — each person once, whatever their attempts. With ``course_id``, every
    activity of that course (zeros included); without, those someone in scope has worked on.
    One statement."""
    start, end = fiscal_year_bounds(fiscal_year)
    flag = lambda condition: func.max(case((condition, 1), else_=0))  # noqa: E731
    per_person = (
        select(ActivitySubmission.activity_id.label("activity_id"),
               flag(ActivitySubmission.status.in_([ACTIVITY_SUBMITTED, ACTIVITY_CONFIRMED])).label("submitted"),
               flag(ActivitySubmission.passed.is_(True)).label("passed"),
               flag(ActivitySubmission.status == ACTIVITY_CONFIRMED).label("confirmed"))
        .join(TrainingSession, TrainingSession.id == ActivitySubmission.session_id)
        .where(TrainingSession.starts_at >= start, TrainingSession.starts_at < end)
        .group_by(ActivitySubmission.activity_id, ActivitySubmission.staff_member_id)
    )
    if scope is not None:
        per_person = per_person.where(ActivitySubmission.municipality_id == scope)
    if course_id is not None:
        per_person = per_person.join(Activity, Activity.id == ActivitySubmission.activity_id).where(
            Activity.course_id == course_id)
    people = per_person.subquery()
    query = (
        select(Activity.id, Course.title, Activity.title, Activity.kind, Activity.required,
               func.coalesce(func.sum(people.c.submitted), 0), func.coalesce(func.sum(people.c.passed), 0),
               func.coalesce(func.sum(people.c.confirmed), 0))
        .join(Course, Course.id == Activity.course_id)
        .join(people, people.c.activity_id == Activity.id, isouter=course_id is not None)
        .where(Activity.published.is_(True))
        .group_by(Activity.id, Course.title, Activity.title, Activity.kind, Activity.required, Activity.position)
        .order_by(Course.title, Activity.position, Activity.id)
        .limit(limit)
    )
    if course_id is not None:
        query = query.where(Activity.course_id == course_id)
    return [ActivityFigure(aid, course, title, kind, bool(required), int(submitted),
                           int(passed) if kind == QUIZ else None, int(confirmed) if kind == REPORT else None)
            for aid, course, title, kind, required, submitted, passed, confirmed in db.session.execute(query)]
