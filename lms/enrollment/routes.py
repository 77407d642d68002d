"""Enroll, cancel, and マイページ (the learner's own sessions)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import func, select
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import Length

from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, TRAINER
from lms.common import once
from lms.common.access import refuse_as_missing, require_own_object, role_required
from lms.common.errors import DomainError, NotFound
from lms.common.forms import Form, JapaneseDateField, Required, put_error, within
from lms.common.i18n import join_list
from lms.common.ids import parse_id
from lms.common.limits import limit_enroll, limit_enroll_posts
from lms.common.pagination import beyond_last_page, requested_page
from lms.common.templating import dash, format_date_jst, format_datetime_jst, format_period_jst
from lms.common.timeutil import as_utc, utcnow
from lms.common.web import safe_next, same_site_referrer
from lms.courses.models import TrainingSession
from lms.courses.services import can_manage_course, can_see_course
from lms.enrollment import approvals, municipal, series, services
from lms.enrollment.course_page import learner_course_statuses, learner_sessions
from lms.enrollment.labels import status_badge, status_label
from lms.enrollment.models import (
    ACTIVE_STATUSES,
    CONFIRMED,
    PENDING,
    RETURNED_STEP,
    SELECTION_STEP,
    SUPERVISOR_STEP,
    WAITLISTED,
    Enrollment,
)
from lms.enrollment.queries import places_held, waitlist_position
from lms.enrollment.rules import MissingPrerequisite
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.roster import forms as roster_forms
from lms.roster.models import StaffMember
from lms.roster.pages import back_to, municipality_or_chooser, staff_member_or_404
from lms.roster.services import MAX_CSV_BYTES, staff_member_for

bp = Blueprint("enrollment", __name__)
# The course page (courses area) shows the learner's place through this (see course_page.py).
bp.add_app_template_global(learner_sessions, "learner_sessions")
# The catalogue's cards show the learner's place in each course through this (one query).
bp.add_app_template_global(learner_course_statuses, "learner_course_statuses")
# A cancellation's confirm page (courses area) says how many people it touches.
bp.add_app_template_global(places_held, "enrollment_places_held")
# The one set of status words (lms/enrollment/labels.py) for every template.
bp.add_app_template_global(status_label, "enrollment_status_label")
bp.add_app_template_global(status_badge, "enrollment_status_badge")
# The course page's endpoint (the catalogue area's), linked when registered.
_COURSE_PAGES = ("courses.course_detail", "courses.course", "courses.detail")


class ActionForm(Form):
    """Enroll and cancel are a button: CSRF plus where to go back to."""

    next = HiddenField()


REASON_MAX = 500


class CancelForm(ActionForm):
    """The cancel page: why, if the learner (or the office cancelling for them) wants to say."""

    reason = StringField(_l("取消の理由（任意）"), validators=[within(REASON_MAX)],
                         render_kw={"maxlength": REASON_MAX, "autocomplete": "off"})


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "application/json" and request.accept_mimetypes[best] > request.accept_mimetypes["text/html"]


def _back(default: str) -> str:
    """Where the button was pressed: the form's ``next``, else the same-site referring page."""
    if request.form.get("next"):
        return safe_next(request.form.get("next"), default)
    return same_site_referrer() or default


def _refused(exc: DomainError, back: str):
    status = 404 if isinstance(exc, NotFound) else 403 if isinstance(exc, services.NotAllowed) else \
        503 if isinstance(exc, services.EnrollmentBusy) else 409
    missing = exc.courses if isinstance(exc, MissingPrerequisite) else []
    if _wants_json():
        return jsonify(ok=False, error=type(exc).__name__, message=exc.message,
                       **({"missing_courses": [{"id": i, "title": t} for i, t in missing]} if missing else {})), status
    if isinstance(exc, NotFound):  # an id that names nothing (or nothing of the user's): as its GET answers
        abort(404)
    if missing:
        # The message, then each missing course linked to its page (titles escaped).
        links = Markup("、").join(
            Markup('<a href="{}">{}</a>').format(url_for("courses.course_detail", course_id=i), t) for i, t in missing)
        flash(Markup("{} {}{}{}").format(exc.message, _("（研修のページ: "), links, _("）")), "error")
    else:
        flash(exc.message, "error")
    return redirect(back)


