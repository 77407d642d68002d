"""Enroll, cancel, and マイページ (the learner's own sessions)."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import HiddenField

from lms.common.errors import DomainError, NotFound
from lms.common.limits import limit_enroll
from lms.common.timeutil import as_utc, utcnow
from lms.common.web import safe_next
from lms.courses.models import TrainingSession
from lms.enrollment import services
from lms.enrollment.models import ACTIVE_STATUSES, CANCELLED, CONFIRMED, PENDING, REJECTED, WAITLISTED, Enrollment
from lms.enrollment.queries import waitlist_position
from lms.extensions import db
from lms.roster.services import staff_member_for

bp = Blueprint("enrollment", __name__)

STATUS_LABELS = {
    CONFIRMED: _l("受講確定"),
    WAITLISTED: _l("キャンセル待ち"),
    PENDING: _l("承認待ち"),
    REJECTED: _l("承認されませんでした"),
    CANCELLED: _l("取消"),
}
# The course page's endpoint (the catalogue area's), linked when registered.
_COURSE_PAGES = ("courses.course_detail", "courses.course", "courses.detail")


class ActionForm(FlaskForm):
    """Enroll and cancel are a button: CSRF plus where to go back to."""

    next = HiddenField()


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _back(default: str) -> str:
    """Where the button was pressed: the form's ``next``, else the same-site referring page."""
    if request.form.get("next"):
        return safe_next(request.form.get("next"), default)
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path:
        return safe_next(referrer.path + (f"?{referrer.query}" if referrer.query else ""), default)
    return default


def _refused(exc: DomainError, back: str):
    status = 404 if isinstance(exc, NotFound) else 403 if isinstance(exc, services.NotAllowed) else \
        503 if isinstance(exc, services.EnrollmentBusy) else 409
    if _wants_json():
        return jsonify(ok=False, error=type(exc).__name__, message=exc.message), status
    flash(exc.message, "error")
    return redirect(back)


def _done(enrollment: Enrollment, message: str, back: str, status: int = 200):
    if _wants_json():
        return jsonify(ok=True, enrollment_id=enrollment.id, status=enrollment.status, message=message), status
    flash(message, "success" if enrollment.status == CONFIRMED else "info")
    return redirect(back)


@bp.post("/sessions/<int:session_id>/enroll")
@limit_enroll
def enroll(session_id: int):
    # The CSRF token was checked before this view (CSRFProtect, with its Japanese page);
    # the form has no other field to validate.
    back = _back(url_for("enrollment.my_page"))
    try:
        enrollment = services.enroll_self(session_id, current_user)
    except DomainError as exc:
        return _refused(exc, back)
    return _done(enrollment, enrollment.outcome_message, back, 201)


@bp.post("/enrollments/<int:enrollment_id>/cancel")
@limit_enroll
def cancel(enrollment_id: int):
    # The CSRF token was checked before this view (CSRFProtect, with its Japanese page);
    # the form has no other field to validate.
    back = _back(url_for("enrollment.my_page"))
    reason = (request.form.get("reason") or "").strip()[:500]
    try:
        enrollment = services.cancel_enrollment(enrollment_id, current_user, reason)
    except DomainError as exc:
        return _refused(exc, back)
    message = _("受講申込を取り消しました。")
    if enrollment.late_cancellation:
        message = _("受講申込を取り消しました（キャンセル期限後の取消として記録しました）。")
    return _done(enrollment, message, back)


@bp.get("/me")
def my_page():
    member = staff_member_for(current_user, create=False)
    now = utcnow()
    upcoming, history = [], []
    if member is not None:
        rows = db.session.execute(
            select(Enrollment, TrainingSession)
            .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
            .where(Enrollment.staff_member_id == member.id)
            .order_by(TrainingSession.starts_at, Enrollment.id)
        ).all()
        for enrollment, session in rows:
            if enrollment.status in ACTIVE_STATUSES and session.ends_at and _aware(session.ends_at) > now:
                allowed, why = services.can_cancel(enrollment, current_user, now)
                position = waitlist_position(enrollment) if enrollment.status == WAITLISTED else None
                upcoming.append({"e": enrollment, "s": session, "position": position,
                                 "can_cancel": allowed, "why_not": why})
            else:
                history.append({"e": enrollment, "s": session})
        history.reverse()
    course_endpoint = next((name for name in _COURSE_PAGES if name in current_app.view_functions), None)
    return render_template(
        "enrollment/my_page.html",
        member=member,
        upcoming=upcoming,
        history=history,
        form=ActionForm(),
        has_calendar="notifications.session_calendar" in current_app.view_functions,
        course_endpoint=course_endpoint,
        has_course_page=course_endpoint is not None,
        view_functions=current_app.view_functions,
        status_labels=STATUS_LABELS,
    )


def _aware(value):
    return as_utc(value)
