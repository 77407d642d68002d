"""Teams pages: the trainer's session page, the admins' status page, the Teams app package
(``/teams/app``), the Graph webhook, and the roster's sync from Microsoft Graph (its button is
on the roster page: ``/roster/sync``)."""

from __future__ import annotations

import base64

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select

from lms.attendance import services as attendance_services
from lms.attendance.forms import ActionForm, CorrectionForm, MatchForm, staff_choices
from lms.audit.services import record_action
from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN
from lms.common.access import refuse_as_missing, role_required
from lms.common.database import begin_write, run_in_transaction
from lms.common.errors import DomainError, NotAllowed, NotFound
from lms.common.forms import put_error
from lms.common.i18n import brand_name
from lms.common.ids import parse_id
from lms.common.pagination import beyond_last_page, requested_page
from lms.common.public import public
from lms.courses.models import TrainingSession
from lms.extensions import csrf, db, limiter
from lms.roster.pages import back_to, scoped_municipality
from lms.teams import app_identity, app_package, roster_sync, services
from lms.teams import operations as ops
from lms.teams.failures import failure_text
from lms.teams.graph import graph_configured
from lms.teams.models import GraphOperation
from lms.teams.subscriptions import authentic
from lms.teams.tasks import handle_graph_notifications

# No url_prefix: the roster sync keeps its place beside the roster (/roster/sync).
bp = Blueprint("teams", __name__)


bp.add_app_template_global(failure_text, "graph_failure")

# The session page's import buttons: the address's name of each, and its operation.
IMPORT_KINDS = {"attendance": ops.IMPORT_ATTENDANCE, "recordings": ops.IMPORT_RECORDING}


def _managed(session_id: int) -> TrainingSession:
    try:
        return attendance_services.get_managed_session(session_id, current_user)
    except NotFound:
        abort(404)
    except NotAllowed:  # another trainer's session: answered as if there were none
        refuse_as_missing(current_user, "training_session", session_id)


@bp.route("/teams/sessions/<int:session_id>", methods=["GET", "POST"])
@login_required
def session_detail(session_id: int):
    """The trainer's page of a session: its Teams meeting, attendance and imports. A POST is
    the page's manual attendance correction: refused, the page comes back with the errors
    beside the fields and what was typed kept."""
    session = _managed(session_id)
    view = services.session_attendance_view(session)
    match_form = MatchForm()
    match_form.staff_member_id.choices = staff_choices(view["rows"], with_unmatch=True)
    correction_form = CorrectionForm()
    correction_form.staff_member_id.choices = staff_choices(view["rows"])
    status = 200
    if request.method == "POST":
        if correction_form.validate_on_submit():
            try:
                # Run again if two writers of one course's summaries deadlocked (PostgreSQL breaks it).
                run_in_transaction(attendance_services.correct_attendance, session, correction_form.staff_member_id.data,
                                   correction_form.attended.data == "1", correction_form.reason.data, current_user,
                                   attended_pct=correction_form.attended_pct.data)
            except DomainError as exc:
                db.session.rollback()
                put_error(correction_form, exc)
            else:
                flash(_("出欠を修正しました。"), "success")
                return redirect(url_for("teams.session_detail", session_id=session.id))
        status = 400
        view = services.session_attendance_view(session)
    return render_template(
        "teams/session.html", session=session, view=view, match_form=match_form,
        correction_form=correction_form, action_form=ActionForm(), graph_enabled=graph_configured(),
        online=session.delivery in services.ONLINE_DELIVERIES, onsite=session.delivery in attendance_services.ONSITE_DELIVERIES,
        user_label=services.user_label, not_recordable=attendance_services.recordable_refusal(session),
        import_refusals={kind: services.import_refusal(session, op_kind) for kind, op_kind in IMPORT_KINDS.items()},
    ), status


@bp.post("/teams/sessions/<int:session_id>/sync")
@login_required
def sync_meeting(session_id: int):
    session = _managed(session_id)
    if ActionForm().validate_on_submit():
        kind = ops.UPDATE_EVENT if session.graph_event_id else ops.CREATE_EVENT
        op = services.queue_meeting_sync(session, kind)
        if op is None:
            flash(_("Microsoft Graph 連携が設定されていないか、Teams で実施しない研修回です。"), "error")
        else:
            record_action(current_user, "teams.sync_meeting", "training_session", session.id, None, operation_id=op.id)
            db.session.commit()
            flash(_("Teams 会議の更新を受け付けました。"), "success")
    return redirect(url_for("teams.session_detail", session_id=session.id))


@bp.post("/teams/sessions/<int:session_id>/import/<kind>")
@login_required
def import_now(session_id: int, kind: str):
    session = _managed(session_id)
    if kind not in IMPORT_KINDS:
        abort(404)
    if ActionForm().validate_on_submit():
        try:
            services.queue_import(session, IMPORT_KINDS[kind], actor=current_user)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            flash(_("取り込みを受け付けました。結果はこのページの処理履歴に表示されます。"), "success")
    return redirect(url_for("teams.session_detail", session_id=session.id))


