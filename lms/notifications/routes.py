"""Calendar download for a session; the person's choice of how notices reach them. (The mail
outbox pages are admin's: /admin/mail.)"""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, TRAINER
from lms.courses.models import CANCELLED, TrainingSession
from lms.courses.services import can_manage_course
from lms.enrollment.models import ACTIVE_STATUSES, CONFIRMED, Enrollment
from lms.extensions import db
from lms.notifications.compose import calendar_sequence, session_ics
from lms.notifications.forms import NoticeChoiceForm
from lms.notifications.services import notice_choice, save_notice_choice
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
    # A place not yet decided gets a tentative event without the Teams link (as /me shows it).
    # The same SEQUENCE as the learner's latest mailed invitation (after a re-enrollment it is
    # above the session's revision): a lower one would read as an outdated copy of the entry.
    body = session_ics(session, member, kind, download=True,
                       tentative=enrollment is not None and enrollment.status != CONFIRMED,
                       sequence=calendar_sequence(enrollment) if enrollment is not None else None)
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


@bp.route("/settings/notices", methods=["GET", "POST"])
@login_required
def notice_settings():
    """How the signed-in person receives notices: Teams activity, mail, or both."""
    form = NoticeChoiceForm(data={"notice_channel": notice_choice(current_user)})
    if form.validate_on_submit():
        if save_notice_choice(current_user, form.notice_channel.data):
            db.session.commit()
            flash(_("お知らせの受け取り方を保存しました。"), "success")
        else:  # (the same choice again: said, so that a second press is not met with silence)
            flash(_("お知らせの受け取り方は、すでにこの設定になっています。"), "info")
        return redirect(url_for("notifications.notice_settings"))
    return render_template("notifications/settings.html", form=form)
