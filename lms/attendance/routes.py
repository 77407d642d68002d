"""Attendance pages: roll call, QR check-in, manual matching and correction (trainer), check-in (learner)."""

from __future__ import annotations

import re

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user, login_required
from markupsafe import Markup

from lms.attendance import report_upload as report_upload_service
from lms.attendance import series, services, sheets
from lms.attendance.forms import ActionForm, MatchForm, ReportUploadForm, RollCallForm, staff_choices
from lms.attendance.models import AttendanceRecord
from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN
from lms.common.access import municipality_scope, refuse_as_missing
from lms.common.database import run_in_transaction
from lms.common.errors import Conflict, DomainError, InvalidInput, NotAllowed, NotFound
from lms.common.ids import parse_id
from lms.common.timeutil import as_utc, utcnow
from lms.courses.models import CANCELLED
from lms.extensions import db
from lms.municipalities.models import Municipality

bp = Blueprint("attendance", __name__, url_prefix="/attendance")
# 連続講座: each part attended or missed, on マイページ and the training office's session page.
bp.add_app_template_global(series.series_progress, "series_progress")
bp.add_app_template_global(series.state_labels, "series_state_labels")
# マイページ's history: what a confirmed place in an ended session came to (出席, 欠席, …).
bp.add_app_template_global(services.learner_outcomes, "attendance_outcomes")


def _managed(session_id: int):
    try:
        return services.get_managed_session(session_id, current_user)
    except NotFound:
        abort(404)
    except NotAllowed:  # another trainer's session: answered as if there were none
        refuse_as_missing(current_user, "training_session", session_id)


def _back(session_id: int):
    return redirect(url_for("teams.session_detail", session_id=session_id) + "#attendance")


def _enrollee_choices(session, with_unmatch: bool = False):
    return staff_choices(services.attendance_rows(session), with_unmatch)


@bp.post("/records/<int:record_id>/match")
@login_required
def match_record(record_id: int):
    record = db.get_or_404(AttendanceRecord, record_id)
    session = _managed(record.session_id)
    form = MatchForm()
    form.staff_member_id.choices = _enrollee_choices(session, with_unmatch=True)
    if not form.validate_on_submit():
        flash(_("照合する受講者を選んでください。"), "error")
        return _back(session.id)
    try:
        services.match_record(record.id, form.staff_member_id.data or None, current_user)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _back(session.id)
    flash(_("出席記録を照合しました。"), "success")
    return _back(session.id)


@bp.route("/sessions/<int:session_id>/roll-call", methods=["GET", "POST"])
@login_required
def roll_call(session_id: int):
    session = _managed(session_id)
    form = RollCallForm()
    if form.validate_on_submit():
        try:
            rows = services.attendance_rows(session)
            if request.form.get("all") == "1":  # 全員出席にする
                present = {row["staff"].id for row in rows}
            else:
                ids = [parse_id(value) for value in request.form.getlist("present")]
                if None in ids:  # a value that is no id: never taken as "absent"
                    raise InvalidInput(_("受講確定者でない職員が含まれています。"))
                present = {staff_id for staff_id in ids if staff_id is not None}
            changed = run_in_transaction(services.record_roll_call, session, present, current_user,
                                         reason=form.reason.data or "")
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            flash(_("出欠を記録しました（%(count)s 件変更）。", count=len(changed)), "success")
            return redirect(url_for("attendance.roll_call", session_id=session.id))
    opens = services.roll_call_opens_at(session)
    return render_template("attendance/roll_call.html", session=session, form=form,
                           rows=services.attendance_rows(session), not_started=opens > utcnow(), opens=opens,
                           needs_reason=services.roll_call_needs_reason(session))


# ---------------------------------------------------------------- Teams attendance report file


def _report_back(session_id: int):
    return redirect(url_for("attendance.report_upload", session_id=session_id))


