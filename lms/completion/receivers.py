"""Completions follow attendance and viewing, and the dashboard summaries follow enrollments,
attendance, completions, sessions and the roster: recomputed in the sender's transaction
(receivers run before its commit, so the summaries are committed with the change or not at
all). Activities are the exception: their completions are recomputed by a job once the
change is committed (lms.completion.tasks)."""

from __future__ import annotations

from functools import partial

from lms.common.after_commit import after_commit
from lms.common.signals import (
    activity_changed,
    activity_requirement_dropped,
    archive_part_removed,
    attendance_changed,
    completion_granted_at,
    enrollment_prerequisites,
    enrollment_status_changed,
    session_updated,
    staff_member_moved,
    viewing_changed,
)
from lms.completion import prerequisites, services, summary, tasks
from lms.enrollment.rules import MissingPrerequisite
from lms.extensions import db


@enrollment_status_changed.connect
def _on_enrollment_status_changed(enrollment, old_status: str | None = None, new_status: str = "", **_kw):
    summary.update_for_enrollment(db.session(), enrollment.municipality_id, enrollment.session_id,
                                  enrollment.staff_member_id, old_status, new_status or enrollment.status)


@activity_changed.connect
def _on_activity_changed(sender, staff_member_id: int | None = None, session_id: int | None = None, **_kw):
    """An activity submitted, passed, confirmed or returned: the completion follows (its
    summaries with it) — in the worker, once the change is committed, off the learner's
    request (a survey's rush after a session is thousands of submissions in minutes)."""
    if staff_member_id is not None and session_id is not None:
        after_commit(partial(tasks.recompute_after_commit, staff_member_id, session_id),
                     key=("completion.recompute", staff_member_id, session_id))


@activity_requirement_dropped.connect
def _on_activity_requirement_dropped(sender, course_id: int | None = None, **_kw):
    """An activity is no longer required (or no longer published): the completions it held
    back are granted — for the whole course, in the worker, once the change is committed."""
    if course_id is not None:
        _recompute_course_once_committed(course_id)


def _recompute_course_once_committed(course_id: int) -> None:
    """The course's learners with evidence and no completion, recomputed in the worker once the
    change is committed (once per course and transaction)."""
    after_commit(partial(tasks.recompute_course_after_commit, course_id), key=("completion.recompute_course", course_id))


@archive_part_removed.connect
def _on_archive_part_removed(sender, course_id: int | None = None, **_kw):
    """A part of an archive removed: whoever had watched all the others has watched it through."""
    if course_id is not None:
        _recompute_course_once_committed(course_id)


@attendance_changed.connect
def _on_attendance_changed(sender, staff_member_id: int | None = None, session_id: int | None = None, **_kw):
    from lms.completion.services import recompute_for_session

    if staff_member_id is not None and session_id is not None:
        recompute_for_session(staff_member_id, session_id)  # the completion's summary keys follow it
        summary.update_for_attendance(db.session(), staff_member_id, session_id)


@viewing_changed.connect
def _on_viewing_changed(sender, staff_member_id: int | None = None, archive_id: int | None = None, **_kw):
    from lms.completion.services import recompute_for_archive

    if staff_member_id is not None and archive_id is not None:
        recompute_for_archive(staff_member_id, archive_id)  # the completions' summary keys follow them


@session_updated.connect
def _on_session_updated(session, changes=None, **_kw):
    """A session rescheduled into another fiscal year (or moved to another course): its
    enrollments and attendance count there now."""
    changes = changes or {}
    if "starts_at" not in changes and "course_id" not in changes:
        return
    old_course = changes["course_id"][0] if "course_id" in changes else session.course_id
    old_start = changes["starts_at"][0] if "starts_at" in changes else session.starts_at
    summary.update_for_session_move(db.session(), session.id, (old_course, old_start),
                                    (session.course_id, session.starts_at))


@staff_member_moved.connect
def _on_staff_member_moved(member, old_municipality_id: int | None = None, **_kw):
    summary.update_for_staff_move(db.session(), member.id, old_municipality_id, member.municipality_id)


@enrollment_prerequisites.connect
def _check_prerequisites(course, staff_member_id: int = 0, session_starts_at=None, **_kw):
    missing = prerequisites.missing(course.id, staff_member_id, session_starts_at)
    if missing:
        raise MissingPrerequisite(prerequisites.refusal_text(missing), [(cid, title) for cid, title, _y in missing])


@completion_granted_at.connect
def _granted_at(_sender, staff_member_id: int = 0, course_ids=(), **_kw) -> dict:
    """When the staff member's completions of these courses were first granted (by fiscal
    year), as the completion rule reads it: what became a requirement later does not count."""
    return services.first_granted(staff_member_id, list(course_ids))
