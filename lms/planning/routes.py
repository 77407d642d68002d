"""年間研修計画 pages: plans and allocations (platform admin), the demand survey (training
offices, for their own municipality)."""

from __future__ import annotations

import unicodedata
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext
from flask_login import current_user
from sqlalchemy import func, select

from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN
from lms.common import once
from lms.common.access import municipality_scope, require_own_object, role_required
from lms.common.database import begin_write, run_in_transaction
from lms.common.errors import DomainError, NotFound
from lms.common.forms import ActionForm, Form, one_line
from lms.common.ids import parse_id
from lms.common.timeutil import as_utc, fiscal_year_label, to_tokyo, tokyo_to_utc, utcnow
from lms.common.web import private_download
from lms.common.xlsx import XLSX_MIME
from lms.courses.models import SessionQuota
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.planning import fees, services
from lms.planning.forms import AdjustForm, ExemptionForm, PlanForm, PublishForm
from lms.planning.models import PLAN_DRAFT, PLAN_PUBLISHED, PRIORITIES, FeeStatement, TrainingPlan
from lms.planning.sheets import SheetErrors, fees_sheet, plan_workbook, read_survey_workbook, survey_workbook

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
                                        guaranteed_minimum=form.guaranteed_minimum.data, note=form.note.data or "",
                                        survey_unit=form.survey_unit.data)
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
    per_item, per_municipality = services.survey_totals(plan)
    allocated = {row.session_id for row in services.allocations_of(plan)}
    publish_form = PublishForm()
    return render_template("planning/plan.html", plan=plan, per_item=per_item,
                           per_municipality=per_municipality, allocated=allocated, publish_form=publish_form,
                           action_form=ActionForm(), survey_open=services.survey_open(plan),
                           exchanges=services.pending_exchanges(plan))


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
            was_published = plan.status == PLAN_PUBLISHED
            services.publish_plan(current_user, plan, tokyo_to_utc(form.survey_deadline.data))
        except DomainError as exc:
            db.session.rollback()
            form.survey_deadline.errors = [*form.survey_deadline.errors, exc.message]
        else:
            db.session.commit()
            if was_published:
                flash(_("回答期限を変更しました。各自治体の研修担当にお知らせします。"), "success")
            else:
                flash(_("計画を公開しました。各自治体の研修担当が予定調査に回答できます。"), "success")
            return redirect(url_for("planning.plan", plan_id=plan_id))
    per_item, per_municipality = services.survey_totals(plan)
    allocated = {row.session_id for row in services.allocations_of(plan)}
    return render_template("planning/plan.html", plan=plan, per_item=per_item,
                           per_municipality=per_municipality, allocated=allocated, publish_form=form,
                           action_form=ActionForm(), survey_open=services.survey_open(plan),
                           exchanges=services.pending_exchanges(plan)), 400


@bp.post("/<int:plan_id>/allocate")
@role_required(PLATFORM_ADMIN)
def allocate(plan_id: int):
    _plan(plan_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    course_id = parse_id(request.form.get("course_id"))
    if course_id is None and (request.form.get("course_id") or "").strip():
        abort(404)  # a course named, but no course id: never the whole plan instead
    try:
        begin_write()
        plan = db.session.get_one(TrainingPlan, plan_id)
        targets = None
        if course_id is not None:  # one course's sessions only
            targets = [s.id for s in services.plan_sessions(plan) if s.course_id == course_id]
            if not targets:
                abort(404)
        count = services.run_allocation(current_user, plan, targets)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(ngettext("%(n)d 回分の割当を計算しました。内容を確かめてから、回ごとに割当人数として公開してください。",
                       "%(n)d 回分の割当を計算しました。内容を確かめてから、回ごとに割当人数として公開してください。", count, n=count),
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


def _stored_answer(row) -> tuple[int, int, str]:
    """(requested, priority, comment) of a stored survey row; no row: nothing asked."""
    return (row.requested, row.priority, row.comment) if row is not None else (0, 3, "")


def _answer_field(answer: tuple[int, int, str]) -> str:
    return f"{answer[0]}|{answer[1]}|{answer[2]}"


def _posted_answer(value: str | None) -> tuple[int, int, str] | None:
    """The row as the page showed it (``_answer_field``); None when not sent or not readable
    (a sheet, a script: every row sent is stored, as before)."""
    parts = (value or "").split("|", 2)
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1]), parts[2]


