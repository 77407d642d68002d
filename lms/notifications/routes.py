"""Calendar download for a session, and the mail viewer (outbox) for admins."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, TRAINER
from lms.common.access import municipality_scope, require_municipality, role_required
from lms.common.errors import DomainError
from lms.extensions import db
from lms.notifications.models import FAILED, QUEUED, SENDING, SENT, SKIPPED, OutboxMail

bp = Blueprint("notifications", __name__)

STATUS_LABELS = {
    QUEUED: _l("送信待ち"),
    SENDING: _l("送信中"),
    SENT: _l("送信済み"),
    FAILED: _l("送信失敗"),
    SKIPPED: _l("送信不要"),
}


@bp.get("/sessions/<int:session_id>/calendar.ics")
@login_required
def session_calendar(session_id: int):
    """The session as an .ics: for a learner with an active enrollment, or trainers/admins."""
    from lms.courses.models import CANCELLED, TrainingSession
    from lms.enrollment.models import ACTIVE_STATUSES, Enrollment
    from lms.notifications.compose import session_ics
    from lms.roster.models import StaffMember

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
        abort(403)
    kind = "cancelled" if session.status == CANCELLED else "confirmed"
    body = session_ics(session, member, kind)
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
    from lms.courses.services import can_manage_course

    if user.has_role(PLATFORM_ADMIN):
        return True
    if user.has_role(TRAINER) and can_manage_course(user, session.course):
        return True
    return user.has_role(MUNICIPAL_ADMIN) and session.course.is_open_to(user.municipality_id)


@bp.get("/admin/mail")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def outbox():
    from lms.notifications.services import delivery_backlog, outbox_query

    scope = municipality_scope(current_user)
    status = request.args.get("status", "")
    q = request.args.get("q", "").strip()[:100]
    page = db.paginate(outbox_query(scope, status=status, q=q), per_page=50, error_out=False)
    return render_template(
        "notifications/outbox.html", page=page, status=status, q=q, status_labels=STATUS_LABELS,
        backlog=delivery_backlog(scope),
    )


def _visible_mail(mail_id: int) -> OutboxMail:
    mail = db.get_or_404(OutboxMail, mail_id)
    if not current_user.has_role(PLATFORM_ADMIN):
        require_municipality(current_user, mail.municipality_id)
    return mail


@bp.get("/admin/mail/<int:mail_id>")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def outbox_detail(mail_id: int):
    mail = _visible_mail(mail_id)
    return render_template("notifications/outbox_detail.html", mail=mail, status_labels=STATUS_LABELS)


@bp.post("/admin/mail/<int:mail_id>/retry")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def outbox_retry(mail_id: int):
    from lms.notifications.services import retry_mail

    mail = _visible_mail(mail_id)
    try:
        retry_mail(mail.id, current_user)
        db.session.commit()
        flash(_("メールを再送の待ち行列に戻しました。"), "success")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("notifications.outbox_detail", mail_id=mail_id))


