"""受講要件 and 研修体系: which of a course's required courses a staff member has not
completed, and how far they have come along each training path.

A required course counts when the staff member holds a completion of it (not revoked) in
any fiscal year up to the session's — or, where the requirement says "within N fiscal
years", in one of the N years up to and including the session's (N = 1: the same year).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import func, select

from lms.common.i18n import join_list
from lms.common.timeutil import fiscal_year_of, to_tokyo
from lms.completion.models import COMPLETED, Completion
from lms.courses.models import Course, CoursePrerequisite, TrainingPath, TrainingPathStep
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
    names = join_list(
        _("「%(title)s」（%(year)s年度以降の修了）", title=title, year=earliest) if earliest
        else _("「%(title)s」", title=title)
        for _id, title, earliest in missing_courses
    )
    return _("この研修を受講するには、先に次の研修を修了している必要があります：%(names)s", names=names)


@dataclass(frozen=True)
class PathStep:
    course_id: int
    title: str
    completed_fiscal_year: int | None  # the latest year completed, or None


@dataclass(frozen=True)
class PathProgress:
    name: str
    description: str
    steps: list[PathStep]

    @property
    def done(self) -> int:
        return sum(1 for s in self.steps if s.completed_fiscal_year is not None)

    @property
    def next_step(self) -> PathStep | None:
        return next((s for s in self.steps if s.completed_fiscal_year is None), None)


def path_progress(staff_member_id: int) -> list[PathProgress]:
    """Every 研修体系 with the staff member's completed steps: two statements."""
    steps = db.session.execute(
        select(TrainingPath.id, TrainingPath.name, TrainingPath.description, TrainingPathStep.course_id, Course.title)
        .join(TrainingPathStep, TrainingPathStep.path_id == TrainingPath.id)
        .join(Course, Course.id == TrainingPathStep.course_id)
        .order_by(TrainingPath.name, TrainingPath.id, TrainingPathStep.position)
    ).all()
    completed = dict(db.session.execute(
        select(Completion.course_id, func.max(Completion.fiscal_year))
        .where(Completion.staff_member_id == staff_member_id, Completion.status == COMPLETED)
        .group_by(Completion.course_id)
    ).all())
    result: list[PathProgress] = []
    last_path = None
    for path_id, name, description, course_id, title in steps:
        if path_id != last_path:
            last_path = path_id
            result.append(PathProgress(name, description or "", []))
        result[-1].steps.append(PathStep(int(course_id), str(title), completed.get(course_id)))
    return result
