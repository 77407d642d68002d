"""Completions follow attendance and viewing, and the dashboard summaries follow enrollments:
recomputed in the sender's transaction."""

from __future__ import annotations

from lms.common.signals import attendance_changed, enrollment_status_changed, viewing_changed
from lms.completion import summary
from lms.extensions import db


@enrollment_status_changed.connect
def _on_enrollment_status_changed(enrollment, old_status: str | None = None, new_status: str = "", **_kw):
    summary.record_enrollment_change(db.session(), enrollment.municipality_id, enrollment.session_id,
                                     enrollment.staff_member_id, old_status, new_status or enrollment.status)


@attendance_changed.connect
def _on_attendance_changed(sender, staff_member_id: int | None = None, session_id: int | None = None, **_kw):
    from lms.completion.services import recompute_for_session

    if staff_member_id is not None and session_id is not None:
        recompute_for_session(staff_member_id, session_id)


@viewing_changed.connect
def _on_viewing_changed(sender, staff_member_id: int | None = None, archive_id: int | None = None, **_kw):
    from lms.completion.services import recompute_for_archive

    if staff_member_id is not None and archive_id is not None:
        recompute_for_archive(staff_member_id, archive_id)
