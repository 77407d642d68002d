"""年間研修計画 pages: plans and allocations (platform admin), the demand survey (training
offices, for their own municipality)."""

from __future__ import annotations

import unicodedata
from typing import Any
from urllib.parse import quote

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN
from lms.common.access import municipality_scope, role_required
from lms.common.database import begin_write, run_in_transaction
from lms.common.errors import DomainError, NotFound
from lms.common.forms import ActionForm, Form
from lms.common.timeutil import fiscal_year_label, to_tokyo, tokyo_to_utc, utcnow
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.planning import services
from lms.planning.forms import AdjustForm, PlanForm, PublishForm
from lms.planning.models import PLAN_DRAFT, PRIORITIES, TrainingPlan
from lms.planning.sheets import SheetErrors, read_survey_workbook, survey_workbook

bp = Blueprint("planning", __name__, url_prefix="/plans")


def _plan(plan_id: int) -> TrainingPlan:
    try:
        return services.visible_plan_or_404(current_user, plan_id)
    except NotFound:
        abort(404)


@bp.route("/", methods=["GET", "POST"])
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def index():
    """The plans: a platform admin creates them; a training office sees the published ones."""
    admin = current_user.has_role(PLATFORM_ADMIN)
    if request.method == "POST" and not admin:
        abort(403)
    form = PlanForm() if admin else None
    if form is not None and form.validate_on_submit():
        try:
            assert form.fiscal_year.data is not None and form.guaranteed_minimum.data is not None
            plan = services.create_plan(current_user, form.fiscal_year.data,
                                        guaranteed_minimum=form.guaranteed_minimum.data, note=form.note.data or "")
        except DomainError as exc:
            db.session.rollback()
            form.fiscal_year.errors = [*form.fiscal_year.errors, exc.message]
        else:
            db.session.commit()
            flash(_("%(year)s の計画を作成しました。", year=fiscal_year_label(plan.fiscal_year)), "success")
            return redirect(url_for("planning.plan", plan_id=plan.id))
    query = select(TrainingPlan).order_by(TrainingPlan.fiscal_year.desc())
    if not admin:
        query = query.where(TrainingPlan.status != PLAN_DRAFT)
    plans = db.session.scalars(query).all()
    status = 400 if form is not None and form.errors else 200
    return render_template("planning/index.html", plans=plans, form=form, admin=admin), status


@bp.route("/<int:plan_id>")
@role_required(PLATFORM_ADMIN)
def plan(plan_id: int):
    """A plan's sessions with the survey's totals against capacity, who has answered, and
    the allocation."""
    plan = _plan(plan_id)
    per_session, per_municipality = services.survey_totals(plan)
    allocated = {row.session_id for row in services.allocations_of(plan)}
    publish_form = PublishForm()
    return render_template("planning/plan.html", plan=plan, per_session=per_session,
                           per_municipality=per_municipality, allocated=allocated, publish_form=publish_form,
                           action_form=ActionForm(), survey_open=services.survey_open(plan))


@bp.post("/<int:plan_id>/publish")
@role_required(PLATFORM_ADMIN)
def publish(plan_id: int):
    plan = _plan(plan_id)
    form = PublishForm()
    if form.validate_on_submit():
        assert form.survey_deadline.data is not None
        try:
            begin_write()
            plan = db.session.get_one(TrainingPlan, plan_id)
            services.publish_plan(current_user, plan, tokyo_to_utc(form.survey_deadline.data))
        except DomainError as exc:
            db.session.rollback()
            form.survey_deadline.errors = [*form.survey_deadline.errors, exc.message]
        else:
            db.session.commit()
            flash(_("計画を公開しました。各自治体の研修担当が予定調査に回答できます。"), "success")
            return redirect(url_for("planning.plan", plan_id=plan_id))
    per_session, per_municipality = services.survey_totals(plan)
    allocated = {row.session_id for row in services.allocations_of(plan)}
    return render_template("planning/plan.html", plan=plan, per_session=per_session,
                           per_municipality=per_municipality, allocated=allocated, publish_form=form,
                           action_form=ActionForm(), survey_open=services.survey_open(plan)), 400