def _done(enrollment_id: int, enrollment_status: str, message: str, back: str, status: int = 200):
    if _wants_json():
        return jsonify(ok=True, enrollment_id=enrollment_id, status=enrollment_status, message=message), status
    flash(message, "success" if enrollment_status == CONFIRMED else "info")
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
    outcome = enrollment.outcome  # as decided, without reading the committed row back
    return _done(outcome.enrollment_id, outcome.status, outcome.message, back, 201)


def _session_facts(session: TrainingSession) -> list[tuple[str, str]]:
    """研修, 研修回 (when it has a title) and 日時: what a page about one request shows first."""
    facts = [(_("研修"), session.course.title)]
    if session.title:
        facts.append((_("研修回"), session.title))
    facts.append((_("日時"), format_period_jst(session.starts_at, session.ends_at)))
    return facts


def _cancel_page(enrollment_id: int, form: CancelForm | None = None, back: str | None = None):
    """The cancel button's page: what cancelling this enrollment does, then a POST to the same URL
    (shown again, with what was typed, when the reason is refused)."""
    enrollment = db.session.get(Enrollment, enrollment_id)
    if enrollment is None or not services.concerns(current_user, enrollment):
        refuse_as_missing(current_user, "enrollment", enrollment_id)
    back = back or safe_next(request.args.get("next"), url_for("enrollment.my_page"))
    allowed, why = services.can_cancel(enrollment, current_user)
    if not allowed:
        flash(why, "error")
        return redirect(back)
    session = enrollment.session
    now = utcnow()
    facts = _session_facts(session)
    if enrollment.staff_member.user_id != current_user.id:
        facts.append((_("申込者"), enrollment.staff_member.full_name))
    facts.append((_("現在の状態"), status_label(enrollment.status)))
    notes = []
    if enrollment.status == CONFIRMED:
        notes.append(_("空いた席は、キャンセル待ちの方がいれば、その方に自動で回ります。"))
        if session.free_seats <= 0:
            notes.append(_("この回は定員に達しています。後から申し込み直すと、キャンセル待ちの最後になります。"))
        elif session.waitlisted_count > 0:
            notes.append(_("この回にはキャンセル待ちの方がいます。後から申し込み直すと、キャンセル待ちの最後になります。"))
        else:
            notes.append(_("空席があれば、受付期間中は申し込み直せます。"))
        if series.is_first(session):
            notes.extend(_series_notes(session, enrollment.staff_member_id))
    elif enrollment.status == WAITLISTED:
        notes.append(_("キャンセル待ちの順番はなくなります。後から申し込み直すと、キャンセル待ちの最後になります。"))
    else:
        notes.append(_("承認待ちの申込を取り下げます。申し込み直すと、改めて承認が必要になります。"))
    if now > as_utc(services.cancel_deadline(session)):
        notes.append(_("キャンセル期限を過ぎているため、期限後の取消として記録されます。"))
    shown = form or CancelForm(formdata=None)
    return render_template(
        "confirm.html", heading=_("申込を取り消す"),
        lead=_("この回の受講申込を取り消します。"),
        facts=facts, notes=notes, form=shown,
        fields=[(shown.reason, _("研修担当が確認できます。%(n)d 文字以内。", n=REASON_MAX))],
        action_url=url_for("enrollment.cancel", enrollment_id=enrollment.id), next_url=back,
        button=_("申込を取り消す"), back_url=back), 400 if form is not None and form.errors else 200


def _series_notes(first: TrainingSession, staff_member_id: int) -> list[str]:
    """What else a 連続講座's cancellation takes: its other days and the 補講 places held."""
    notes = []
    others = len(series.parts(first.id)) - 1
    if others > 0:
        notes.append(_("連続講座のため、ほかの日程（%(n)d 回）の受講もすべて取り消されます。", n=others))
    makeups = series.makeup_places(first.id, staff_member_id)
    if makeups:
        names = join_list(_("%(title)s（%(when)s）", title=e.session.title or e.session.course.title,
                              when=format_datetime_jst(e.session.starts_at)) for e in makeups)
        notes.append(_("申し込んでいる補講（%(names)s）も取り消されます。", names=names))
    return notes


