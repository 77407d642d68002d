"""研修体系 (training paths): an ordered run of courses, kept by the platform admins.

A path names its courses in the order staff take them; a learner sees each path with the
steps they have completed (lms.completion.reports.path_progress) and the course page names
the paths a course belongs to."""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import select

from lms.audit.services import record_action
from lms.auth.models import PLATFORM_ADMIN
from lms.common.errors import InvalidInput, NotAllowed
from lms.courses.models import CANCELLED, Course, TrainingPath, TrainingPathStep
from lms.extensions import db

MAX_STEPS = 10


@dataclass(frozen=True)
class PathInput:
    name: str
    description: str
    course_ids: list[int]  # in order; 0 = an empty step (ignored)


def can_manage_paths(user) -> bool:
    return bool(user and user.is_authenticated and user.has_role(PLATFORM_ADMIN))


def _require(user) -> None:
    if not can_manage_paths(user):
        raise NotAllowed(_("研修体系を管理する権限がありません。"))


def all_paths() -> list[TrainingPath]:
    return list(db.session.scalars(select(TrainingPath).order_by(TrainingPath.name, TrainingPath.id)))


def paths_of_course(course_id: int) -> list[TrainingPath]:
    return list(db.session.scalars(
        select(TrainingPath).join(TrainingPathStep).where(TrainingPathStep.course_id == course_id)
        .order_by(TrainingPath.name, TrainingPath.id)))


def step_choices() -> list[Course]:
    return list(db.session.scalars(select(Course).where(Course.status != CANCELLED).order_by(Course.title, Course.id)))


def _validate(data: PathInput, path: TrainingPath | None) -> list[int]:
    name = data.name.strip()
    if not name:
        raise InvalidInput(_("研修体系の名前を入力してください。"), field="name")
    if len(name) > 200:
        raise InvalidInput(_("200文字以内で入力してください。"), field="name")
    taken = db.session.scalar(select(TrainingPath.id).where(TrainingPath.name == name))
    if taken is not None and (path is None or taken != path.id):
        raise InvalidInput(_("同じ名前の研修体系がすでにあります。"), field="name")
    ids = [int(i) for i in data.course_ids if i]
    if len(ids) < 2:
        raise InvalidInput(_("研修を2つ以上、受講する順に選んでください。"), field="steps")
    if len(set(ids)) != len(ids):
        raise InvalidInput(_("同じ研修が2回選ばれています。"), field="steps")
    found = {c.id: c for c in db.session.scalars(select(Course).where(Course.id.in_(ids)))}
    if any(i not in found or found[i].status == CANCELLED for i in ids):
        raise InvalidInput(_("選べない研修が含まれています（存在しないか中止されています）。"), field="steps")
    return ids


def save_path(actor, data: PathInput, path: TrainingPath | None = None) -> TrainingPath:
    """Create or replace a path (name, description, its courses in order). Audited."""
    _require(actor)
    ids = _validate(data, path)
    created = path is None
    if path is None:
        path = TrainingPath(name=data.name.strip())
        db.session.add(path)
    path.name, path.description = data.name.strip(), data.description.strip()
    path.steps.clear()
    db.session.flush()  # the old steps go before the new positions are written
    path.steps.extend(TrainingPathStep(course_id=course_id, position=n) for n, course_id in enumerate(ids, start=1))
    db.session.flush()
    record_action(actor, "path.create" if created else "path.update", "training_path", path.id, None,
                  name=path.name, courses=[c.course.title for c in path.steps])
    return path


def delete_path(actor, path: TrainingPath) -> None:
    _require(actor)
    record_action(actor, "path.delete", "training_path", path.id, None, name=path.name)
    db.session.delete(path)
    db.session.flush()