@bp.post("/<int:plan_id>/allocate")
@role_required(PLATFORM_ADMIN)
def allocate(plan_id: int):
    _plan(plan_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        begin_write()
        plan = db.session.get_one(TrainingPlan, plan_id)
        count = services.run_allocation(current_user, plan)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(_("%(n)d 回分の割当を計算しました。内容を確かめてから、回ごとに割当人数として公開してください。", n=count),
              "success")
    return redirect(url_for("planning.plan", plan_id=plan_id))


def _session_page(plan: TrainingPlan, session_id: int, adjust_forms: dict | None = None, status: int = 200):
    session = next((s for s in services.plan_sessions(plan) if s.id == session_id), None)
    if session is None:
        abort(404)
    rows = services.allocations_of(plan, session_id=session_id)
    forms = adjust_forms or {}
    for row in rows:
        if row.id not in forms:
            forms[row.id] = AdjustForm(prefix=f"a{row.id}", formdata=None, seats=row.final_seats,
                                       reason=row.adjust_reason)
    total = sum(row.final_seats for row in rows)
    return render_template("planning/session.html", plan=plan, session=session, rows=rows, forms=forms,
                           total=total, action_form=ActionForm()), status


@bp.get("/<int:plan_id>/sessions/<int:session_id>")
@role_required(PLATFORM_ADMIN)
def session_allocation(plan_id: int, session_id: int):
    """One session's allocation, explained per municipality, with adjustments."""
    return _session_page(_plan(plan_id), session_id)


@bp.post("/<int:plan_id>/allocations/<int:allocation_id>/adjust")
@role_required(PLATFORM_ADMIN)
def adjust(plan_id: int, allocation_id: int):
    plan = _plan(plan_id)
    row = next((r for r in services.allocations_of(plan) if r.id == allocation_id), None)
    if row is None:
        abort(404)
    session_id = row.session_id
    form = AdjustForm(prefix=f"a{allocation_id}")
    if form.validate_on_submit():
        assert form.seats.data is not None
        try:
            begin_write()
            plan = db.session.get_one(TrainingPlan, plan_id)
            services.adjust_allocation(current_user, plan, allocation_id, form.seats.data, form.reason.data or "")
        except DomainError as exc:
            db.session.rollback()
            form.seats.errors = [*form.seats.errors, exc.message]
        else:
            db.session.commit()
            flash(_("%(name)s の割当を %(n)d 人にしました。", name=row.municipality.name, n=form.seats.data), "success")
            return redirect(url_for("planning.session_allocation", plan_id=plan_id, session_id=session_id))
    plan = _plan(plan_id)
    return _session_page(plan, session_id, {allocation_id: form}, 400)


@bp.post("/<int:plan_id>/sessions/<int:session_id>/publish")
@role_required(PLATFORM_ADMIN)
def publish_allocation(plan_id: int, session_id: int):
    plan = _plan(plan_id)
    if not any(s.id == session_id for s in services.plan_sessions(plan)):
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        run_in_transaction(services.publish_allocation, current_user, plan, session_id)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(_("割当を研修回の割当人数として公開しました。"), "success")
    return redirect(url_for("planning.session_allocation", plan_id=plan_id, session_id=session_id))


# ---------------------------------------------------------------- 予定調査 (training offices)


def _whole_number(raw: str) -> int | None:
    text = unicodedata.normalize("NFKC", raw or "").strip().replace(",", "")
    if text == "":
        return 0
    return int(text) if text.isdigit() else None


@bp.route("/<int:plan_id>/survey", methods=["GET", "POST"])
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def survey(plan_id: int):
    """One municipality's answers: its own for a training office; any for a platform admin
    (``?m=``; without it, back to the plan, which lists the municipalities)."""
    plan = _plan(plan_id)
    municipality = _survey_municipality()
    if municipality is None:
        return redirect(url_for("planning.plan", plan_id=plan_id))
    return _survey_page(plan, municipality, submitted=request.method == "POST")


def _survey_municipality() -> Municipality | None:
    """The municipality whose answers are worked on: a training office's own; a platform
    admin's ``?m=`` (None without it)."""
    scope = municipality_scope(current_user, request.values.get("m"),
                               exists=lambda i: db.session.get(Municipality, i) is not None)
    return db.session.get_one(Municipality, scope) if scope is not None else None


def _survey_args(municipality: Municipality) -> dict[str, Any]:
    return {"m": municipality.id} if current_user.has_role(PLATFORM_ADMIN) else {}


def _survey_page(plan: TrainingPlan, municipality: Municipality, sheet_errors: list[str] | None = None,
                 *, submitted: bool = False):
    """The survey form; ``submitted``: the form's own POST, to check and store."""
    plan_id = plan.id
    sessions = services.plan_sessions(plan)
    existing = services.demands_of(plan, municipality.id)
    values = {s.id: {"requested": str(existing[s.id].requested) if s.id in existing else "",
                     "priority": existing[s.id].priority if s.id in existing else 3,
                     "comment": existing[s.id].comment if s.id in existing else ""} for s in sessions}
    errors: dict[int, str] = {}
    form = Form()
    if submitted:
        if not form.validate_on_submit():
            abort(400)
        answers: dict[int, services.Answer] = {}
        for s in sessions:
            raw = request.form.get(f"requested-{s.id}", "")
            priority_raw = request.form.get(f"priority-{s.id}", "3")
            comment = request.form.get(f"comment-{s.id}", "")
            values[s.id] = {"requested": raw, "priority": priority_raw, "comment": comment}
            requested = _whole_number(raw)
            priority = _whole_number(priority_raw)
            if requested is None or requested > 9999:
                errors[s.id] = _("希望人数は0〜9999の整数で入力してください。")
            elif priority not in PRIORITIES:
                errors[s.id] = _("優先度は1〜5で選んでください。")
            elif len(comment) > 500:
                errors[s.id] = _("コメントは500文字以内で入力してください。")
            else:
                answers[s.id] = services.Answer(requested, priority, comment)
        if not errors:
            try:
                begin_write()
                plan = db.session.get_one(TrainingPlan, plan_id)
                changed = services.answer_survey(current_user, plan, municipality.id, answers)
            except DomainError as exc:
                db.session.rollback()
                flash(exc.message, "error")
            else:
                db.session.commit()
                flash(_("%(name)s の予定調査の回答を保存しました（変更 %(n)d 件）。", name=municipality.name, n=changed),
                      "success")
                return redirect(url_for("planning.survey", plan_id=plan_id, **_survey_args(municipality)))
    allocations = {row.session_id: row for row in services.allocations_of(plan, municipality_id=municipality.id)
                   if row.published_at is not None}
    status = 400 if errors or sheet_errors else 200
    return render_template("planning/survey.html", plan=plan, municipality=municipality, sessions=sessions,
                           values=values, errors=errors, form=form, open=services.survey_open(plan),
                           allocations=allocations, priorities=PRIORITIES, sheet_errors=sheet_errors or [],
                           args=_survey_args(municipality)), status


@bp.get("/<int:plan_id>/survey.xlsx")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def survey_sheet(plan_id: int):
    """The municipality's survey as Excel, its current answers filled in."""
    plan = _plan(plan_id)
    municipality = _survey_municipality()
    if municipality is None:
        return redirect(url_for("planning.plan", plan_id=plan_id))
    filename = f"予定調査_{plan.fiscal_year}_{municipality.code}_{to_tokyo(utcnow()):%Y%m%d}.xlsx"
    response = Response(survey_workbook(plan, municipality),
                        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response.headers["Content-Disposition"] = f"attachment; filename=\"survey.xlsx\"; filename*=UTF-8''{quote(filename)}"
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.post("/<int:plan_id>/survey/upload")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def survey_upload(plan_id: int):
    """The filled-in sheet back: every cell checked first; one bad cell stores nothing."""
    plan = _plan(plan_id)
    municipality = _survey_municipality()
    if municipality is None:
        return redirect(url_for("planning.plan", plan_id=plan_id))
    if not Form().validate_on_submit():
        abort(400)
    upload = request.files.get("sheet")
    data = upload.read() if upload is not None else b""
    try:
        answers = read_survey_workbook(plan, municipality, data)
        begin_write()
        plan = db.session.get_one(TrainingPlan, plan_id)
        changed = services.answer_survey(current_user, plan, municipality.id, answers)
    except SheetErrors as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _survey_page(plan, municipality, exc.errors)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _survey_page(plan, municipality, [exc.message])
    db.session.commit()
    flash(_("Excel から %(name)s の予定調査の回答を読み込みました（%(rows)d 行、変更 %(n)d 件）。",
            name=municipality.name, rows=len(answers), n=changed), "success")
    return redirect(url_for("planning.survey", plan_id=plan_id, **_survey_args(municipality)))
