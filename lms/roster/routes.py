"""The staff roster (職員名簿) and the municipal admin's pages (研修担当).

Municipal admins work on their own municipality only; platform admins choose one
(``?m=<municipality id>``). Any attempt on another municipality's data is a 403 with an
``access.denied`` audit entry (lms.common.access.require_municipality).
"""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN
from lms.common.access import municipality_scope, require_municipality, role_required
from lms.common.errors import DomainError
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.roster import forms, municipal, services
from lms.roster.models import ACTIVE, LEFT, StaffMember

bp = Blueprint("roster", __name__)

ADMINS = (MUNICIPAL_ADMIN, PLATFORM_ADMIN)


# ---------------------------------------------------------------- scope


def _scope_or_choose(endpoint: str):
    """The municipality worked on (``?m=``: a platform admin's choice), or the page to choose one."""
    scope = municipality_scope(current_user, request.values.get("m"))
    municipality = db.session.get(Municipality, scope) if scope is not None else None
    if municipality is None:
        form = forms.MunicipalityChoiceForm(request.args)
        form.m.choices = [(m.id, m.name) for m in db.session.scalars(select(Municipality).order_by(Municipality.sort_order))]
        return None, render_template("roster/choose_municipality.html", form=form, endpoint=endpoint)
    return municipality, None


def _member_or_403(member_id: int) -> StaffMember:
    member = db.get_or_404(StaffMember, member_id)
    require_municipality(current_user, member.municipality_id)
    return member


def _back(endpoint: str, municipality_id: int, **values):
    if current_user.has_role(PLATFORM_ADMIN):
        values["m"] = municipality_id
    return redirect(url_for(endpoint, **values))


def _url_m(municipality_id: int) -> dict:
    return {"m": municipality_id} if current_user.has_role(PLATFORM_ADMIN) else {}


@bp.app_context_processor
def _roster_helpers():
    return {"roster_m": _url_m}


# ---------------------------------------------------------------- roster list and entries


@bp.get("/roster")
@role_required(*ADMINS)
def index():
    municipality, chooser = _scope_or_choose("roster.index")
    if chooser:
        return chooser
    q = request.args.get("q", "").strip()[:100]
    department = request.args.get("department", "")[:200]
    job_title = request.args.get("job_title", "")[:100]
    status = request.args.get("status", ACTIVE)
    stmt = services.roster_query(municipality.id, q=q, department=department, job_title=job_title, status=status)
    page = db.paginate(stmt, per_page=50, error_out=False)
    departments, titles = services.roster_choices(municipality.id)
    return render_template(
        "roster/index.html", municipality=municipality, page=page, q=q, department=department,
        job_title=job_title, status=status, departments=departments, titles=titles, ACTIVE=ACTIVE, LEFT=LEFT,
    )


@bp.route("/roster/new", methods=["GET", "POST"])
@role_required(*ADMINS)
def new():
    municipality, chooser = _scope_or_choose("roster.new")
    if chooser:
        return chooser
    form = forms.StaffForm()
    if form.validate_on_submit():
        try:
            member = services.save_staff_member(municipality.id, form.data, current_user)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            form.employee_number.errors.append(exc.message)
        else:
            flash(_("%(name)s さんを名簿に追加しました。", name=member.full_name), "success")
            return redirect(url_for("roster.detail", member_id=member.id))
    return render_template("roster/edit.html", form=form, municipality=municipality, member=None)


@bp.get("/roster/<int:member_id>")
@role_required(*ADMINS)
def detail(member_id: int):
    member = _member_or_403(member_id)
    from lms.enrollment.models import Enrollment

    enrollments = db.session.scalars(
        select(Enrollment).where(Enrollment.staff_member_id == member.id).order_by(Enrollment.requested_at.desc()).limit(50)
    ).all()
    return render_template(
        "roster/detail.html", member=member, enrollments=enrollments,
        transfer_form=forms.TransferForm(formdata=None, effective_on=services.today_tokyo()),
        departure_form=forms.DepartureForm(formdata=None, left_on=services.today_tokyo()),
    )


@bp.route("/roster/<int:member_id>/edit", methods=["GET", "POST"])
@role_required(*ADMINS)
def edit(member_id: int):
    member = _member_or_403(member_id)
    form = forms.StaffForm(obj=member)
    if form.validate_on_submit():
        try:
            services.save_staff_member(member.municipality_id, form.data, current_user, member_id=member.id)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            form.employee_number.errors.append(exc.message)
        else:
            flash(_("名簿を更新しました。"), "success")
            return redirect(url_for("roster.detail", member_id=member.id))
    return render_template("roster/edit.html", form=form, municipality=member.municipality, member=member)


