"""受講履歴, the completion dashboards, exports, certificates and their public verification."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from lms.audit.services import record_access
from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, TRAINER
from lms.common import once
from lms.common.access import (
    municipality_scope,
    refuse_as_missing,
    require_municipality,
    require_own_object,
    role_required,
)
from lms.common.errors import DomainError, InvalidInput
from lms.common.forms import Form, put_error
from lms.common.ids import parse_id, parse_ids
from lms.common.limits import configured, limit_export
from lms.common.pagination import beyond_last_page, requested_page, this_address
from lms.common.public import public
from lms.common.telemetry import timed_export
from lms.common.templating import format_date_jst
from lms.common.timeutil import to_tokyo
from lms.common.web import private_download
from lms.common.xlsx import XLSX_MIME
from lms.completion import prerequisites, reports, services
from lms.completion.certificates import (
    certificate_data,
    certificate_filename,
    course_zip_chunks,
    verification_base,
    verification_url,
)
from lms.completion.certificates import (
    verify_certificate as verify_serial,
)
from lms.completion.exports import csv_chunks, xlsx_chunks
from lms.completion.forms import AssignmentForm, ManualCompletionForm, RevokeForm
from lms.completion.models import COMPLETED, Completion, MandatoryAssignment
from lms.completion.tables import (
    COURSE_TABLES,
    PERSONAL_TABLES,
    TABLES,
    build_table,
    cp932_losses,
    method_label,
    title_lines_for,
)
from lms.courses.models import Course
from lms.extensions import db, limiter
from lms.municipalities.models import Municipality
from lms.municipalities.services import municipality_exists
from lms.roster.models import StaffMember

bp = Blueprint("completion", __name__)
bp.add_app_template_global(method_label, "method_label")

VERIFY_LIMIT = configured("LMS_LIMIT_VERIFY")
COURSES_PER_PAGE = 50
MISSING_PER_PAGE = 50


# ---------------------------------------------------------------- request parameters


def _fiscal_year(*, download: bool = False) -> int:
    """The fiscal year asked for (``?fy=``), the current one when none is named. A year outside
    ``services.fiscal_year_range()`` (or no year at all: ``fy=abc``) is never answered with
    another year's figures: a page is sent on to the nearest year it shows, with a notice
    naming both; a file (``download``) is refused as not found."""
    text = (request.args.get("fy") or "").strip()
    current = reports.current_fiscal_year()
    if not text:
        return current
    first, last = services.fiscal_year_range()
    wanted = int(text) if re.fullmatch(r"[+-]?[0-9]{1,9}", text) else None
    if wanted is not None and first <= wanted <= last:
        return wanted
    if download:
        abort(404)
    if wanted is None:
        shown = current
        flash(_("年度の指定が正しくないため、%(shown)d年度を表示しています。", shown=shown), "warning")
    else:
        shown = min(max(wanted, first), last)
        flash(_("%(year)d年度は表示できません（表示できるのは%(first)d年度から%(last)d年度までです）。"
                "%(shown)d年度を表示しています。", year=wanted, first=first, last=last, shown=shown), "warning")
    abort(redirect(this_address(fy=shown)))  # the same address with the year shown


def fiscal_year_choices(scope: int | None = None, selected: int | None = None) -> list[int]:
    """The years worth offering: those with data in the scope, the current one, and the one
    shown (newest first), within the years shown. No empty future years."""
    first, last = services.fiscal_year_range()
    years = reports.fiscal_years_with_data(scope, also=(reports.current_fiscal_year(), selected))
    return [y for y in years if first <= y <= last]


def _course_param() -> int | None:
    course_id = parse_id(request.args.get("course"))
    if course_id is not None and db.session.get(Course, course_id) is not None:
        return course_id
    return None


def _municipality_name(municipality_id: int | None) -> str | None:
    return db.session.get_one(Municipality, municipality_id).name if municipality_id else None


def _municipalities():
    return db.session.execute(
        select(Municipality.id, Municipality.name).order_by(Municipality.sort_order, Municipality.code)
    ).all()


# ---------------------------------------------------------------- 受講履歴


@bp.get("/completion/history")
@login_required
def history():
    staff = current_user.staff_member
    rows = reports.learner_history(staff.id) if staff is not None else []
    paths = prerequisites.path_progress(staff.id) if staff is not None else []
    return render_template("completion/history.html", rows=rows, staff=staff, paths=paths)


def _may_read_certificate(completion: Completion) -> bool:
    staff = completion.staff_member
    if staff.user_id is not None and staff.user_id == current_user.id:
        return True
    if current_user.has_role(PLATFORM_ADMIN):
        return True
    if current_user.has_role(MUNICIPAL_ADMIN):
        require_own_object(current_user, staff.municipality_id, "completion", completion.id)
        return True
    return False


@bp.get("/completion/certificates/<int:completion_id>.pdf")
@login_required
def certificate(completion_id: int):
    completion = db.get_or_404(Completion, completion_id)
    if not _may_read_certificate(completion):
        abort(404)  # someone else's record: not even its existence is confirmed
    if completion.status != COMPLETED or not completion.certificate_serial:
        flash(_("この修了は取り消されているため、修了証は発行できません。"), "error")
        return redirect(url_for("completion.history"))
    from lms.completion.certificate_pdf import render_certificate_pdf  # (heavy: certificate_pdf says why)

    pdf = render_certificate_pdf(certificate_data(completion, verification_url(completion.certificate_serial),
                                                  current_app.config["LMS_ISSUER_NAME"]),
                                 current_app.config["LMS_CERTIFICATE_FONT"])
    return private_download(pdf, certificate_filename(completion), "application/pdf")


# ---------------------------------------------------------------- dashboard


@bp.get("/completion/dashboard")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def dashboard():
    scope = municipality_scope(current_user, request.args.get("municipality"), exists=municipality_exists)
    fy = _fiscal_year()
    course_id = _course_param()
    data = reports.dashboard(scope, fy, course_id)
    courses = data.courses
    page = requested_page()
    pages = max(1, (len(courses) + COURSES_PER_PAGE - 1) // COURSES_PER_PAGE)
    page = min(page, pages)
    departments, titles, trend = data.departments, data.job_titles, data.trend
    statuses = reports.assignment_statuses(scope, fy)
    return render_template(
        "completion/dashboard.html",
        scope=scope,
        scope_name=_municipality_name(scope),
        fy=fy,
        fy_choices=fiscal_year_choices(scope, fy),
        course_id=course_id,
        course_title=db.session.get_one(Course, course_id).title if course_id else None,
        courses=courses[(page - 1) * COURSES_PER_PAGE: page * COURSES_PER_PAGE],
        course_count=len(courses),
        chart_courses=[(c.title, c.rate) for c in sorted(
            [c for c in courses if c.rate is not None], key=lambda c: -(c.completed + c.not_yet)
        )[:12]],
        chart_departments=[(g.name or _("（未設定）"), g.rate) for g in departments[:12]],
        chart_trend=[(_("%(m)d月", m=m.label_month), m.completed) for m in trend],
        page=page,
        pages=pages,
        departments=departments,
        titles=titles,
        trend=trend,
        statuses=statuses,
        headline=reports.headline(courses, statuses, scope),
        activities=reports.activity_figures(scope, fy, course_id),
        municipalities=_municipalities() if current_user.has_role(PLATFORM_ADMIN) else [],
        is_platform=current_user.has_role(PLATFORM_ADMIN),
        export_args=_export_args(scope, fy, course_id),
    )


def _export_args(scope, fy, course_id) -> dict:
    args = {"fy": fy}
    if scope is not None:
        args["municipality"] = scope
    elif current_user.has_role(PLATFORM_ADMIN):
        args["municipality"] = "all"
    if course_id:
        args["course"] = course_id
    return args


@bp.get("/completion/assignments/<int:assignment_id>/missing")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def missing(assignment_id: int):
    scope = municipality_scope(current_user, request.args.get("municipality"), exists=municipality_exists)
    assignment = db.get_or_404(MandatoryAssignment, assignment_id)
    if assignment.municipality_id is not None and scope is not None and assignment.municipality_id != scope:
        require_own_object(current_user, assignment.municipality_id, "mandatory_assignment", assignment.id)
    pagination = reports.paginate_rows(reports.missing_staff_query(assignment, scope), requested_page(), MISSING_PER_PAGE)
    if (last := beyond_last_page(pagination)) is not None:
        return last
    status = next((s for s in reports.assignment_statuses(scope, assignment.fiscal_year)
                   if s.assignment.id == assignment.id), None)
    return render_template(
        "completion/missing.html", assignment=assignment, pagination=pagination, status=status, scope=scope,
        export_args={**_export_args(scope, assignment.fiscal_year, None), "assignment": assignment.id},
        today=reports.today_tokyo(),
    )


@bp.get("/completion/records")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def records():
    scope = municipality_scope(current_user, request.args.get("municipality"), exists=municipality_exists)
    fy = _fiscal_year()
    course_id = _course_param()
    pagination = reports.paginate_rows(reports.completion_records_query(scope, fy, course_id), requested_page())
    if (last := beyond_last_page(pagination)) is not None:
        return last
    return render_template(
        "completion/records.html", pagination=pagination, scope=scope, fy=fy, fy_choices=fiscal_year_choices(scope, fy),
        course_id=course_id, export_args=_export_args(scope, fy, course_id),
    )


@bp.get("/completion/compare")
@role_required(PLATFORM_ADMIN)
def comparison():
    fy = _fiscal_year()
    wanted = parse_ids(request.args.getlist("course"))[: reports.COMPARISON_MAX_COURSES]
    course_ids = wanted or reports.default_comparison_courses(fy)
    courses = db.session.execute(select(Course.id, Course.title).where(Course.id.in_(course_ids))).all()
    titles = dict(courses)
    course_ids = [c for c in course_ids if c in titles]
    rows = reports.comparison(fy, course_ids)
    choices = db.session.execute(select(Course.id, Course.title).order_by(Course.title, Course.id)).all()
    return render_template(
        "completion/comparison.html", fy=fy, fy_choices=fiscal_year_choices(None, fy), rows=rows,
        course_ids=course_ids, titles=titles, choices=choices, max_courses=reports.COMPARISON_MAX_COURSES,
        export_args={"fy": fy, "course": course_ids}, heat_band=heat_band,
    )


def heat_band(rate: float) -> int:
    """The shade of a completion rate on the comparison table: 0 (under 20 %) … 4 (80 % and over)."""
    return min(4, max(0, int(rate // 20)))


# ---------------------------------------------------------------- exports


@bp.get("/completion/export/<table>.<fmt>")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
@limit_export
def export(table: str, fmt: str):
    if table not in TABLES or fmt not in ("csv", "xlsx"):
        abort(404)
    if table == "comparison" and not current_user.has_role(PLATFORM_ADMIN):
        abort(403)
    scope = municipality_scope(current_user, request.args.get("municipality"), exists=municipality_exists)
    # The completion records can be exported for every year at once.
    all_years = table == "records" and request.args.get("fy") == "all"
    fy = reports.current_fiscal_year() if all_years else _fiscal_year(download=True)
    encoding = request.args.get("encoding", "utf-8").lower()
    if encoding in ("cp932", "windows-31j", "shift_jis", "sjis"):
        encoding = "cp932"
    elif encoding not in ("utf-8", "utf8"):
        abort(400)
    else:
        encoding = "utf-8"
    assignment = None
    if request.args.get("assignment"):
        assignment_id = parse_id(request.args.get("assignment"))
        assignment = db.session.get(MandatoryAssignment, assignment_id) if assignment_id else None
        if assignment is None:
            abort(404)
        if assignment.municipality_id is not None and scope is not None and assignment.municipality_id != scope:
            require_own_object(current_user, assignment.municipality_id, "mandatory_assignment", assignment.id)
    course_ids = parse_ids(request.args.getlist("course"))
    # The one course a table is narrowed to is named in its title lines and its file name.
    course = None
    if table in COURSE_TABLES and course_ids:
        course = db.session.get(Course, course_ids[0])
        if course is None:
            abort(404)
    built = build_table(table, scope=scope, fiscal_year=None if all_years else fy, course_ids=course_ids,
                        assignment=assignment)
    if fmt == "csv" and encoding == "cp932" and request.args.get("lossy") != "1":
        losses, total = cp932_losses(table, built, scope=scope, fiscal_year=None if all_years else fy)
        if losses:
            # Say which rows would lose characters before any "?" reaches a file.
            query: dict[str, Any] = request.args.to_dict(flat=False)
            query.pop("lossy", None)
            query["encoding"] = ["utf-8"]
            utf8_url = url_for("completion.export", table=table, fmt=fmt, **query)
            query["encoding"], query["lossy"] = ["cp932"], ["1"]
            return render_template(
                # (the records are checked by the people and courses they name, not row by row)
                "cp932_losses.html", losses=losses, total=total, what=built.sheet_title, utf8_url=utf8_url,
                by_name=table == "records",
                lossy_url=url_for("completion.export", table=table, fmt=fmt, **query),
                back_url=url_for("completion.dashboard"))
    exported_at = datetime.now(UTC)
    built.title_lines = title_lines_for(built.sheet_title, _municipality_name(scope),
                                        None if all_years else fy, exported_at, course.title if course else None)
    record_access(
        current_user, "export.completion", "export", table, scope,
        table=table, format=fmt, encoding=encoding if fmt == "csv" else "", fiscal_year="all" if all_years else fy,
        scope_municipality_id=scope, course=course_ids, assignment=assignment.id if assignment else None,
        personal=table in PERSONAL_TABLES,
    )
    # Dated in Tokyo, as the sheet's 出力日時; the Shift_JIS file is told apart from the UTF-8 one.
    sjis = "-sjis" if fmt == "csv" and encoding == "cp932" else ""
    of_course = f"-course{course.id}" if course else ""
    filename = f"{built.name}-{'all' if all_years else fy}{of_course}-{to_tokyo(exported_at):%Y%m%d}{sjis}.{fmt}"
    if fmt == "csv":
        body = csv_chunks(built, encoding)
        # content_type, not mimetype: Flask would add a second charset to a text/* mimetype.
        content_type = "text/csv; charset=" + ("Shift_JIS" if encoding == "cp932" else "UTF-8")
    else:
        body = xlsx_chunks(built)
        content_type = XLSX_MIME
    response = private_download(stream_with_context(timed_export(body, f"{table}.{fmt}")), filename, content_type)
    response.headers["X-Accel-Buffering"] = "no"
    if encoding == "cp932":
        response.headers["X-Export-Note"] = "cp932: characters outside Windows-31J are replaced with ?"
    return response


@bp.get("/completion/courses/<int:course_id>/certificates.zip")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
@limit_export
def certificates_zip(course_id: int):
    scope = municipality_scope(current_user, request.args.get("municipality"), exists=municipality_exists)
    fy = _fiscal_year(download=True)
    course = db.get_or_404(Course, course_id)
    query = (
        select(Completion)
        .join(StaffMember, StaffMember.id == Completion.staff_member_id)
        .where(Completion.course_id == course.id, Completion.fiscal_year == fy, Completion.status == COMPLETED)
        .order_by(StaffMember.employee_number, Completion.id)
    )
    if scope is not None:
        query = query.where(StaffMember.municipality_id == scope)
    record_access(
        current_user, "export.completion", "course", course.id, scope,
        table="certificates", format="zip", fiscal_year=fy, scope_municipality_id=scope, personal=True,
    )
    verify_base = verification_base()
    return private_download(
        stream_with_context(course_zip_chunks(query, lambda s: verify_base.replace("SERIAL", quote(s)),
                                            current_app.config["LMS_CERTIFICATE_FONT"],
                                            current_app.config["LMS_ISSUER_NAME"])),
        f"certificates-{course.id}-{fy}.zip", "application/zip")


# ---------------------------------------------------------------- mandatory assignments


def _assignment_form(assignment: MandatoryAssignment | None = None) -> AssignmentForm:
    form = AssignmentForm(obj=assignment) if assignment is not None and request.method == "GET" else AssignmentForm()
    courses = db.session.execute(select(Course.id, Course.title).order_by(Course.title, Course.id)).all()
    form.course_id.choices = [(c.id, c.title) for c in courses]
    if current_user.has_role(PLATFORM_ADMIN):
        form.municipality_id.choices = [("", _("すべての区市町村"))] + [(str(m.id), m.name) for m in _municipalities()]
    else:
        own = db.session.get(Municipality, current_user.municipality_id)
        form.municipality_id.choices = [(str(own.id), own.name)] if own else []
    if request.method == "GET":
        if assignment is not None:
            form.municipality_id.data = str(assignment.municipality_id or "")
        else:
            form.fiscal_year.data = _fiscal_year()
            if not current_user.has_role(PLATFORM_ADMIN):
                form.municipality_id.data = str(current_user.municipality_id)
    return form


def _save_assignment(form: AssignmentForm, assignment_id: int | None):
    municipality_id = parse_id(form.municipality_id.data)
    if municipality_id is None and not current_user.has_role(PLATFORM_ADMIN):
        require_municipality(current_user, None)
    if municipality_id is not None and not current_user.has_role(PLATFORM_ADMIN):
        require_municipality(current_user, municipality_id)
    return services.save_mandatory_assignment(
        current_user, course_id=form.course_id.data, fiscal_year=form.fiscal_year.data,
        municipality_id=municipality_id, department=form.department.data or "",
        job_title=form.job_title.data or "", new_staff_fiscal_year=form.new_staff_fiscal_year.data,
        due_on=form.due_on.data, note=form.note.data or "", assignment_id=assignment_id,
    )


@bp.route("/completion/assignments/new", methods=["GET", "POST"])
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def assignment_new():
    # A municipality asked for in the URL must be one the user administers.
    municipality_scope(current_user, request.args.get("municipality"), exists=municipality_exists)
    form = _assignment_form()
    duplicate = None  # the assignment of the same course, year and group, when one was posted again
    if form.validate_on_submit():
        if (again := once.repeated()) is not None:
            return again
        try:
            assignment = _save_assignment(form, None)
        except DomainError as exc:
            db.session.rollback()
            put_error(form, exc)
            duplicate = exc.context.get("existing_id")
        else:
            target = once.remember(url_for("completion.dashboard", fy=assignment.fiscal_year, _anchor="mandatory"))
            db.session.commit()
            flash(_("必修指定を登録しました。"), "success")
            return redirect(target)
    return render_template("completion/assignment_form.html", form=form, assignment=None, duplicate=duplicate)


@bp.route("/completion/assignments/<int:assignment_id>/edit", methods=["GET", "POST"])
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def assignment_edit(assignment_id: int):
    municipality_scope(current_user, request.args.get("municipality"), exists=municipality_exists)
    assignment = db.get_or_404(MandatoryAssignment, assignment_id)
    if not services.can_manage_assignment(current_user, assignment.municipality_id):
        refuse_as_missing(current_user, "mandatory_assignment", assignment.id)
    form = _assignment_form(assignment)
    duplicate = None
    if form.validate_on_submit():
        try:
            _save_assignment(form, assignment.id)
        except DomainError as exc:
            db.session.rollback()
            put_error(form, exc)
            duplicate = exc.context.get("existing_id")
        else:
            db.session.commit()
            flash(_("必修指定を更新しました。"), "success")
            return redirect(url_for("completion.dashboard", fy=form.fiscal_year.data, _anchor="mandatory"))
    return render_template("completion/assignment_form.html", form=form, assignment=assignment, duplicate=duplicate)


@bp.route("/completion/assignments/<int:assignment_id>/delete", methods=["GET", "POST"])
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def assignment_delete(assignment_id: int):
    """Removing a mandatory assignment asks on a page first (what it covers, how many staff
    it makes a course mandatory for); the page's button POSTs here."""
    assignment = db.get_or_404(MandatoryAssignment, assignment_id)
    fy = assignment.fiscal_year
    if not services.can_manage_assignment(current_user, assignment.municipality_id):
        refuse_as_missing(current_user, "mandatory_assignment", assignment.id)
    back = url_for("completion.dashboard", fy=fy, _anchor="mandatory")
    if request.method == "GET":
        return render_template(
            "confirm.html", heading=_("必修指定の削除"),
            lead=_("この必修指定を削除すると、対象の職員にとってこの研修は必修ではなくなります。修了の記録は消えません。"),
            facts=[(_("研修"), assignment.course.title),
                   (_("対象"), assignment.municipality.name if assignment.municipality else _("全区市町村")),
                   (_("年度"), f"{fy}"), (_("期限"), format_date_jst(assignment.due_on))],
            action_url=url_for("completion.assignment_delete", assignment_id=assignment.id), button=_("削除する"),
            back_url=back,
        )
    if not Form().validate_on_submit():
        abort(400)
    try:
        services.delete_mandatory_assignment(current_user, assignment_id)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(_("必修指定を削除しました。"), "success")
    return redirect(url_for("completion.dashboard", fy=fy, _anchor="mandatory"))