@bp.get("/teams/status")
@role_required(PLATFORM_ADMIN)
def status():
    status_filter = request.args.get("status", "")
    session_filter = parse_id(request.args.get("session"))
    query = select(GraphOperation).order_by(GraphOperation.id.desc())
    if status_filter in (ops.QUEUED, ops.RUNNING, ops.DONE, ops.FAILED):
        query = query.where(GraphOperation.status == status_filter)
    if session_filter:
        query = query.where(GraphOperation.session_id == session_filter)
    page = db.paginate(query, page=requested_page(), per_page=50, error_out=False)
    if (last := beyond_last_page(page)) is not None:
        return last
    counts = dict(db.session.execute(select(GraphOperation.status, func.count()).group_by(GraphOperation.status)).all())
    attention = services.sessions_needing_attention()
    session_ids = {op.session_id for op in page.items if op.session_id} | {row["session_id"] for row in attention}
    sessions = {s.id: s for s in db.session.scalars(select(TrainingSession).where(TrainingSession.id.in_(session_ids)))}
    return render_template("teams/status.html", page=page, sessions=sessions, counts=counts, attention=attention,
                           status_filter=status_filter, session_filter=session_filter, form=ActionForm(),
                           graph_enabled=graph_configured(), base_url=current_app.config.get("GRAPH_BASE_URL"))


@bp.post("/teams/operations/<int:operation_id>/retry")
@role_required(PLATFORM_ADMIN)
def retry_operation(operation_id: int):
    if ActionForm().validate_on_submit():
        try:
            services.retry_operation(operation_id, current_user)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            flash(_("処理を再実行しました。"), "success")
    back_to_session = parse_id(request.form.get("back_to_session"))
    if back_to_session is not None:
        return redirect(url_for("teams.session_detail", session_id=back_to_session))
    return redirect(url_for("teams.status"))


@bp.get("/teams/app")
@role_required(PLATFORM_ADMIN)
def app_page():
    """What the Teams app package holds and what a tenant admin does with it; its download."""
    try:
        manifest = app_package.manifest()
    except app_package.PackageUnavailable as exc:
        return render_template("teams/app.html", unavailable=exc.message, manifest=None)
    icons = {name: "data:image/png;base64," + base64.b64encode(data).decode("ascii") for name, data in
             ((app_package.COLOR_ICON, app_package.color_icon(manifest["accentColor"])),
              (app_package.OUTLINE_ICON, app_package.outline_icon()))}
    return render_template("teams/app.html", unavailable=None, manifest=manifest, english=app_package.localization(),
                           icons=icons, package_name=app_package.package_name())


@bp.get("/teams/app/package.zip")
@role_required(PLATFORM_ADMIN)
def app_package_zip():
    try:
        data = app_package.package()
    except app_package.PackageUnavailable:
        return redirect(url_for("teams.app_page"))  # which says why
    begin_write()
    record_action(current_user, "teams.app_package_downloaded", "teams_app", app_identity.app_id(), None,
                  version=app_package.VERSION, sha256=app_package.digest(data))
    db.session.commit()
    return Response(data, mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{app_package.package_name()}"', "Cache-Control": "private, no-store"})


@bp.post("/teams/graph/notifications")
@public
@csrf.exempt
@limiter.limit("600/minute")
def graph_notifications():
    """Microsoft Graph change notifications: answer the handshake at once, work in the background."""
    token = request.args.get("validationToken")
    if token is not None:
        return token[:1024], 200, {"Content-Type": "text/plain; charset=utf-8"}
    payload = request.get_json(silent=True) or {}
    items = payload.get("value") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        return "", 400
    accepted = authentic(items)
    if accepted:
        handle_graph_notifications(accepted)
    # 202 even when nothing matched: an attacker learns nothing about our subscriptions.
    return "", 202


# ---------------------------------------------------------------- the roster's sync from Graph


@bp.post("/roster/sync")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def sync_roster():
    municipality = scoped_municipality()
    if municipality is None:
        return redirect(url_for("roster.index"))  # where a platform admin chooses the municipality
    municipality_id = municipality.id
    back = back_to("roster.index", municipality_id)
    if not graph_configured():
        flash(_("Microsoft Graph が設定されていないため、同期できません。"), "error")
        return back
    if not roster_sync.consented_tenants(municipality_id):
        flash(_("この区市町村のテナントでは、%(brand)s への管理者の同意がまだないため同期できません。", brand=brand_name()), "error")
        return back
    try:
        reports = roster_sync.sync_roster_from_tenants(municipality_id, current_user)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    except Exception:  # Graph unreachable, a failed page, consent withdrawn: nothing was changed
        db.session.rollback()
        current_app.logger.exception("roster sync from Graph failed")
        flash(_("Microsoft Graph から職員の一覧を取得できなかったため、名簿は変更していません。テナントの同意（管理者の承認）を確認してください。"), "error")
    else:
        flash(_("Microsoft Graph と同期しました：追加 %(a)s 件、更新 %(u)s 件、異動 %(t)s 件、変更なし %(n)s 件、対象外 %(s)s 件。",
                a=sum(r.added for r in reports), u=sum(r.updated for r in reports),
                t=sum(r.transferred for r in reports), n=sum(r.unchanged for r in reports),
                s=sum(len(r.skipped) for r in reports)), "success")
        for line in [line for r in reports for line in r.skipped][:20]:
            flash(line, "warning")
    return back