def _whole_number(raw: str) -> int | None:
    text = unicodedata.normalize("NFKC", raw or "").strip().replace(",", "")
    if text == "":
        return 0
    # (ASCII digits only after NFKC: "𐩀" is a digit to isdigit() but no number to int())
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 9 else None


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
                 *, submitted: bool = False, exchange: dict[str, Any] | None = None):
    """The survey form; ``submitted``: the form's own POST, to check and store; ``exchange``:
    a refused seat offer or request, shown again as typed with its error (``request_exchange``)."""
    plan_id = plan.id
    sessions = services.plan_sessions(plan)
    items = services.survey_items(plan, sessions)
    existing = services.demands_of(plan, municipality.id)
    values = {i.id: {"requested": str(existing[i.id].requested) if i.id in existing else "",
                     "priority": existing[i.id].priority if i.id in existing else 3,
                     "comment": existing[i.id].comment if i.id in existing else ""} for i in items}
    # Each row as stored when the page is drawn: sent back with the form, it tells a row this
    # person left alone (kept as stored now, whoever saved it since) from one they changed.
    stored = {i.id: _stored_answer(existing.get(i.id)) for i in items}
    errors: dict[int, dict[str, str]] = {}  # {item id: {field: message}}: every error of a row, each on its field
    form = Form()
    if submitted:
        if not form.validate_on_submit():
            abort(400)
        answers: dict[int, services.Answer] = {}
        for i in items:
            if f"requested-{i.id}" not in request.form:
                continue  # not in what was sent: the row keeps its answer (never a silent 0)
            raw = request.form[f"requested-{i.id}"]
            priority_raw = request.form.get(f"priority-{i.id}", str(values[i.id]["priority"]))
            comment = one_line(request.form.get(f"comment-{i.id}", str(values[i.id]["comment"])))
            values[i.id] = {"requested": raw, "priority": priority_raw, "comment": comment}
            requested = _whole_number(raw)
            priority = _whole_number(priority_raw)
            row: dict[str, str] = {}
            if requested is None or requested > 9999:
                row["requested"] = _("希望人数は0〜9999の整数で入力してください。")
            if priority not in PRIORITIES:
                row["priority"] = _("優先度は1〜5で選んでください。")
            if len(comment) > 500:
                row["comment"] = _("コメントは500文字以内で入力してください。")
            if row:
                errors[i.id] = row
            else:
                assert requested is not None and priority is not None
                mine = (requested, priority, comment.strip())
                was = _posted_answer(request.form.get(f"was-{i.id}"))
                if was is not None and mine == was:
                    continue  # left as it was: what is stored stands (another person's newer answer too)
                if was is not None and stored[i.id] not in (was, mine):
                    errors[i.id] = {"requested": _(
                        "この行は、ページを開いた後にほかの担当者が変更しました（現在の希望人数 %(n)d 人）。"
                        "確かめてから、もう一度保存してください。", n=stored[i.id][0])}
                    continue
                answers[i.id] = services.Answer(requested, priority, comment)
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
    held = {q.session_id: q for q in db.session.scalars(select(SessionQuota).where(
        SessionQuota.municipality_id == municipality.id,
        SessionQuota.session_id.in_([s.id for s in sessions])))} if sessions else {}
    # Each item's seats for this municipality: held quotas (with their confirmed people) once
    # published, else the published allocation; summed over a course's sessions.
    seats: dict[int, tuple[int, int | None]] = {}
    for i in items:
        quotas = [held[s.id] for s in i.sessions if s.id in held]
        rows = [allocations[s.id] for s in i.sessions if s.id in allocations]
        if quotas:
            seats[i.id] = (sum(q.seats for q in quotas), sum(q.confirmed_count for q in quotas))
        elif rows:
            seats[i.id] = (sum(r.final_seats for r in rows), None)
    status = 400 if errors or sheet_errors or exchange else 200
    return render_template("planning/survey.html", plan=plan, municipality=municipality, sessions=sessions,
                           items=items, seats=seats,
                           values=values, errors=errors, form=form, open=services.survey_open(plan),
                           was={key: _answer_field(answer) for key, answer in stored.items()},
                           allocations=allocations, priorities=PRIORITIES, sheet_errors=sheet_errors or [],
                           held=held, action_form=ActionForm(), exchange=exchange,
                           exchanges=services.pending_exchanges(plan, municipality.id),
                           others=db.session.scalars(select(Municipality).where(Municipality.id != municipality.id)
                                                     .order_by(Municipality.code)).all(),
                           releasable=[s for s in sessions if s.id in held and held[s.id].seats > held[s.id].confirmed_count
                                       and as_utc(s.starts_at) > utcnow()],
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
    return private_download(survey_workbook(plan, municipality), filename, XLSX_MIME, fallback="survey.xlsx")


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
    if upload is None or not upload.filename:  # (no file chosen: the browser sends an empty part)
        flash(_("ファイルを選んでください。"), "error")
        return _survey_page(plan, municipality, [_("ファイルを選んでください。")])
    data = upload.read()
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


# ---------------------------------------------------------------- 研修負担金 (fees)


def _plan_courses(plan: TrainingPlan) -> list:
    seen: dict[int, object] = {}
    for session in services.plan_sessions(plan):
        seen.setdefault(session.course_id, session.course)
    return list(seen.values())


def _fees_page(plan: TrainingPlan, errors: dict[str, str] | None = None, exemption_form=None, status: int = 200):
    municipalities = db.session.scalars(select(Municipality).order_by(Municipality.code)).all()
    current = fees.totals(plan, [m.id for m in municipalities])
    billed = dict(db.session.execute(
        select(FeeStatement.municipality_id, func.sum(FeeStatement.total_yen))
        .where(FeeStatement.plan_id == plan.id).group_by(FeeStatement.municipality_id)).all())
    form = exemption_form or ExemptionForm()
    courses = _plan_courses(plan)
    form.municipality_id.choices = [(0, _("（すべての自治体）"))] + [(m.id, m.name) for m in municipalities]
    form.course_id.choices = [(0, _("（すべての研修）"))] + [(c.id, c.title) for c in courses]
    return render_template("planning/fees.html", plan=plan, courses=courses, fees=fees.fees_of(plan),
                           errors=errors or {}, values=request.form if errors else None,
                           exemptions=fees.exemptions_of(plan), exemption_form=form, municipalities=municipalities,
                           current=current, billed={k: int(v or 0) for k, v in billed.items()},
                           action_form=ActionForm()), status


@bp.route("/<int:plan_id>/fees", methods=["GET", "POST"])
@role_required(PLATFORM_ADMIN)
def fee_settings(plan_id: int):
    """Fees per course, the charging rules, exemptions, and each municipality's amount."""
    plan = _plan(plan_id)
    if request.method == "GET":
        return _fees_page(plan)
    if not Form().validate_on_submit():
        abort(400)
    values: dict[int, int] = {}
    errors: dict[str, str] = {}
    for course in _plan_courses(plan):
        if f"fee-{course.id}" not in request.form:
            continue  # not in what was sent: the fee stays (never a silent ¥0)
        raw = request.form[f"fee-{course.id}"]
        amount = _whole_number(raw)
        if amount is None or amount > fees.MAX_FEE_YEN:
            errors[f"fee-{course.id}"] = _("負担金は0〜10,000,000円の整数で入力してください。")
        else:
            values[course.id] = amount
    if errors:
        return _fees_page(plan, errors, status=400)
    try:
        begin_write()
        plan = db.session.get_one(TrainingPlan, plan_id)
        changed = fees.set_fees(current_user, plan, values,
                                charge_late_cancellation=request.form.get("charge_late_cancellation") == "1",
                                charge_no_show=request.form.get("charge_no_show") == "1")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return _fees_page(plan, {"form": exc.message}, status=400)
    db.session.commit()
    flash(_("負担金の設定を保存しました（変更 %(n)d 件）。発行済みの請求書は変わりません。", n=changed), "success")
    return redirect(url_for("planning.fee_settings", plan_id=plan_id))


@bp.post("/<int:plan_id>/fees/exemptions")
@role_required(PLATFORM_ADMIN)
def add_exemption(plan_id: int):
    plan = _plan(plan_id)
    form = ExemptionForm()
    municipalities = db.session.scalars(select(Municipality.id)).all()
    form.municipality_id.choices = [(0, "")] + [(m, "") for m in municipalities]
    form.course_id.choices = [(0, "")] + [(c.id, "") for c in _plan_courses(plan)]
    if form.validate_on_submit():
        assert form.percent.data is not None
        try:
            begin_write()
            if (again := once.repeated()) is not None:
                return again
            plan = db.session.get_one(TrainingPlan, plan_id)
            fees.add_exemption(current_user, plan, municipality_id=form.municipality_id.data or None,
                               course_id=form.course_id.data or None, percent=form.percent.data,
                               reason=form.reason.data or "")
            once.remember(url_for("planning.fee_settings", plan_id=plan_id))
        except DomainError as exc:
            db.session.rollback()
            form.percent.errors = [*form.percent.errors, exc.message]
        else:
            db.session.commit()
            flash(_("減免を登録しました。"), "success")
            return redirect(url_for("planning.fee_settings", plan_id=plan_id))
    return _fees_page(plan, exemption_form=form, status=400)


@bp.post("/<int:plan_id>/fees/<int:municipality_id>/issue")
@role_required(PLATFORM_ADMIN)
def issue_statement(plan_id: int, municipality_id: int):
    _plan(plan_id)
    municipality = db.get_or_404(Municipality, municipality_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        begin_write()
        plan = db.session.get_one(TrainingPlan, plan_id)
        statement = fees.issue_statement(current_user, plan, municipality.id)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("planning.fee_detail", plan_id=plan_id, municipality_id=municipality.id))
    db.session.commit()
    flash(_("%(name)s の請求書（第%(n)d版）を発行しました。", name=municipality.name, n=statement.version), "success")
    return redirect(url_for("planning.statement", plan_id=plan_id, statement_id=statement.id))


def _own_municipality_or_404(municipality_id: int) -> Municipality:
    municipality = db.get_or_404(Municipality, municipality_id)
    require_own_object(current_user, municipality.id, "municipality_fees", municipality.id)
    return municipality


@bp.get("/<int:plan_id>/fees/<int:municipality_id>")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def fee_detail(plan_id: int, municipality_id: int):
    """A municipality's charges as they stand and its statements (its own office, or a
    platform admin)."""
    plan = _plan(plan_id)
    municipality = _own_municipality_or_404(municipality_id)
    return render_template("planning/fee_detail.html", plan=plan, municipality=municipality,
                           charges=fees.charges(plan, municipality.id),
                           statements=fees.statements_of(plan, municipality.id), action_form=ActionForm())


def _statement_or_404(plan: TrainingPlan, statement_id: int) -> FeeStatement:
    statement = db.session.get(FeeStatement, statement_id)
    if statement is None or statement.plan_id != plan.id:
        abort(404)
    require_own_object(current_user, statement.municipality_id, "fee_statement", statement.id)
    return statement


@bp.get("/<int:plan_id>/statements/<int:statement_id>")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def statement(plan_id: int, statement_id: int):
    """An issued statement, printable on A4 (the browser's print makes its PDF)."""
    plan = _plan(plan_id)
    statement = _statement_or_404(plan, statement_id)
    return render_template("planning/statement.html", plan=plan, statement=statement,
                           issuer=current_app.config.get("LMS_ISSUER_NAME") or "")


@bp.get("/<int:plan_id>/statements/<int:statement_id>.xlsx")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def statement_sheet(plan_id: int, statement_id: int):
    """The statement as an invoice-ready Excel sheet."""
    plan = _plan(plan_id)
    statement = _statement_or_404(plan, statement_id)
    filename = f"研修負担金_{plan.fiscal_year}_{statement.municipality.code}_第{statement.version}版.xlsx"
    return private_download(fees_sheet(plan, statement), filename, XLSX_MIME, fallback="statement.xlsx")


@bp.get("/<int:plan_id>/plan.xlsx")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def plan_sheet(plan_id: int):
    """The year's plan as Excel (drafts: the platform admin only)."""
    plan = _plan(plan_id)
    filename = f"年間研修計画_{plan.fiscal_year}.xlsx"
    return private_download(plan_workbook(plan), filename, XLSX_MIME, fallback="plan.xlsx")


@bp.get("/<int:plan_id>/print")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def plan_print(plan_id: int):
    """The year's plan on A4 (the browser's print gives its PDF)."""
    plan = _plan(plan_id)
    return render_template("planning/print.html", plan=plan, sessions=services.plan_sessions(plan),
                           fees=fees.fees_of(plan), issuer=current_app.config.get("LMS_ISSUER_NAME") or "")


@bp.post("/<int:plan_id>/remind")
@role_required(PLATFORM_ADMIN)
def remind(plan_id: int):
    """Mail the training offices that have not answered the survey yet."""
    _plan(plan_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        begin_write()
        plan = db.session.get_one(TrainingPlan, plan_id)
        count = services.remind_unanswered(current_user, plan)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(ngettext("未回答の %(n)d 自治体の研修担当に催促のメールを送ります（同じ日に二度は送りません）。",
                       "未回答の %(n)d 自治体の研修担当に催促のメールを送ります（同じ日に二度は送りません）。", count, n=count), "success")
    return redirect(url_for("planning.plan", plan_id=plan_id))


@bp.post("/<int:plan_id>/sessions/<int:session_id>/release")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def release(plan_id: int, session_id: int):
    """A training office lets its unfilled seats of one session go before the deadline."""
    plan = _plan(plan_id)
    municipality = _survey_municipality()
    if municipality is None:
        return redirect(url_for("planning.plan", plan_id=plan_id))
    if not any(s.id == session_id for s in services.plan_sessions(plan)):
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        freed = run_in_transaction(services.release_early, current_user, session_id, municipality.id)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(_("%(name)s の未使用の席 %(n)d 席を解放しました。キャンセル待ちの職員に申込順で割り当てられます。",
                name=municipality.name, n=freed), "success")
    return redirect(url_for("planning.survey", plan_id=plan_id, **_survey_args(municipality)))


@bp.post("/<int:plan_id>/sessions/<int:session_id>/exchange")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def request_exchange(plan_id: int, session_id: int):
    """A training office offers seats of a session to another municipality, or asks for more."""
    plan = _plan(plan_id)
    municipality = _survey_municipality()
    if municipality is None:
        return redirect(url_for("planning.plan", plan_id=plan_id))
    if not ActionForm().validate_on_submit():
        abort(400)
    kind = request.form.get("kind", "")
    typed_seats = one_line(request.form.get("seats", ""))
    reason = one_line(request.form.get("reason", ""))
    seats = _whole_number(typed_seats) or 0
    to_id = parse_id(request.form.get("to_municipality_id"))
    back = url_for("planning.survey", plan_id=plan_id, **_survey_args(municipality)) + f"#exchange-{session_id}"
    try:
        begin_write()
        if (again := once.repeated()) is not None:
            return again
        plan = db.session.get_one(TrainingPlan, plan_id)
        services.request_exchange(current_user, plan, session_id, municipality.id, kind=kind, seats=seats,
                                  to_municipality_id=to_id, reason=reason)
        once.remember(back)
    except NotFound:
        db.session.rollback()
        abort(404)
    except DomainError as exc:
        db.session.rollback()
        plan = _plan(plan_id)
        return _survey_page(plan, municipality, exchange={
            "session_id": session_id, "kind": kind, "seats": typed_seats, "reason": reason,
            "to_municipality_id": to_id, "field": exc.context.get("field"), "message": exc.message})
    else:
        db.session.commit()
        flash(_("申請しました。全体管理者が承認すると割当人数が変わります。"), "success")
    return redirect(back)


@bp.post("/<int:plan_id>/exchanges/<int:exchange_id>/decide")
@role_required(PLATFORM_ADMIN)
def decide_exchange(plan_id: int, exchange_id: int):
    plan = _plan(plan_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    approve = request.form.get("decision") == "approve"
    try:
        row = run_in_transaction(services.decide_exchange, current_user, plan, exchange_id, approve=approve,
                                 reason=request.form.get("reason", ""))
    except NotFound:
        db.session.rollback()
        abort(404)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash(_("申請を承認し、割当人数を変更しました。") if row.status == "approved" else _("申請を見送りました。"), "success")
    return redirect(url_for("planning.plan", plan_id=plan_id) + "#exchanges")


@bp.get("/<int:plan_id>/statements/<int:statement_id>.pdf")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def statement_pdf(plan_id: int, statement_id: int):
    """The statement as a PDF (A4, the font embedded)."""
    plan = _plan(plan_id)
    statement = _statement_or_404(plan, statement_id)
    from lms.planning.statement_pdf import render_statement_pdf  # (heavy: reportlab, statement_pdf says why)

    pdf = render_statement_pdf(plan, statement, issuer=current_app.config.get("LMS_ISSUER_NAME") or "",
                               font_path=current_app.config["LMS_CERTIFICATE_FONT"],
                               wareki=bool(current_app.config.get("LMS_WAREKI")))
    filename = f"研修負担金_{plan.fiscal_year}_{statement.municipality.code}_第{statement.version}版.pdf"
    return private_download(pdf, filename, "application/pdf", fallback="statement.pdf")