@bp.route("/sessions/<int:session_id>/report", methods=["GET", "POST"])
@login_required
def report_upload(session_id: int):
    """Upload the attendance report file Teams lets the organiser download (no Graph needed)."""
    session = _managed(session_id)
    form = ReportUploadForm()
    if form.validate_on_submit():
        upload = form.file.data
        limit = current_app.config["LMS_ATTENDANCE_REPORT_MAX_BYTES"]
        try:
            data = upload.stream.read(limit + 1)  # one byte more than allowed tells "too large"
        finally:
            upload.close()
        try:
            kept = report_upload_service.upload_report(session, data, upload.filename or "", current_user)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            form.file.errors = [exc.message]
        else:
            return redirect(url_for("attendance.report_preview", session_id=session.id, report_id=kept.id))
    return render_template("attendance/report_upload.html", session=session, form=form,
                           not_started=session.starts_at is not None and as_utc(session.starts_at) > utcnow(),
                           max_mb=current_app.config["LMS_ATTENDANCE_REPORT_MAX_BYTES"] // (1024 * 1024))


@bp.route("/sessions/<int:session_id>/report/<int:report_id>", methods=["GET", "POST"])
@login_required
def report_preview(session_id: int, report_id: int):
    """The file's rows with their matches; the POST confirms (only choices for unmatched rows)."""
    session = _managed(session_id)
    try:
        upload = report_upload_service.get_upload(session, report_id, current_user)
    except NotAllowed:  # another user's upload, or another session's: as if there were none
        refuse_as_missing(current_user, "attendance_upload", report_id)
    except Conflict as exc:  # gone (confirmed or expired): the trainer's own, most likely
        flash(exc.message, "error")
        return _report_back(session.id)
    form = ActionForm()
    if request.method == "POST" and form.validate_on_submit():
        try:
            choices = _unmatched_choices(upload.rows)
            result = run_in_transaction(report_upload_service.confirm_upload, session, upload.id, choices, current_user)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(url_for("attendance.report_preview", session_id=session.id, report_id=report_id))
        flash(ngettext("出席者レポートから %(count)s 名の出欠を記録しました（取り込まなかった行: %(ignored)s）。",
                       "出席者レポートから %(count)s 名の出欠を記録しました（取り込まなかった行: %(ignored)s）。",
                       result["people"], count=result["people"], ignored=result["ignored"]), "success")
        return _back(session.id)
    return render_template("attendance/report_preview.html", session=session, upload=upload, form=form,
                           rows=report_upload_service.preview(session, upload),
                           choices=_enrollee_choices(session))


def _unmatched_choices(rows: list[dict]) -> dict[int, int | None]:
    """The trainer's choice for each unmatched row ("row-<n>": a staff id, or 0 to leave it out)."""
    choices: dict[int, int | None] = {}
    for index, row in enumerate(rows):
        if row["staff_member_id"] is None:
            value = (request.form.get(f"row-{index}") or "").strip()
            chosen = parse_id(value) if value not in ("", "0") else None
            if value not in ("", "0") and chosen is None:
                raise InvalidInput(_("この研修回の受講確定者から選んでください。"))
            choices[index] = chosen
    return choices


def _qr_svg(data: str, border: int = 2) -> Markup:
    import qrcode.image.svg  # (on the first QR page: 4 MB every process would carry, docs/DEVELOPING.md)

    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=12, border=border)
    svg = image.to_string(encoding="unicode")
    svg = re.sub(r'width="[^"]+" height="[^"]+"', 'width="320" height="320"', svg, count=1)
    svg = svg.replace("<svg ", '<svg role="img" aria-label="{}" class="qr-code" '.format(_("受付用 QR コード")), 1)
    return Markup(svg)  # noqa: S704 - generated by qrcode from our own URL, no user input


def _onsite(session_id: int):
    """(the managed session, None), or (it, a redirect back) when it is not held on site:
    QR check-in is for people in the room, of a session that is held (not called off)."""
    session = _managed(session_id)
    if session.delivery not in services.ONSITE_DELIVERIES:
        flash(_("会場で実施する研修回ではありません。"), "error")
        return session, _back(session.id)
    if session.status == CANCELLED:
        flash(_("中止された研修回です。"), "error")
        return session, _back(session.id)
    return session, None


@bp.get("/sessions/<int:session_id>/qr")
@login_required
def qr(session_id: int):
    session, refused = _onsite(session_id)
    if refused is not None:
        return refused
    if not session.checkin_token:
        services.ensure_checkin_secret(session)
        db.session.commit()
    code = services.checkin_code(session)
    url = url_for("attendance.check_in", session_id=session.id, code=code, _external=True)
    opens, closes = services.checkin_window(session)
    return render_template("attendance/qr.html", session=session, svg=_qr_svg(url), url=url,
                           form=ActionForm(), is_open=opens <= utcnow() <= closes, opens=opens, closes=closes)