@bp.route("/enrollments/<int:enrollment_id>/cancel", methods=["GET", "POST"])
@limit_enroll_posts
def cancel(enrollment_id: int):
    if request.method == "GET":
        return _cancel_page(enrollment_id)
    # The CSRF token was checked before this view (CSRFProtect, with its Japanese page);
    # the form has no other field to validate.
    back = _back(url_for("enrollment.my_page"))
    form = CancelForm(meta={"csrf": False})  # (its token was checked before the view)
    if not form.validate():
        if _wants_json():
            return jsonify(ok=False, error="InvalidInput", message=form.reason.errors[0]), 400
        return _cancel_page(enrollment_id, form, back)
    reason = (form.reason.data or "").strip()
    try:
        enrollment = services.cancel_enrollment(enrollment_id, current_user, reason)
    except DomainError as exc:
        return _refused(exc, back)
    message = _("受講申込を取り消しました。")
    if enrollment.late_cancellation:
        message = _("受講申込を取り消しました（キャンセル期限後の取消として記録しました）。")
    member = enrollment.staff_member
    if member is not None and member.user_id != current_user.id:  # a nominee cancelled by an administrator
        message = _("%(name)s さんの受講申込を取り消しました。", name=member.full_name)
        if enrollment.late_cancellation:
            message = _("%(name)s さんの受講申込を取り消しました（キャンセル期限後の取消として記録しました）。",
                        name=member.full_name)
    return _done(enrollment.id, enrollment.status, message, back)


@bp.get("/me")
def my_page():
    member = staff_member_for(current_user, create=False)
    now = utcnow()
    upcoming, history = [], []
    pending_ids: list[int] = []
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
                if enrollment.status == PENDING:
                    pending_ids.append(enrollment.id)
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
        approval_history=approvals.history(pending_ids),
        waiting_message=approvals.waiting_message,
        step_label=approvals.step_label,
        supervises=approvals.supervised_by(current_user) is not None,
    )


@bp.post("/me/enrollments/<int:enrollment_id>/resubmit")
def resubmit(enrollment_id: int):
    """A returned request (差し戻し) sent again by its learner, with a note for the approvers."""
    note = (request.form.get("note") or "")[:1000]
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        again = services.resubmit_enrollment(enrollment_id, current_user, note)
        flash(_("申し込み直しました。%(step)sをお待ちください。", step=approvals.awaited(again.approval_step)), "success")
    except NotFound:
        db.session.rollback()
        abort(404)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("enrollment.my_page", _anchor=f"enrollment-{enrollment_id}"))


def _aware(value):
    return as_utc(value)


@bp.app_template_global("staff_enrollments")
def staff_enrollments(member: StaffMember, limit: int = 50) -> list[Enrollment]:
    """A staff member's latest enrollments (the roster's staff page shows them)."""
    return list(db.session.scalars(
        select(Enrollment).where(Enrollment.staff_member_id == member.id)
        .order_by(Enrollment.requested_at.desc()).limit(limit)
    ))


# ---------------------------------------------------------------- 研修担当 (municipal admins): approvals, nominations, swaps
#
# Municipal admins work on their own municipality only; platform admins choose one
# (``?m=<municipality id>``). Another municipality's pages are a 403, its enrollments and staff
# members a 404 as if there were none; both leave an ``access.denied`` audit entry (lms.common.access).


