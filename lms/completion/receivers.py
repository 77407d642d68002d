"""Completions follow attendance and viewing: recomputed in the sender's transaction."""

from __future__ import annotations

from lms.common.signals import attendance_changed, viewing_changed
from lms.completion import summary  # noqa: F401  (keeps the dashboard summaries in step: ORM session events)


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