@bp.post("/roster/<int:member_id>/transfer")
@role_required(*ADMINS)
def transfer(member_id: int):
    member = _member_or_403(member_id)
    form = forms.TransferForm()
    if not form.validate_on_submit():
        flash(" ".join(str(e) for errors in form.errors.values() for e in errors), "error")
        return redirect(url_for("roster.detail", member_id=member.id))
    try:
        services.transfer_staff(member.id, form.department.data or "", form.job_title.data or "", form.effective_on.data, current_user)
        db.session.commit()
        flash(_("人事異動を記録しました。"), "success")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("roster.detail", member_id=member.id))


@bp.post("/roster/<int:member_id>/leave")
@role_required(*ADMINS)
def leave(member_id: int):
    member = _member_or_403(member_id)
    form = forms.DepartureForm()
    if not form.validate_on_submit():
        flash(" ".join(str(e) for errors in form.errors.values() for e in errors), "error")
        return redirect(url_for("roster.detail", member_id=member.id))
    try:
        services.record_departure(member.id, form.left_on.data, current_user)
        db.session.commit()
        flash(_("退職・転出を記録しました。受講履歴はそのまま残ります。"), "success")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("roster.detail", member_id=member.id))


# ---------------------------------------------------------------- CSV


@bp.route("/roster/import", methods=["GET", "POST"])
@role_required(*ADMINS)
def import_csv():
    municipality, chooser = _scope_or_choose("roster.import_csv")
    if chooser:
        return chooser
    form = forms.RosterImportForm()
    report = None
    if form.validate_on_submit():
        data = form.file.data.read(services.MAX_CSV_BYTES + 1)
        try:
            report = services.import_roster(
                municipality.id, data, current_user,
                mark_missing_left=form.mark_missing_left.data, effective_on=form.effective_on.data,
            )
        except DomainError as exc:
            db.session.rollback()
            form.file.errors.append(exc.message)
        else:
            if report.applied:
                db.session.commit()
                flash(_("名簿を取り込みました（文字コード：%(encoding)s）。", encoding=report.encoding), "success")
            else:
                db.session.rollback()
                flash(_("取り込めない行があるため、名簿は変更していません。下の一覧を確認し、ファイルを直してからもう一度アップロードしてください。"), "error")
    return render_template("roster/import.html", form=form, municipality=municipality, report=report,
                           labels=services.OUTCOME_LABELS, columns=services.ROSTER_COLUMNS,
                           max_mb=services.MAX_CSV_BYTES // (1024 * 1024), max_rows=services.MAX_CSV_ROWS)


@bp.get("/roster/export.csv")
@role_required(*ADMINS)
def export_csv():
    municipality, chooser = _scope_or_choose("roster.index")
    if chooser:
        return chooser
    encoding = "cp932" if request.args.get("encoding") == "cp932" else "utf-8"
    body = services.export_roster_csv(municipality.id, encoding=encoding)
    filename = f"roster-{municipality.code}.csv"
    from lms.audit.services import record_action
    from lms.common.database import begin_write

    municipality_id = municipality.id
    begin_write()
    record_action(current_user, "roster.export", "municipality", municipality_id, municipality_id, encoding=encoding)
    db.session.commit()  # personal data left the system: who and when is on record
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f'attachment; filename="{filename}"',
        "Content-Type": f"text/csv; charset={'Shift_JIS' if encoding == 'cp932' else 'UTF-8'}",
        "Cache-Control": "private, no-store",
    })


# ---------------------------------------------------------------- 研修担当 home


@bp.get("/municipal")
@role_required(*ADMINS)
def admin_home():
    municipality, chooser = _scope_or_choose("roster.admin_home")
    if chooser:
        return chooser
    page = db.paginate(municipal.open_sessions_query(municipality.id), per_page=20, error_out=False)
    return render_template(
        "roster/admin_home.html", municipality=municipality, pending=municipal.pending_approvals(municipality.id),
        quotas=municipal.quota_use(municipality.id), page=page, reject_form=forms.RejectForm(formdata=None),
    )


def _enrollment_or_403(enrollment_id: int):
    from lms.enrollment.models import Enrollment

    enrollment = db.get_or_404(Enrollment, enrollment_id)
    require_municipality(current_user, enrollment.municipality_id)
    return enrollment


