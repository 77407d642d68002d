"""受講要件: which of a course's required courses a staff member has not completed.

A required course counts when the staff member holds a completion of it (not revoked) in
any fiscal year up to the session's — or, where the requirement says "within N fiscal
years", in one of the N years up to and including the session's (N = 1: the same year).
"""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select

from lms.common.timeutil import fiscal_year_of, to_tokyo
from lms.completion.models import COMPLETED, Completion
from lms.courses.models import Course, CoursePrerequisite
from lms.extensions import db


def missing(course_id: int, staff_member_id: int, session_starts_at: datetime) -> list[tuple[int, str, int | None]]:
    """(id, title, earliest fiscal year that counts or None) of each required course the staff
    member has not completed, in the order the trainer listed them. One statement."""
    fy = fiscal_year_of(to_tokyo(session_starts_at))
    rows = db.session.execute(
        select(CoursePrerequisite.required_course_id, Course.title, CoursePrerequisite.within_fiscal_years,
               select(Completion.fiscal_year)
               .where(Completion.staff_member_id == staff_member_id,
                      Completion.course_id == CoursePrerequisite.required_course_id,
                      Completion.status == COMPLETED, Completion.fiscal_year <= fy)
               .order_by(Completion.fiscal_year.desc()).limit(1).scalar_subquery().label("latest"))
        .join(Course, Course.id == CoursePrerequisite.required_course_id)
        .where(CoursePrerequisite.course_id == course_id)
        .order_by(CoursePrerequisite.id)
    ).all()
    result = []
    for required_id, title, within, latest in rows:
        earliest = fy - within + 1 if within else None
        if latest is None or (earliest is not None and latest < earliest):
            result.append((int(required_id), str(title), earliest))
    return result


def refusal_text(missing_courses: list[tuple[int, str, int | None]]) -> str:
    names = "、".join(
        _("「%(title)s」（%(year)s年度以降の修了）", title=title, year=earliest) if earliest
        else _("「%(title)s」", title=title)
        for _id, title, earliest in missing_courses
    )
    return _("この研修を受講するには、先に次の研修を修了している必要があります：%(names)s", names=names)
