"""What the activities area does when another area acts: a copied course takes its source's
activities and question bank."""

from __future__ import annotations

from lms.activities.services import copy_activities
from lms.common.signals import course_copied


@course_copied.connect
def _copy_with_course(course, *, source, actor, **_kwargs) -> None:
    copy_activities(source, course)