@bp.post("/municipal/enrollments/<int:enrollment_id>/approve")
@role_required(*ADMINS)
def approve(enrollment_id: int):
    from lms.enrollment.services import approve_enrollment

    enrollment = _enrollment_or_403(enrollment_id)
    municipality_id = enrollment.municipality_id
    db.session.rollback()
    try:
        approved = approve_enrollment(enrollment_id, current_user)
        flash(_("%(name)s さんの申込を承認しました。", name=approved.staff_member.full_name), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return _back("roster.admin_home", municipality_id)


@bp.post("/municipal/enrollments/<int:enrollment_id>/reject")
@role_required(*ADMINS)
def reject(enrollment_id: int):
    from lms.enrollment.services import reject_enrollment

    enrollment = _enrollment_or_403(enrollment_id)
    municipality_id = enrollment.municipality_id
    form = forms.RejectForm()
    if not form.validate_on_submit():
        flash(_("承認しない理由を入力してください。"), "error")
        return _back("roster.admin_home", municipality_id)
    db.session.rollback()
    try:
        reject_enrollment(enrollment_id, current_user, form.reason.data)
        flash(_("申込を承認しませんでした。本人に理由を通知します。"), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return _back("roster.admin_home", municipality_id)


@bp.get("/municipal/sessions/<int:session_id>")
@role_required(*ADMINS)
def session_page(session_id: int):
    from lms.courses.models import TrainingSession

    municipality, chooser = _scope_or_choose("roster.admin_home")
    if chooser:
        return chooser
    session = db.get_or_404(TrainingSession, session_id)
    if not municipal.session_open_to(session, municipality.id):
        abort(404)
    q = request.args.get("q", "").strip()[:100]
    quota = next((row for row in session.quotas if row.municipality_id == municipality.id), None)
    return render_template(
        "roster/session.html", municipality=municipality, session=session, quota=quota, q=q,
        enrollments=municipal.municipality_enrollments(session.id, municipality.id),
        matches=municipal.search_staff(municipality.id, q), swap_form=forms.SwapForm(formdata=None),
    )


@bp.post("/municipal/sessions/<int:session_id>/nominate")
@role_required(*ADMINS)
def nominate(session_id: int):
    from lms.enrollment.services import nominate as nominate_staff

    form = forms.NominateForm()
    if not form.validate_on_submit():
        abort(400)
    member = _member_or_403(form.staff_member_id.data)
    municipality_id = member.municipality_id
    db.session.rollback()
    try:
        result = nominate_staff(session_id, member.id, current_user)
        flash(result.message, "success" if result.created else "info")
    except DomainError as exc:
        flash(exc.message, "error")
    return _back("roster.session_page", municipality_id, session_id=session_id)


@bp.post("/municipal/enrollments/<int:enrollment_id>/swap")
@role_required(*ADMINS)
def swap(enrollment_id: int):
    from lms.enrollment.services import swap_nominee

    enrollment = _enrollment_or_403(enrollment_id)
    municipality_id, session_id = enrollment.municipality_id, enrollment.session_id
    form = forms.SwapForm()
    if not form.validate_on_submit():
        flash(_("差し替え先の職員番号を入力してください。"), "error")
        return _back("roster.session_page", municipality_id, session_id=session_id)
    replacement = municipal.staff_by_number(municipality_id, form.employee_number.data)
    if replacement is None:
        flash(_("職員番号 %(number)s の職員が名簿にありません。", number=form.employee_number.data), "error")
        return _back("roster.session_page", municipality_id, session_id=session_id)
    replacement_id = replacement.id
    db.session.rollback()
    try:
        new = swap_nominee(enrollment_id, replacement_id, current_user, form.reason.data or "")
        flash(_("%(name)s さんに差し替えました。", name=new.staff_member.full_name), "success")
    except DomainError as exc:
        flash(exc.message, "error")
    return _back("roster.session_page", municipality_id, session_id=session_id)


@bp.route("/municipal/nominations/upload", methods=["GET", "POST"])
@role_required(*ADMINS)
def nominate_csv():
    municipality, chooser = _scope_or_choose("roster.nominate_csv")
    if chooser:
        return chooser
    form = forms.NominationUploadForm()
    report = None
    if form.validate_on_submit():
        data = form.file.data.read(services.MAX_CSV_BYTES + 1)
        municipality_id = municipality.id
        db.session.rollback()
        try:
            report = municipal.nominate_from_csv(municipality_id, data, current_user)
        except DomainError as exc:
            db.session.rollback()
            form.file.errors.append(exc.message)
        municipality = db.session.get(Municipality, municipality_id)
    return render_template("roster/nominate_csv.html", form=form, municipality=municipality, report=report,
                           labels=municipal.NOMINATION_LABELS)