# ---------------------------------------------------------------- manual decisions (trainers)


def _course_for_decisions(course_id: int) -> Course:
    course = db.get_or_404(Course, course_id)
    if not services.can_decide(current_user, course):
        refuse_as_missing(current_user, "course", course_id)  # another trainer's: as if there were none
    return course


@bp.route("/completion/courses/<int:course_id>", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def course_completions(course_id: int):
    course = _course_for_decisions(course_id)
    fy = _fiscal_year()
    form = ManualCompletionForm()
    form.municipality_id.choices = [(m.id, m.name) for m in _municipalities()]
    if request.method == "GET":
        form.fiscal_year.data = fy
    if form.validate_on_submit():
        staff = db.session.scalar(select(StaffMember).where(
            StaffMember.municipality_id == form.municipality_id.data,
            StaffMember.employee_number == form.employee_number.data.strip(),
        ))
        try:
            if staff is None:
                raise InvalidInput(_("その区市町村に、この職員番号の職員はいません。"), field="employee_number")
            services.complete_manually(staff.id, course.id, form.fiscal_year.data, current_user, form.reason.data)
        except DomainError as exc:
            db.session.rollback()
            put_error(form, exc)  # under the staff number, the year or the reason
        else:
            db.session.commit()
            flash(_("修了を登録しました。"), "success")
            return redirect(url_for("completion.course_completions", course_id=course.id, fy=form.fiscal_year.data))
    pagination = reports.paginate_rows(reports.completion_records_query(None, fy, course.id), requested_page())
    if (last := beyond_last_page(pagination)) is not None:
        return last
    return render_template(
        "completion/course_completions.html", course=course, fy=fy, fy_choices=fiscal_year_choices(None, fy),
        form=form, revoke_form=RevokeForm(), pagination=pagination,
    )


@bp.post("/completion/<int:completion_id>/revoke")
@role_required(TRAINER, PLATFORM_ADMIN)
def revoke(completion_id: int):
    completion = db.get_or_404(Completion, completion_id)
    course_id, fy = completion.course_id, completion.fiscal_year
    _course_for_decisions(course_id)
    form = RevokeForm()
    if not form.validate_on_submit():
        flash(_("取消の理由を入力してください。"), "error")
    else:
        try:
            services.revoke_completion(completion_id, current_user, form.reason.data)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("修了を取り消しました。"), "success")
    return redirect(url_for("completion.course_completions", course_id=course_id, fy=fy))


# ---------------------------------------------------------------- public verification


@bp.get("/certificates/verify/<serial>")
@public
@limiter.limit(VERIFY_LIMIT)
def verify_certificate(serial: str):
    result = verify_serial(serial)
    response = Response(render_template("completion/verify.html", result=result))
    response.headers["X-Robots-Tag"] = "noindex, nofollow"
    response.headers["Cache-Control"] = "no-store"
    return response
