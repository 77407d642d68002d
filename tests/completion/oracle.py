"""The test oracle of the dashboards: their figures aggregated afresh from the base tables.

The application reads the dashboards from summaries kept in step with every change
(lms.completion.reports.dashboard, lms.completion.summary); the tests compare them with
``fresh_dashboard``, an independent aggregate of enrollments, attendance, completions
and the roster in one statement (kept out of the application: one production way).
"""

from __future__ import annotations

from sqlalchemy import String, and_, cast, exists, func, literal, or_, select, union_all

from lms.attendance.models import Attendance
from lms.common.timeutil import fiscal_year_bounds
from lms.completion.models import COMPLETED, VIA_ARCHIVE, VIA_BOTH, VIA_LIVE, VIA_MANUAL, Completion
from lms.completion.reports import (
    GROUPS,
    CourseRow,
    Dashboard,
    GroupRow,
    assemble_dashboard,
    fiscal_month_key,
    tune_for_reports,
)
from lms.courses.models import Course, TrainingSession
from lms.enrollment.models import CONFIRMED, Enrollment
from lms.extensions import db
from lms.roster.models import ACTIVE, StaffMember


def in_year(fiscal_year: int):
    start, end = fiscal_year_bounds(fiscal_year)
    return and_(TrainingSession.starts_at >= start, TrainingSession.starts_at < end)


def month_of_completion():
    """'YYYY-MM' of completed_at in Tokyo (no daylight saving: +9 hours on SQLite)."""
    if db.engine.dialect.name == "postgresql":
        return func.to_char(func.timezone("Asia/Tokyo", Completion.completed_at), "YYYY-MM")
    return func.strftime("%Y-%m", Completion.completed_at, "+9 hours")




def fresh_dashboard_statement(municipality_id: int | None, fiscal_year: int, course_id: int | None = None):
    """Everything the dashboard counts, aggregated afresh from enrollments, attendance,
    completions and the roster, in one statement (the reference the summaries are checked
    against; the page reads the summaries, see ``reports.dashboard``). Kinds:
    course (key course id: enrolled), done (course id: enrolled and completed), method ("course:method": completions),
    e:/c:/s: + department|job_title (enrolled staff, staff with a completion — of ``course_id``
    if given —, active staff), month (YYYY-MM in Tokyo: completions), attended (course id).

    Enrollments and completions count for the municipality recorded on them; attendance and
    the 所属/職名 breakdowns follow the current roster.

    Written so that PostgreSQL can use hash aggregates and hash joins throughout (no
    count(DISTINCT …), which sorts): facts are made distinct first, groups are counted
    from the roster with semi-joins."""
    scope = [StaffMember.municipality_id == municipality_id] if municipality_id is not None else []
    roster = (
        select(StaffMember.id.label("staff_id"), StaffMember.department.label("department"),
               StaffMember.job_title.label("job_title"), StaffMember.status.label("status"))
        .where(*scope)
        .cte("roster_facts")
    )
    # Enrollments and completions belong to the municipality recorded on them (where the
    # staff member was when they enrolled / completed), found by a range scan of the
    # reporting indexes; the 所属/職名 breakdowns count the current roster.
    ef = (
        select(Enrollment.staff_member_id.label("staff_id"), TrainingSession.course_id.label("course_id"))
        .distinct()
        .select_from(Enrollment)
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .where(Enrollment.status == CONFIRMED, in_year(fiscal_year))
    )
    cf = (
        select(
            Completion.staff_member_id.label("staff_id"),
            Completion.course_id.label("course_id"),
            Completion.method.label("method"),
            month_of_completion().label("month"),
        )
        .select_from(Completion)
        .where(Completion.fiscal_year == fiscal_year, Completion.status == COMPLETED)
    )
    if municipality_id is not None:
        ef = ef.where(Enrollment.municipality_id == municipality_id)
        cf = cf.where(Completion.municipality_id == municipality_id)
    ef = ef.cte("enrollment_facts")
    cf = cf.cte("completion_facts")
    af = (
        select(Attendance.staff_member_id.label("staff_id"), TrainingSession.course_id.label("course_id"))
        .distinct()
        .select_from(Attendance)
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .join(roster, roster.c.staff_id == Attendance.staff_member_id)
        .where(Attendance.attended.is_(True), in_year(fiscal_year))
        .subquery("attendance_facts")
    )
    zero = literal(0)
    enrolled_and_done = exists().where(ef.c.staff_id == cf.c.staff_id, ef.c.course_id == cf.c.course_id)
    parts = [
        # enrolled per course; "done" = enrolled and completed (not yet = enrolled - done)
        select(literal("course").label("kind"), cast(ef.c.course_id, String).label("key"),
               func.count().label("n1"), zero.label("n2"))
        .group_by(ef.c.course_id),
        select(literal("done"), cast(cf.c.course_id, String), func.count(), zero)
        .where(enrolled_and_done).group_by(cf.c.course_id),
        select(literal("method"), cast(cf.c.course_id, String) + literal(":") + cf.c.method, func.count(), zero)
        .group_by(cf.c.course_id, cf.c.method),
        select(literal("attended"), cast(af.c.course_id, String), func.count(), zero).group_by(af.c.course_id),
    ]
    e_filter = [ef.c.course_id == course_id] if course_id is not None else []
    c_filter = [cf.c.course_id == course_id] if course_id is not None else []
    # Each staff member once, computed once for both breakdowns.
    enrolled_staff = select(ef.c.staff_id).where(*e_filter).distinct().cte("enrolled_staff")
    completed_staff = select(cf.c.staff_id).where(*c_filter).distinct().cte("completed_staff")
    for name in GROUPS:
        col = roster.c[name]
        for prefix, staff_set in (("e:", enrolled_staff), ("c:", completed_staff)):
            parts.append(
                select(literal(prefix + name), col, func.count(), zero)
                .select_from(roster.join(staff_set, staff_set.c.staff_id == roster.c.staff_id))
                .group_by(col)
            )
        # Staff: active now, or left but enrolled or completed in the year.
        active_or_seen = or_(roster.c.status == ACTIVE,
                             roster.c.staff_id.in_(select(enrolled_staff.c.staff_id)),
                             roster.c.staff_id.in_(select(completed_staff.c.staff_id)))
        parts.append(select(literal("s:" + name), col, func.count(), zero)
                     .where(active_or_seen).group_by(col))
    parts.append(select(literal("month"), cf.c.month, func.count(), zero).where(*c_filter).group_by(cf.c.month))
    return union_all(*parts)