@bp.get("/sessions/<int:session_id>/qr/poster")
@login_required
def qr_poster(session_id: int):
    """The check-in QR code to print and put up at the entrance (one A4 page)."""
    session, refused = _onsite(session_id)
    if refused is not None:
        return refused
    code = services.issue_poster_code(session, current_user)
    db.session.commit()
    url = url_for("attendance.check_in", session_id=session.id, code=code, _external=True)
    opens, closes = services.checkin_window(session)
    # A quiet zone of four modules, as the QR standard asks of a printed code.
    return render_template("attendance/qr_poster.html", session=session, svg=_qr_svg(url, border=4), url=url,
                           opens=opens, closes=closes)


@bp.route("/sessions/<int:session_id>/qr/rotate", methods=["GET", "POST"])
@login_required
def rotate_qr(session_id: int):
    session = _managed(session_id)
    if request.method == "GET":
        return render_template(
            "confirm.html", heading=_("QR コードを作り直す"),
            lead=_("QR コードを作り直すと、表示中の QR コードも、印刷した受付ポスターの QR コードも使えなくなります。"),
            facts=[(_("研修回"), f"{session.course.title} {session.title}")],
            action_url=url_for("attendance.rotate_qr", session_id=session.id), button=_("作り直す"),
            back_url=url_for("attendance.qr", session_id=session.id))
    if ActionForm().validate_on_submit():
        services.rotate_checkin_secret(session, current_user)
        db.session.commit()
        flash(_("QR コードを作り直しました。以前の QR コードは使えません。"), "success")
    return redirect(url_for("attendance.qr", session_id=session.id))


@bp.get("/check-in/<int:session_id>")
@login_required
def check_in(session_id: int):
    """The URL in the QR code: opening it (signed in) checks the learner in."""
    try:
        row = services.check_in(session_id, request.args.get("code", ""), current_user)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return render_template("attendance/check_in.html", ok=False, message=exc.message), (
            404 if isinstance(exc, NotFound) else 403 if isinstance(exc, NotAllowed) else 409)
    return render_template("attendance/check_in.html", ok=True, row=row, session=row.session)


# ---------------------------------------------------------------- printed lists


def _sheet_access(session_id: int) -> sheets.SheetAccess:
    requested = None
    if current_user.has_role(PLATFORM_ADMIN, MUNICIPAL_ADMIN):
        # ?m=: a platform admin's choice; a municipal admin asking for another municipality: 403.
        requested = municipality_scope(current_user, request.args.get("m"),
                                       exists=lambda m: db.session.get(Municipality, m) is not None)
    try:
        return sheets.sheet_access(session_id, current_user, requested)
    except NotFound:
        abort(404)
    except NotAllowed:  # not the user's session: answered as if there were none
        refuse_as_missing(current_user, "training_session", session_id)


def _sheet_context(access: sheets.SheetAccess) -> dict:
    session = access.session
    if services.can_manage_session(current_user, session):
        back = url_for("teams.session_detail", session_id=session.id)
    else:
        back = url_for("enrollment.session_page", session_id=session.id)
    m = {"m": access.municipality_id} if access.municipality_id and current_user.has_role(PLATFORM_ADMIN) else {}
    return {"session": session, "back_url": back, "m": m, "printed_at": utcnow(),
            "municipality": db.session.get(Municipality, access.municipality_id) if access.municipality_id else None,
            "onsite": session.delivery in services.ONSITE_DELIVERIES}


@bp.get("/sessions/<int:session_id>/sign-in-sheet")
@login_required
def sign_in_sheet(session_id: int):
    """出席簿: confirmed participants with an empty 署名 column, to print for the reception."""
    access = _sheet_access(session_id)
    context = _sheet_context(access)
    if not context["onsite"]:
        flash(_("会場で実施する研修回ではないため、出席簿はありません。受講者名簿をご利用ください。"), "error")
        return redirect(url_for("attendance.participants", session_id=session_id, **context["m"]))
    rows = sheets.sign_in_sheet_rows(access)
    page = render_template("attendance/sign_in_sheet.html", rows=rows, **context)
    sheets.record_printed(current_user, sheets.SIGN_IN_SHEET, access, len(rows))  # once the page is made
    return page


@bp.get("/sessions/<int:session_id>/participants")
@login_required
def participants(session_id: int):
    """受講者名簿: everyone with an active application and its 申込状況."""
    access = _sheet_access(session_id)
    context = _sheet_context(access)
    rows = sheets.participant_rows(access)
    page = render_template("attendance/participants.html", rows=rows, counts=sheets.status_counts(rows), **context)
    sheets.record_printed(current_user, sheets.PARTICIPANTS, access, len(rows))  # once the page is made
    return page
