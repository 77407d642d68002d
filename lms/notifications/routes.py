"""Calendar download for a session. (The mail outbox pages are admin's: /admin/mail.)"""

from __future__ import annotations

from flask import Blueprint, Response, abort
from flask_login import current_user, login_required
from sqlalchemy import select

from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, TRAINER
from lms.courses.models import CANCELLED, TrainingSession
from lms.courses.services import can_manage_course
from lms.enrollment.models import ACTIVE_STATUSES, Enrollment
from lms.extensions import db
from lms.notifications.compose import session_ics
from lms.roster.models import StaffMember

bp = Blueprint("notifications", __name__)


@bp.get("/sessions/<int:session_id>/calendar.ics")
@login_required
def session_calendar(session_id: int):
    """The session as an .ics: for a learner with an active enrollment, or trainers/admins."""
    session = db.get_or_404(TrainingSession, session_id)
    enrollment = db.session.scalar(
        select(Enrollment)
        .join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
        .where(
            Enrollment.session_id == session.id,
            StaffMember.user_id == current_user.id,
            Enrollment.status.in_(ACTIVE_STATUSES),
        )
    )
    if enrollment is not None:
        member = enrollment.staff_member
    elif _may_see_session_calendar(current_user, session):
        member = None
    else:
        abort(404)  # nothing of the user's: answered as if the session did not exist
    kind = "cancelled" if session.status == CANCELLED else "confirmed"
    body = session_ics(session, member, kind, download=True)
    return Response(
        body,
        mimetype="text/calendar",
        headers={
            "Content-Disposition": f'attachment; filename="manabi-session-{session.id}.ics"',
            "Cache-Control": "private, no-store",
        },
    )


def _may_see_session_calendar(user, session) -> bool:
    """Without an enrollment: platform admins, the course's trainer, and the training office of
    a municipality the course is open to (the file may carry the Teams join link)."""
    if user.has_role(PLATFORM_ADMIN):
        return True
    if user.has_role(TRAINER) and can_manage_course(user, session.course):
        return True
    return user.has_role(MUNICIPAL_ADMIN) and session.course.is_open_to(user.municipality_id)
