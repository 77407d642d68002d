"""Viva Learning follows the courses, 指名研修, places and completions (in the sender's
transaction: the receivers only queue a viva_sync operation per enabled tenant, committed with
the change and run after commit; they never call Graph and never commit)."""

from __future__ import annotations

from lms.common.signals import (
    completion_changed,
    course_changed,
    enrollment_status_changed,
    mandatory_assignment_changed,
)
from lms.common.timeutil import fiscal_year_of
from lms.enrollment.models import CONFIRMED
from lms.teams.viva import services

# A course's changes that its learningContent shows (anything else changes nothing there).
CONTENT_FIELDS = {"status", "title", "summary", "description_md", "eligible_all", "municipality_ids"}


@course_changed.connect
def _on_course_changed(course, actor=None, changes=None, **_):
    if changes and not (set(changes) & CONTENT_FIELDS):
        return
    tenants = services.enabled_tenant_ids()
    if tenants:
        services.queue_changes(tenants, courses=[course.id])


@mandatory_assignment_changed.connect
def _on_assignment_changed(assignment, actor=None, action=None, before=None, **_):
    tenants = services.enabled_tenant_ids()
    if not tenants:
        return
    years = [(assignment.course_id, assignment.fiscal_year)]
    if before and tuple(before) != years[0]:
        years.append(tuple(before))
    # A deleted assignment is gone when the run comes: it finds the learners by their activities.
    services.queue_changes(tenants, course_years=years)


@completion_changed.connect
def _on_completion_changed(completion, old_status=None, new_status=None, **_):
    services.queue_learner(completion.staff_member_id, completion.course_id, completion.fiscal_year)


@enrollment_status_changed.connect
def _on_enrollment_status_changed(enrollment, old_status=None, new_status=None, **_):
    if CONFIRMED not in (old_status, new_status):
        return
    session = enrollment.session
    services.queue_learner(enrollment.staff_member_id, session.course_id, fiscal_year_of(session.starts_at))