def fresh_dashboard(municipality_id: int | None, fiscal_year: int, course_id: int | None = None) -> Dashboard:
    """What ``reports.dashboard`` shows, aggregated afresh from the base tables (one
    statement): slow for a large municipality; the tests compare the dashboard with it."""
    courses: dict[int, CourseRow] = {}
    groups: dict[str, dict[str, GroupRow]] = {name: {} for name in GROUPS}
    months: dict[str, int] = {}
    field_of = {VIA_LIVE: "completed_live", VIA_ARCHIVE: "completed_archive", VIA_BOTH: "completed_both",
                VIA_MANUAL: "completed_manual"}
    group_field = {"e": "enrolled", "c": "completed", "s": "staff"}

    def course(cid: int) -> CourseRow:
        return courses.setdefault(cid, CourseRow(course_id=cid, title=""))

    done: dict[int, int] = {}
    tune_for_reports(municipality_id is not None)
    for kind, key, n1, _n2 in db.session.execute(fresh_dashboard_statement(municipality_id, fiscal_year, course_id)):
        n1 = int(n1 or 0)
        if kind == "course":
            course(int(key)).enrolled = n1
        elif kind == "done":
            done[int(key)] = n1
        elif kind == "method":
            cid, _, method = key.partition(":")
            attr = field_of.get(method)
            if attr:
                r = course(int(cid))
                setattr(r, attr, getattr(r, attr) + n1)
        elif kind == "attended":
            course(int(key)).attended = n1
        elif kind == "month":
            months[key] = n1
        else:
            prefix, _, name = kind.partition(":")
            row = groups[name].setdefault(key or "", GroupRow(name=key or ""))
            setattr(row, group_field[prefix], n1)
    for cid, r in courses.items():
        r.not_yet = r.enrolled - done.get(cid, 0)
    if courses:
        titles = dict(db.session.execute(select(Course.id, Course.title).where(Course.id.in_(list(courses)))).all())
        for cid, r in courses.items():
            r.title = titles.get(cid, "")
    counts = [months.get(fiscal_month_key(fiscal_year, i), 0) for i in range(1, 13)]
    return assemble_dashboard(fiscal_year, courses.values(), groups, counts)
