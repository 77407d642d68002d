"""The staff roster (職員名簿): list, entries, transfers, CSV import and export.

Who may see which municipality: lms.roster.pages (the municipal admin's pages' scope)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from lms.audit.services import record_action
from lms.common import once
from lms.common.access import role_required
from lms.common.database import begin_write
from lms.common.errors import Conflict, DomainError
from lms.common.forms import put_error
from lms.common.pagination import beyond_last_page, requested_page
from lms.common.templating import format_date_jst
from lms.extensions import db
from lms.roster import forms, services
from lms.roster.models import ACTIVE, LEFT
from lms.roster.pages import ADMINS, municipality_args, municipality_or_chooser, staff_member_or_404

bp = Blueprint("roster", __name__)


@bp.app_context_processor
def _roster_helpers():
    return {"roster_m": municipality_args}


# ---------------------------------------------------------------- roster list and entries


@bp.get("/roster")
@role_required(*ADMINS)
def index():
    municipality, chooser = municipality_or_chooser("roster.index")
    if municipality is None:
        return chooser
    q = request.args.get("q", "").strip()[:100]
    department = request.args.get("department", "")[:200]
    job_title = request.args.get("job_title", "")[:100]
    status = request.args.get("status", ACTIVE)
    stmt = services.roster_query(municipality.id, q=q, department=department, job_title=job_title, status=status)
    page = db.paginate(stmt, page=requested_page(), per_page=50, error_out=False)
    if (last := beyond_last_page(page)) is not None:
        return last
    departments, titles = services.roster_choices(municipality.id)
    return render_template(
        "roster/index.html", municipality=municipality, page=page, q=q, department=department,
        job_title=job_title, status=status, departments=departments, titles=titles, ACTIVE=ACTIVE, LEFT=LEFT,
    )


def _field_of(form, exc: DomainError):
    """The form field a refusal of the roster service is about (the 職員番号 when it names none)."""
    field = getattr(form, str(exc.context.get("field", "")), None)
    return field if field is not None else form.employee_number


@bp.route("/roster/new", methods=["GET", "POST"])
@role_required(*ADMINS)
def new():
    municipality, chooser = municipality_or_chooser("roster.new")
    if municipality is None:
        return chooser
    form = forms.StaffForm()
    if form.validate_on_submit():
        if (again := once.repeated()) is not None:
            return again
        try:
            member = services.save_staff_member(municipality.id, form.data, current_user)
            target = once.remember(url_for("roster.detail", member_id=member.id))
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            _field_of(form, exc).errors.append(exc.message)
        else:
            flash(_("%(name)s さんを名簿に追加しました。", name=member.full_name), "success")
            return redirect(target)
    return render_template("roster/edit.html", form=form, municipality=municipality, member=None)


@bp.get("/roster/<int:member_id>")
@role_required(*ADMINS)
def detail(member_id: int):
    return _detail_page(staff_member_or_404(member_id))


def _detail_page(member, *, transfer_form=None, departure_form=None, status: int = 200):
    """The member's page; with a refused transfer or departure form, that form as it was sent,
    its errors beside its fields (nothing typed is lost, and no date silently becomes today)."""
    # The member's enrollments: the enrollment area's ``staff_enrollments`` (a template global).
    return render_template(
        "roster/detail.html", member=member,
        transfer_form=transfer_form or forms.TransferForm(formdata=None, effective_on=services.today_tokyo()),
        departure_form=departure_form or forms.DepartureForm(formdata=None, left_on=services.today_tokyo()),
    ), status


@bp.route("/roster/<int:member_id>/edit", methods=["GET", "POST"])
@role_required(*ADMINS)
def edit(member_id: int):
    member = staff_member_or_404(member_id)
    form = forms.StaffForm(obj=member)
    if form.validate_on_submit():
        try:
            services.save_staff_member(member.municipality_id, form.data, current_user, member_id=member.id)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            _field_of(form, exc).errors.append(exc.message)
        else:
            flash(_("名簿を更新しました。"), "success")
            return redirect(url_for("roster.detail", member_id=member.id))
    return render_template("roster/edit.html", form=form, municipality=member.municipality, member=member)


@bp.post("/roster/<int:member_id>/transfer")
@role_required(*ADMINS)
def transfer(member_id: int):
    member = staff_member_or_404(member_id)
    form = forms.TransferForm()
    if form.validate_on_submit():
        try:
            services.transfer_staff(member.id, form.department.data or "", form.job_title.data or "",
                                    form.effective_on.data, current_user)
            db.session.commit()
        except Conflict as exc:  # (left meanwhile: there is no form to show it on)
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(url_for("roster.detail", member_id=member.id))
        except DomainError as exc:
            db.session.rollback()
            put_error(form, exc)  # (beside the field it names, else above the form)
        else:
            flash(_("人事異動を記録しました。"), "success")
            return redirect(url_for("roster.detail", member_id=member.id))
    return _detail_page(member, transfer_form=form, status=422)


@bp.post("/roster/<int:member_id>/leave")
@role_required(*ADMINS)
def leave(member_id: int):
    member = staff_member_or_404(member_id)
    form = forms.DepartureForm()
    if form.validate_on_submit():
        try:
            services.record_departure(member.id, form.left_on.data, current_user)
            db.session.commit()
        except Conflict as exc:  # (left already, or this very departure recorded: a double click)
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(url_for("roster.detail", member_id=member.id))
        except DomainError as exc:
            db.session.rollback()
            form.left_on.errors.append(exc.message)
        else:
            if member.status == LEFT:
                flash(_("退職・転出を記録しました。受講履歴はそのまま残ります。退職日より後の研修回の申込は、まもなく自動的に取り消されます。"), "success")
            else:
                flash(_("%(date)s の退職・転出を予定として記録しました。その日までは在職として扱われます。退職日より後の研修回の申込は、まもなく自動的に取り消されます。",
                        date=format_date_jst(form.left_on.data)), "success")
            return redirect(url_for("roster.detail", member_id=member.id))
    return _detail_page(member, departure_form=form, status=422)


# ---------------------------------------------------------------- CSV


@bp.route("/roster/import", methods=["GET", "POST"])
@role_required(*ADMINS)
def import_csv():
    municipality, chooser = municipality_or_chooser("roster.import_csv")
    if municipality is None:
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
    municipality, chooser = municipality_or_chooser("roster.index")
    if municipality is None:
        return chooser
    encoding = "cp932" if request.args.get("encoding") == "cp932" else "utf-8"
    if encoding == "cp932" and request.args.get("lossy") != "1":
        losses = services.cp932_losses(municipality.id)
        if losses:
            # Say which rows would lose characters before any "?" reaches a file.
            args: dict[str, Any] = dict(municipality_args(municipality.id))
            return render_template(
                "cp932_losses.html", losses=losses[:200], total=len(losses), what=_("職員名簿"),
                utf8_url=url_for("roster.export_csv", **args),
                lossy_url=url_for("roster.export_csv", encoding="cp932", lossy="1", **args),
                back_url=url_for("roster.index", **args))
    body = services.export_roster_csv(municipality.id, encoding=encoding)
    filename = f"roster-{municipality.code}{'-sjis' if encoding == 'cp932' else ''}.csv"
    municipality_id = municipality.id
    begin_write()
    record_action(current_user, "roster.export", "municipality", municipality_id, municipality_id, encoding=encoding)
    db.session.commit()  # personal data left the system: who and when is on record
    # content_type, not mimetype: with a mimetype Flask would label the file UTF-8 whatever it is.
    return Response(body, content_type=f"text/csv; charset={'Shift_JIS' if encoding == 'cp932' else 'UTF-8'}",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"',
                             "Cache-Control": "private, no-store"})