@bp.get("/municipal")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def admin_home():
    municipality, chooser = municipality_or_chooser("enrollment.admin_home")
    if municipality is None:
        return chooser
    page = db.paginate(municipal.open_sessions_query(municipality.id), page=requested_page(), per_page=20, error_out=False)
    if (last := beyond_last_page(page)) is not None:
        return last
    pending = municipal.pending_approvals(municipality.id)
    history = approvals.history([e.id for e in pending])
    # Requests one of whose earlier steps this officer approved: another answers (no buttons, the reason instead).
    answered_earlier = {e.id: approvals.approved_earlier_message(earlier, e.approval_step) for e in pending
                        if (earlier := approvals.approved_earlier(history.get(e.id, []), current_user)) is not None}
    return render_template(
        "enrollment/municipal_home.html", municipality=municipality, pending=pending,
        approval_history=history, step_label=approvals.step_label, answered_earlier=answered_earlier,
        # Requests waiting for a 所属長 where the 所属 has none now: the office answers them.
        headless=_headless(municipality.id, pending),
        quotas=municipal.quota_use(municipality.id), page=page, reject_form=roster_forms.RejectForm(formdata=None),
    )


def _headless(municipality_id: int, pending: list[Enrollment]) -> set[int]:
    """Requests waiting for a 所属長 whose 所属 has none now (the office answers them)."""
    waiting = [e for e in pending if e.approval_step == SUPERVISOR_STEP]
    if not waiting:
        return set()
    headed = approvals.departments_with_heads(municipality_id)
    return {e.id for e in waiting if e.staff_member.department not in headed}


def _enrollment_or_404(enrollment_id: int) -> Enrollment:
    """An enrollment of the admin's municipality; another's is answered as if there were none."""
    enrollment = db.get_or_404(Enrollment, enrollment_id)
    require_own_object(current_user, enrollment.municipality_id, "enrollment", enrollment.id)
    return enrollment


@bp.app_template_global("approval_decisions")
def approval_decisions() -> dict[str, str]:
    """What each step answered, in words (the history of a request)."""
    return approvals.decision_labels()


@bp.app_template_global("approval_words")
def approval_words() -> dict[str, str]:
    """The approval forms' words (templates/enrollment/_approval_forms.html), once per page."""
    return {"approve": _("承認する"), "reason": _("承認しない・差し戻す理由"), "required": _("必須"),
            "reject": _("承認しない"), "return": _("差し戻す")}


def _approve_and_say(enrollment: Enrollment, back):
    """Approve at the step the person answers; say what happened (the next step, or the seat)."""
    name = enrollment.staff_member.full_name
    enrollment_id = enrollment.id
    db.session.rollback()
    try:
        approved = services.approve_enrollment(enrollment_id, current_user)
        if approved.status == PENDING:
            flash(_("%(name)s さんの申込を承認しました。%(next)s", name=name,
                    next=approvals.next_step_message(approved.approval_step)), "success")
        else:
            flash(_("%(name)s さんの申込を承認しました。", name=name), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return back()


def _answer_with_reason(enrollment: Enrollment, back, answer, words: dict[str, str]):
    """Decline or return (差し戻し) with the reason the form carries (required; the learner is
    told it): ``answer`` is the service; ``words`` the page's heading, reason label, missing
    message and done message (with %(name)s for the learner). A reason missing or refused
    brings a page of its own for this request, the error beside the field and what was typed
    kept (the list's inline form is far from the message a flash would give)."""
    form = roster_forms.RejectForm()
    if not form.validate_on_submit() or not (form.reason.data or "").strip():
        # A reason was given but is refused (too long): say so; otherwise (spaces only too) it is missing.
        given = (form.reason.data or "").strip()
        form.reason.errors = [form.reason.errors[0] if given and form.reason.errors else words["missing"]]
        form.reason.label.text = words["label"]
        session = enrollment.session
        facts = [(_("申込者"), enrollment.staff_member.full_name), *_session_facts(session)]
        return render_template(
            "confirm.html", heading=words["heading"], lead=words["lead"], facts=facts, form=form,
            fields=[(form.reason, _("申込者に通知します。1000 文字以内。"))], action_url=request.path,
            button=words["heading"], back_url=back().headers["Location"]), 422
    name = enrollment.staff_member.full_name
    enrollment_id = enrollment.id
    db.session.rollback()
    try:
        answer(enrollment_id, current_user, form.reason.data)
        flash(words["done"] % {"name": name}, "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return back()


def _return_and_say(enrollment: Enrollment, back):
    return _answer_with_reason(enrollment, back, services.return_enrollment, {
        "heading": _("差し戻す"), "label": _("差し戻す理由"), "missing": _("差し戻す理由を入力してください。"),
        "lead": _("この申込を申込者に差し戻します。申込者は理由を読んで申し込み直せます。"),
        "done": _("%(name)s さんの申込を差し戻しました。本人に理由を通知します。")})


def _reject_and_say(enrollment: Enrollment, back):
    return _answer_with_reason(enrollment, back, services.reject_enrollment, {
        "heading": _("承認しない"), "label": _("承認しない理由"), "missing": _("承認しない理由を入力してください。"),
        "lead": _("この申込を承認しません。申込者に理由を通知します。"),
        "done": _("%(name)s さんの申込を承認しませんでした。本人に理由を通知します。")})


@bp.post("/municipal/enrollments/<int:enrollment_id>/approve")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def approve(enrollment_id: int):
    enrollment = _enrollment_or_404(enrollment_id)
    municipality_id = enrollment.municipality_id
    return _approve_and_say(enrollment, lambda: back_to("enrollment.admin_home", municipality_id))


@bp.post("/municipal/enrollments/<int:enrollment_id>/return")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def return_request(enrollment_id: int):
    enrollment = _enrollment_or_404(enrollment_id)
    municipality_id = enrollment.municipality_id
    return _return_and_say(enrollment, lambda: back_to("enrollment.admin_home", municipality_id))


@bp.post("/municipal/enrollments/<int:enrollment_id>/reject")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def reject(enrollment_id: int):
    enrollment = _enrollment_or_404(enrollment_id)
    municipality_id = enrollment.municipality_id
    return _reject_and_say(enrollment, lambda: back_to("enrollment.admin_home", municipality_id))


# ---------------------------------------------------------------- 所属長 (department heads): their 所属's requests


def _supervised_or_404(enrollment_id: int) -> Enrollment:
    """A request of a 所属 the person approves for, waiting for its 所属長; anything else
    (someone who approves for no 所属 included) is answered as missing."""
    enrollment = db.session.get(Enrollment, enrollment_id)
    if (enrollment is None or enrollment.status != PENDING or enrollment.approval_step != SUPERVISOR_STEP
            or not approvals.is_supervisor_of(current_user, enrollment.staff_member)):
        if enrollment is not None:
            refuse_as_missing(current_user, "enrollment", enrollment.id)
        abort(404)
    return enrollment


class DelegationForm(Form):
    employee_number = StringField(_l("代理の職員番号"), validators=[Required(_l("代理の職員番号を入力してください。")),
                                                            Length(max=20)])
    starts_on = JapaneseDateField(_l("開始日"), validators=[Required(_l("開始日を入力してください。"))])
    ends_on = JapaneseDateField(_l("終了日"), validators=[Required(_l("終了日を入力してください。"))])


def _supervisor_page(form: DelegationForm | None = None, status: int = 200):
    me, departments = approvals.acting_for(current_user)
    waiting = approvals.waiting_for_supervisor(me, departments) if me is not None else []
    heads_own = bool(me is not None and me.status == "active" and (me.department_head or me.deputy_head))
    return render_template(
        "enrollment/supervisor_approvals.html", me=me, departments=[d for _m, d in departments], waiting=waiting,
        history=approvals.history([e.id for e in waiting]), reject_form=roster_forms.RejectForm(formdata=None),
        heads_own=heads_own, delegations=approvals.delegations_of(me) if me is not None and heads_own else [],
        delegation_form=form or DelegationForm(formdata=None),
    ), status


@bp.get("/approvals")
def supervisor_approvals():
    """所属長の承認: the requests of the 所属 the signed-in person heads, deputises or stands in for,
    and (for a head) who stands in while they are away."""
    return _supervisor_page()


@bp.post("/approvals/delegations")
def delegate_approvals():
    form = DelegationForm()
    if not form.validate_on_submit():
        return _supervisor_page(form, 422)
    if (again := once.repeated()) is not None:
        return again
    try:
        delegation, outcome = approvals.delegate_approvals(current_user, form.employee_number.data,
                                                           form.starts_on.data, form.ends_on.data)
        once.remember(url_for("enrollment.supervisor_approvals"))
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        put_error(form, exc)
        return _supervisor_page(form, 422)
    if outcome == approvals.COVERED:
        flash(_("%(name)s さんは、すでにその期間の代理に指名されています（%(period)s）。",
                name=delegation.delegate.full_name, period=_delegation_period(delegation)), "info")
    elif outcome == approvals.EXTENDED:
        flash(_("%(name)s さんはすでに代理に指名されていたため、その期間を %(starts)s から %(ends)s までに延ばしました。",
                name=delegation.delegate.full_name, starts=format_date_jst(delegation.starts_on),
                ends=format_date_jst(delegation.ends_on)), "success")
    else:
        flash(_("代理を指名しました。期間中は代理の人も承認できます。"), "success")
    return redirect(url_for("enrollment.supervisor_approvals"))


def _delegation_period(delegation) -> str:
    """A stand-in's days as the list shows them: 2026年12月7日〜2026年12月26日."""
    return f"{format_date_jst(delegation.starts_on)}{dash()}{format_date_jst(delegation.ends_on)}"


@bp.route("/approvals/delegations/<int:delegation_id>/end", methods=["GET", "POST"])
def end_delegation(delegation_id: int):
    """Withdrawing a stand-in asks on a page first (who, for which days)."""
    try:
        delegation = approvals.delegation_of(current_user, delegation_id)
    except NotFound:
        abort(404)
    if request.method == "POST":
        db.session.rollback()
        try:
            approvals.end_delegation(current_user, delegation_id)
        except NotFound:  # withdrawn a moment ago (the button pressed twice, another tab)
            db.session.rollback()
            flash(_("この代理の指名は、すでに取り消されています。"), "info")
            return redirect(url_for("enrollment.supervisor_approvals"))
        db.session.commit()
        flash(_("代理の指名を取り消しました。"), "success")
        return redirect(url_for("enrollment.supervisor_approvals"))
    return render_template(
        "confirm.html", heading=_("代理の指名を取り消す"),
        lead=_("この人は、あなたに代わって所属の受講申込を承認できなくなります。"),
        facts=[(_("代理"), delegation.delegate.full_name), (_("期間"), _delegation_period(delegation))],
        action_url=url_for("enrollment.end_delegation", delegation_id=delegation.id), button=_("代理の指名を取り消す"),
        back_url=url_for("enrollment.supervisor_approvals"),
    )


def _back_to_approvals():
    return redirect(url_for("enrollment.supervisor_approvals"))


@bp.post("/approvals/<int:enrollment_id>/approve")
def supervisor_approve(enrollment_id: int):
    return _approve_and_say(_supervised_or_404(enrollment_id), _back_to_approvals)


@bp.post("/approvals/<int:enrollment_id>/return")
def supervisor_return(enrollment_id: int):
    return _return_and_say(_supervised_or_404(enrollment_id), _back_to_approvals)


@bp.post("/approvals/<int:enrollment_id>/reject")
def supervisor_reject(enrollment_id: int):
    return _reject_and_say(_supervised_or_404(enrollment_id), _back_to_approvals)


@bp.get("/municipal/sessions/<int:session_id>")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def session_page(session_id: int):
    municipality, chooser = municipality_or_chooser("enrollment.admin_home")
    if municipality is None:
        return chooser
    session = db.get_or_404(TrainingSession, session_id)
    if not (can_see_course(current_user, session.course) and municipal.session_open_to(session, municipality.id)):
        abort(404)  # (as the course's page is: a draft or a cancelled course is not shown)
    swap_id = parse_id(request.args.get("swap"))
    return _session_page(municipality, session, swap_id, request.args.get("swap_q", ""))


def _session_page(municipality, session: TrainingSession, swap_id: int | None = None, swap_q: str = "",
                  swap_error: str | None = None, reason: str = "", status: int = 200):
    """The municipality's page of a session: its nominees (each with a swap that searches the
    roster by name, kana or 職員番号: ``swap`` names the row, ``swap_q`` the search, an error
    and the typed reason shown beside that row) and the search for staff to nominate."""
    q = request.args.get("q", "").strip()[:100]
    swap_q = swap_q.strip()[:100]
    quota = next((row for row in session.quotas if row.municipality_id == municipality.id), None)
    return render_template(
        "enrollment/municipal_session.html", municipality=municipality, session=session, quota=quota, q=q,
        enrollments=municipal.municipality_enrollments(session.id, municipality.id),
        matches=municipal.search_staff(municipality.id, q), swap_form=roster_forms.SwapForm(formdata=None),
        swap_id=swap_id, swap_q=swap_q, swap_error=swap_error, swap_reason=reason,
        swap_matches=municipal.search_staff(municipality.id, swap_q) if swap_id and swap_q else [],
    ), status


@bp.post("/municipal/sessions/<int:session_id>/nominate")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def nominate(session_id: int):
    form = roster_forms.NominateForm()
    if not form.validate_on_submit():  # (no person chosen, or an id the page never offers)
        flash(_("推薦する職員を検索して選んでください。"), "error")
        return redirect(_back(url_for("enrollment.session_page", session_id=session_id)))
    member_id = form.staff_member_id.data
    assert member_id is not None  # Required, and the form is validated
    member = staff_member_or_404(member_id)
    municipality_id, member_name = member.municipality_id, member.full_name
    db.session.rollback()
    try:
        result = services.nominate(session_id, member.id, current_user)
        # A seat (or an approval under way) is a success; a place on the waitlist is news to act on.
        flash(_nominated_message(result, member_name),
              "success" if result.created and result.enrollment.status in (CONFIRMED, PENDING) else "info")
    except DomainError as exc:
        flash(exc.message, "error")
    return back_to("enrollment.session_page", municipality_id, session_id=session_id)


def _nominated_message(result: services.NominationResult, name: str) -> str:
    """The outcome of a nomination, naming the person nominated."""
    enrollment = result.enrollment
    if not result.created:
        return _("%(name)s さん：%(message)s", name=name, message=result.message)
    if enrollment.status == CONFIRMED:
        return _("%(name)s さんの受講が確定しました。", name=name)
    if enrollment.status == PENDING:
        # (a course with 選考: the organiser gives the seat, rules.needs_approval)
        return _("%(name)s さんを推薦しました。%(step)sを待っています。", name=name,
                 step=approvals.awaited(enrollment.approval_step))
    # (waitlisted: the service's message says why — the capacity, or the 割当人数)
    return _("%(name)s さん：%(message)s", name=name, message=result.message)


@bp.post("/municipal/enrollments/<int:enrollment_id>/swap")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def swap(enrollment_id: int):
    """Swap a nominee (差し替え). A refusal is shown beside the row, with the search and the
    reason as typed; success goes back to the session's page with a message naming both."""
    enrollment = _enrollment_or_404(enrollment_id)
    municipality_id, session_id = enrollment.municipality_id, enrollment.session_id
    form = roster_forms.SwapForm()

    def refused(message: str):
        db.session.rollback()
        session = db.get_or_404(TrainingSession, session_id)
        municipality = db.get_or_404(Municipality, municipality_id)
        return _session_page(municipality, session, enrollment_id, form.swap_q.data or "", message,
                             form.reason.data or "", 422)

    if not form.validate_on_submit():
        return refused(" ".join(str(e) for errors in form.errors.values() for e in errors)
                       or _("入力内容を確認してください。"))
    replacement = None
    if form.staff_member_id.data:
        replacement = db.session.get(StaffMember, form.staff_member_id.data)
        if replacement is None or replacement.municipality_id != municipality_id:
            return refused(_("差し替え先の職員が名簿にありません。もう一度検索してください。"))
    elif form.employee_number.data:
        replacement = municipal.staff_by_number(municipality_id, form.employee_number.data)
        if replacement is None:
            return refused(_("職員番号 %(number)s の職員が名簿にありません。", number=form.employee_number.data))
    else:
        return refused(_("差し替え先の職員を検索して選んでください。"))
    replacement_id = replacement.id
    previous_name = enrollment.staff_member.full_name
    db.session.rollback()
    try:
        new = services.swap_nominee(enrollment_id, replacement_id, current_user, form.reason.data or "")
    except DomainError as exc:
        return refused(exc.message)
    flash(_("%(old)s さんを %(new)s さんに差し替えました。", old=previous_name, new=new.staff_member.full_name),
          "success")
    return back_to("enrollment.session_page", municipality_id, session_id=session_id)


@bp.route("/municipal/nominations/upload", methods=["GET", "POST"])
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def nominate_csv():
    municipality, chooser = municipality_or_chooser("enrollment.nominate_csv")
    if municipality is None:
        return chooser
    form = roster_forms.NominationUploadForm()
    report = None
    if form.validate_on_submit():
        data = form.file.data.read(MAX_CSV_BYTES + 1)
        municipality_id = municipality.id
        db.session.rollback()
        try:
            report = municipal.nominate_from_csv(municipality_id, data, current_user)
        except DomainError as exc:
            db.session.rollback()
            form.file.errors.append(exc.message)
        municipality = db.session.get(Municipality, municipality_id)
    return render_template("enrollment/nominate_csv.html", form=form, municipality=municipality, report=report,
                           labels=municipal.NOMINATION_LABELS)


# ---------------------------------------------------------------- 選考 (the organiser decides)


class SelectionForm(Form):
    reason = TextAreaField(_l("見送る申込者に伝える理由"), validators=[Length(max=1000)])


def _selection_session(session_id: int) -> TrainingSession:
    """The session, if ``current_user`` organises its course (its trainer, or a platform admin)."""
    session = db.session.get(TrainingSession, session_id)
    if session is None:
        abort(404)
    if not can_manage_course(current_user, session.course):
        refuse_as_missing(current_user, "training_session", session_id)
    return session


@bp.route("/sessions/<int:session_id>/selection", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def selection(session_id: int):
    """選考: the session's requests that passed their approval steps, decided together."""
    session = _selection_session(session_id)
    form = SelectionForm()
    chosen: dict[int, str] = {}
    status = 200
    if request.method == "POST":
        for key, value in request.form.items():
            if key.startswith("decision-") and value in services.SELECTION_CHOICES:
                enrollment_id = parse_id(key.removeprefix("decision-"))
                if enrollment_id is not None:
                    chosen[enrollment_id] = value
        if form.validate_on_submit():
            in_order = bool(request.form.get("in_order"))
            db.session.rollback()
            try:
                result = (services.decide_selection_in_order(session_id, current_user) if in_order
                          else services.decide_selection(session_id, chosen, current_user, form.reason.data or ""))
            except DomainError as exc:
                db.session.rollback()
                form.form_errors.append(exc.message)
                status = 403 if isinstance(exc, services.NotAllowed) else 409 if not isinstance(exc, services.InvalidInput) \
                    else 400
            else:
                flash(_("選考の結果を確定しました（受講決定 %(s)d 人、補欠 %(r)d 人、見送り %(d)d 人）。申込者にはメールでお知らせします。",
                        s=result.selected, r=result.reserved, d=result.declined), "success")
                return redirect(url_for("enrollment.selection", session_id=session_id))
        else:
            status = 400
        session = _selection_session(session_id)
    waiting = services.waiting_for_selection(session.id)
    in_steps = db.session.scalar(
        select(func.count()).select_from(Enrollment).where(
            Enrollment.session_id == session.id, Enrollment.status == PENDING,
            Enrollment.approval_step.not_in([SELECTION_STEP, RETURNED_STEP]))) or 0
    return render_template(
        "enrollment/selection.html", session=session, course=session.course, form=form, waiting=waiting,
        in_steps=in_steps, chosen=chosen, free=max(session.capacity - session.confirmed_count, 0),
        approval_history=approvals.history([e.id for e in waiting]), step_label=approvals.step_label,
    ), status
