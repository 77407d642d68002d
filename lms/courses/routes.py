"""Catalogue and course pages (signed-in users); course and session management (trainers,
platform admins)."""

from __future__ import annotations

from datetime import timedelta
from itertools import groupby

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_translations
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select
from werkzeug.wrappers import Response
from wtforms import SelectChoice

from lms.auth.models import PLATFORM_ADMIN, TRAINER
from lms.common import once
from lms.common.access import refuse_as_missing, role_required
from lms.common.database import run_in_transaction
from lms.common.errors import DomainError, InvalidInput, NotAllowed
from lms.common.i18n import join_list
from lms.common.markdown import render_markdown
from lms.common.pagination import beyond_last_page, requested_page
from lms.common.templating import format_datetime_jst
from lms.common.timeutil import as_utc, to_tokyo, tokyo_to_utc, utcnow
from lms.courses import audience, paths, services
from lms.courses import catalogue as cat
from lms.courses.forms import (
    COMPLETION_LABELS,
    DELIVERY_LABELS,
    ActionForm,
    CancelForm,
    CourseForm,
    PathForm,
    PrerequisiteForm,
    SessionForm,
    choices_of,
    completion_terms,
)
from lms.courses.models import CANCELLED, Course, CourseEligibility, TrainingPath, TrainingSession
from lms.courses.views import session_views
from lms.extensions import db
from lms.municipalities.models import KINDS, Municipality, kind_label

bp = Blueprint("courses", __name__)


# ---------------------------------------------------------------- catalogue (learners)


@bp.get("/courses")
@login_required
def catalogue():
    filters = cat.CatalogueFilters.from_args(request.args)
    page = requested_page()
    member = current_user.staff_member if filters.open_to_me else None  # one lookup, for "for me" only
    profile = audience.profile_of(member) if member is not None else None
    pagination, rows = cat.catalogue_page(filters, current_user.municipality_id, page, profile=profile)
    if (last := beyond_last_page(pagination)) is not None:
        return last
    categories = cat.category_choices()
    return render_template(
        "courses/catalogue.html",
        filters=filters,
        pagination=pagination,
        rows=rows,
        categories=categories,
        category_names=dict(categories),
        # Translated once per page; the template fills them in with |format.
        # (the seats' count as its two English forms, "1 seat" and "N seats", chosen by the
        # template; Japanese has one form. The catalogue ngettext's patterns, not yet filled in.)
        formats={"more": _("ほか %(n)d 回"), "month": _("%(year)d年%(month)d月"),
                 "seats": (get_translations().ngettext("%(n)d席", "%(n)d席", 1),
                           get_translations().ngettext("%(n)d席", "%(n)d席", 2))},
        months=cat.month_choices(),
        deliveries=DELIVERY_LABELS,
    )


@bp.get("/courses/<int:course_id>")
@login_required
def course_detail(course_id: int):
    course = db.get_or_404(Course, course_id)
    if not services.can_see_course(current_user, course):
        abort(404)
    manager = services.can_manage_course(current_user, course)
    sessions = session_views(course)
    return render_template(
        "courses/detail.html",
        course=course,
        sessions=sessions,
        manager=manager,
        completion_labels=COMPLETION_LABELS,
        completion_terms=completion_terms(course, any(v.session.series_id for v in sessions)),
        deliveries=DELIVERY_LABELS,
        eligible_names=_eligible_names(course),
        audience_rules=audience.describe(course),
        paths=paths.paths_of_course(course.id),
    )


# ---------------------------------------------------------------- management: courses


@bp.get("/manage/courses")
@role_required(TRAINER, PLATFORM_ADMIN)
def manage():
    status = request.args.get("status", "")
    page = requested_page()
    pagination = db.paginate(services.managed_courses_query(current_user, status), page=page, per_page=30,
                             error_out=False)
    if (last := beyond_last_page(pagination)) is not None:
        return last
    counts = services.session_counts([c.id for c in pagination.items])
    return render_template("courses/manage.html", pagination=pagination, status=status, session_counts=counts)


@bp.route("/manage/courses/new", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def new_course():
    form = CourseForm()
    _course_choices(form)
    if form.validate_on_submit() and not form.preview.data:
        if (again := once.repeated()) is not None:
            return again
        try:
            course = services.create_course(current_user, _course_input(form))
        except DomainError as exc:
            db.session.rollback()
            _form_error(form, exc)
        else:
            target = once.remember(url_for("courses.manage_course", course_id=course.id))
            db.session.commit()
            flash(_("研修「%(title)s」を下書きとして作成しました。回を追加してから公開してください。", title=course.title), "success")
            return redirect(target)
    return _course_form_page(form, None)


@bp.get("/manage/courses/<int:course_id>")
@role_required(TRAINER, PLATFORM_ADMIN)
def manage_course(course_id: int):
    course = _managed_course(course_id)
    sessions = session_views(course)
    return render_template(
        "courses/manage_course.html",
        course=course,
        sessions=sessions,
        missing_links=services.sessions_without_join_link(course),
        action_form=ActionForm(),
        completion_labels=COMPLETION_LABELS,
        completion_terms=completion_terms(course, any(v.session.series_id for v in sessions)),
        deliveries=DELIVERY_LABELS,
        eligible_names=_eligible_names(course),
        audience_rules=audience.describe(course),
    )


@bp.route("/manage/courses/<int:course_id>/edit", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def edit_course(course_id: int):
    course = _managed_course(course_id)
    if course.status == CANCELLED:
        return _no_form(course.id, _("中止した研修は編集できません。"))
    form = _filled_course_form(course) if request.method == "GET" else CourseForm()
    _course_choices(form)
    if form.validate_on_submit() and not form.preview.data:
        data = _course_input(form)
        # (a form without its version — one from before the check — is saved as before)
        data.expected_version = form.version.data or None
        try:
            changes = services.update_course(current_user, course, data)
        except services.StaleEdit as exc:
            # Opened before someone else's change: the form again, with the current values.
            db.session.rollback()
            course = _managed_course(course_id)
            if course.status == CANCELLED:
                return _no_form(course.id, _("中止した研修は編集できません。"))
            form = _filled_course_form(course)
            _course_choices(form)
            form.form_errors.append(exc.message)
        except DomainError as exc:
            db.session.rollback()
            _form_error(form, exc)
        else:
            db.session.commit()
            flash(_("研修を保存しました。") if changes else _("変更はありませんでした。"), "success")
            return redirect(url_for("courses.manage_course", course_id=course.id))
    return _course_form_page(form, course)


def _filled_course_form(course: Course) -> CourseForm:
    """The edit form with the course as stored (and the version it was read at)."""
    form = CourseForm(formdata=None, obj=course)
    form.category_id.data = course.category_id or 0
    form.eligibility.data = "all" if course.eligible_all else "list"
    form.municipality_ids.data = sorted(course.eligible_municipality_ids)
    form.version.data = services.course_edit_version(course)
    return form


@bp.route("/manage/courses/<int:course_id>/prerequisites", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def course_prerequisites(course_id: int):
    """受講要件: the courses a learner must have completed before enrolling in this one."""
    course = _managed_course(course_id)
    form = PrerequisiteForm()
    choices = services.prerequisite_choices(course, current_user)
    form.required_ids.choices = [(c.id, c.title) for c in choices]
    if request.method == "GET":
        form.required_ids.data = [p.required_course_id for p in course.prerequisites]
        form.within_fiscal_years.data = next((p.within_fiscal_years for p in course.prerequisites), None)
    if form.validate_on_submit():
        try:
            changed = services.set_prerequisites(current_user, course, form.required_ids.data or [],
                                                 form.within_fiscal_years.data)
        except DomainError as exc:
            db.session.rollback()
            _form_error(form, exc)
        else:
            db.session.commit()
            flash(_("受講要件を保存しました。") if changed else _("変更はありませんでした。"), "success")
            return redirect(url_for("courses.manage_course", course_id=course.id))
    return render_template("courses/prerequisites.html", course=course, form=form, choices=choices,
                           selected=set(form.required_ids.data or []))


@bp.get("/manage/paths")
@role_required(PLATFORM_ADMIN)
def path_list():
    """研修体系 (training paths), for the platform admins."""
    return render_template("courses/paths.html", paths=paths.all_paths())


@bp.route("/manage/paths/new", methods=["GET", "POST"])
@role_required(PLATFORM_ADMIN)
def path_new():
    return _path_form(None)


@bp.route("/manage/paths/<int:path_id>/edit", methods=["GET", "POST"])
@role_required(PLATFORM_ADMIN)
def path_edit(path_id: int):
    return _path_form(db.get_or_404(TrainingPath, path_id))


@bp.route("/manage/paths/<int:path_id>/delete", methods=["GET", "POST"])
@role_required(PLATFORM_ADMIN)
def path_delete(path_id: int):
    """Deleting a path asks on a page first; completions and courses stay."""
    path = db.get_or_404(TrainingPath, path_id)
    if request.method == "GET":
        return render_template(
            "confirm.html", heading=_("研修体系の削除"),
            lead=_("この研修体系を削除すると、受講者の受講履歴に表示されなくなります。研修と修了の記録は消えません。"),
            facts=[(_("研修体系"), path.name), (_("研修"), " → ".join(step.course.title for step in path.steps))],
            action_url=url_for("courses.path_delete", path_id=path.id), button=_("削除する"),
            back_url=url_for("courses.path_list"),
        )
    if not ActionForm().validate_on_submit():
        abort(400)
    paths.delete_path(current_user, path)
    db.session.commit()
    flash(_("研修体系を削除しました。"), "success")
    return redirect(url_for("courses.path_list"))


def _path_form(path: TrainingPath | None):
    form = PathForm()
    choices = [(0, _("（選ばない）")), *((c.id, c.title) for c in paths.step_choices())]
    for entry in form.steps:
        entry.choices = choices
    if request.method == "GET" and path is not None:
        form.name.data, form.description.data = path.name, path.description
        for entry, step in zip(form.steps, path.steps, strict=False):
            entry.data = step.course_id
    if form.validate_on_submit():
        data = paths.PathInput(form.name.data or "", form.description.data or "", [e.data or 0 for e in form.steps])
        if path is None and (again := once.repeated()) is not None:
            return again
        try:
            saved = paths.save_path(current_user, data, path)
        except DomainError as exc:
            db.session.rollback()
            name = exc.context.get("field") if isinstance(exc, InvalidInput) else None
            if name == "name":
                form.name.errors = [*form.name.errors, exc.message]
            else:
                form.form_errors.append(exc.message)
        else:
            if path is None:
                once.remember(url_for("courses.path_list"))
            db.session.commit()
            flash(_("研修体系「%(name)s」を保存しました。", name=saved.name), "success")
            return redirect(url_for("courses.path_list"))
    return render_template("courses/path_form.html", form=form, path=path)


@bp.post("/manage/courses/<int:course_id>/publish")
@role_required(TRAINER, PLATFORM_ADMIN)
def publish_course(course_id: int):
    response = _course_action(course_id, services.publish_course, _("研修を公開しました。研修一覧に表示されます。"))
    missing = services.sessions_without_join_link(_managed_course(course_id))
    if missing:
        flash(_("Teams の研修回 %(n)s 件に参加リンクがありません（%(titles)s）。受講者には「参加リンクは後日お知らせします」と表示されます。Teams 会議を作成するか、リンクを登録してください。",
                n=len(missing), titles=join_list(s.title or f"{to_tokyo(s.starts_at):%Y-%m-%d}" for s in missing[:5])),
              "warning")
    return response


@bp.post("/manage/courses/<int:course_id>/copy")
@role_required(TRAINER, PLATFORM_ADMIN)
def copy_course(course_id: int):
    """A new draft like this course (next year's run, say), with its activities; no sessions."""
    course = _managed_course(course_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    if (again := once.repeated()) is not None:
        return again
    try:
        copy = services.copy_course(current_user, course)
    except NotAllowed:
        db.session.rollback()
        abort(403)
    target = once.remember(url_for("courses.manage_course", course_id=copy.id))
    db.session.commit()
    flash(_("「%(title)s」を下書きとして作りました（課題・問題バンクも写しました。回は含みません）。内容を確かめて、回を追加してください。",
            title=copy.title), "success")
    return redirect(target)


@bp.post("/manage/courses/<int:course_id>/unpublish")
@role_required(TRAINER, PLATFORM_ADMIN)
def unpublish_course(course_id: int):
    return _course_action(course_id, services.unpublish_course, _("研修を非公開（下書き）に戻しました。"))


@bp.route("/manage/courses/<int:course_id>/cancel", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def cancel_course(course_id: int):
    course = _managed_course(course_id)
    now = utcnow()
    to_come = [s.id for s in course.sessions if s.status != CANCELLED and as_utc(s.starts_at) > now]
    if course.status == CANCELLED and not to_come:  # (no form to cancel what is cancelled, as for a session)
        return _no_form(course_id, _("この研修はすでに中止されています（中止する回は残っていませんでした）。"), "info")
    form = CancelForm()
    if form.validate_on_submit():
        was_cancelled = course.status == CANCELLED
        try:
            cancelled = services.cancel_course(current_user, course, form.reason.data or "")
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            if was_cancelled and not cancelled:
                flash(_("この研修はすでに中止されています（中止する回は残っていませんでした）。"), "info")
            else:
                flash(_("研修を中止しました（これからの回 %(n)d 件を中止し、申込者に通知しました）。", n=len(cancelled)),
                      "success")
            return redirect(url_for("courses.manage_course", course_id=course_id))
    return render_template("courses/cancel.html", form=form, course=course, session=None, session_ids=to_come)


# ---------------------------------------------------------------- management: sessions


@bp.route("/manage/courses/<int:course_id>/sessions/new", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def new_session(course_id: int):
    course = _managed_course(course_id)
    if course.status == CANCELLED:
        return _no_form(course.id, _("中止した研修には回を追加できません。"))
    form = SessionForm()
    _quota_choices(form)
    if request.method == "GET" or form.add_quota.data:
        form.quotas.append_entry()
    elif form.validate_on_submit():
        if (again := once.repeated()) is not None:
            return again
        try:
            session = services.create_session(current_user, course, _session_input(form))
        except DomainError as exc:
            db.session.rollback()
            _form_error(form, exc)
        else:
            target = once.remember(url_for("courses.manage_course", course_id=course.id))
            db.session.commit()
            flash(_("回を追加しました（%(when)s）。", when=_when(session)), "success")
            return redirect(target)
    _quota_choices(form)
    return render_template("courses/session_form.html", form=form, course=course, session=None)


@bp.route("/manage/sessions/<int:session_id>/parts/new", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def new_part(session_id: int):
    """連続講座: another dated part of the session's series (the session starts one if alone)."""
    session = _managed_session(session_id)
    if (closed := _closed(session, adding=True)) is not None:
        return closed
    if session.series_id is None and as_utc(session.starts_at) <= utcnow():
        return _no_form(session.course_id, services.past_series_message())
    return _series_session_form(session, makeup=False)


@bp.route("/manage/sessions/<int:session_id>/makeup/new", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def new_makeup(session_id: int):
    """補講: a make-up part for this part of a series, for whoever missed it."""
    session = _managed_session(session_id)
    if (closed := _closed(session, adding=True)) is not None:
        return closed
    if session.series_id is None:  # (the service refuses it too: no form to fill in for nothing)
        return _no_form(session.course_id, _("補講は連続講座の回に追加できます。先に日程を追加して連続講座にしてください。"))
    return _series_session_form(session, makeup=True)


def _series_session_form(anchor: TrainingSession, *, makeup: bool):
    course = anchor.course
    form = SessionForm()
    _quota_choices(form)
    if request.method == "GET":
        # As the part it follows, a day (a make-up: a week) later; its own Teams meeting. A
        # make-up is asked for by those who missed the day, after it: open until it starts.
        shift = timedelta(days=7 if makeup else 1)
        for name in ("starts_at", "ends_at", "enroll_opens_at", "enroll_closes_at", "cancel_deadline"):
            value = getattr(anchor, name)
            if name in ("starts_at", "ends_at"):
                form[name].data = _local(value + shift)
            else:
                form[name].data = None if makeup else _local(value)
        form.delivery.data, form.location.data, form.capacity.data = anchor.delivery, anchor.location, anchor.capacity
        form.title.data = _("%(title)sの補講", title=anchor.title) if makeup else ""
        form.quotas.append_entry()
        _quota_choices(form)
    elif form.add_quota.data:
        form.quotas.append_entry()
    elif form.validate_on_submit():
        if (again := once.repeated()) is not None:
            return again
        try:
            session = services.create_session(current_user, course, _session_input(form),
                                              part_of=None if makeup else anchor, makeup_for=anchor if makeup else None)
        except DomainError as exc:
            db.session.rollback()
            _form_error(form, exc)
        else:
            once.remember(url_for("courses.manage_course", course_id=course.id))
            db.session.commit()
            flash(_("補講を追加しました（%(when)s）。", when=_when(session)) if makeup
                  else _("連続講座に日程を追加しました（%(when)s）。", when=_when(session)), "success")
            return redirect(url_for("courses.manage_course", course_id=course.id))
    return render_template("courses/session_form.html", form=form, course=course, session=None,
                           part_of=None if makeup else anchor, makeup_for=anchor if makeup else None)


@bp.route("/manage/sessions/<int:session_id>/edit", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def edit_session(session_id: int):
    session = _managed_session(session_id)
    if (closed := _closed(session)) is not None:
        return closed
    course = session.course
    form = SessionForm()
    _quota_choices(form)
    if request.method == "GET":
        _fill_session_form(form, session)
    elif form.add_quota.data:
        form.quotas.append_entry()
    elif form.validate_on_submit():
        try:
            data = _session_input(form)
            # (a form without its version — one from before the check — is saved as before)
            data.expected_version = form.version.data or None
            changes = run_in_transaction(services.update_session, current_user, session_id, data)
        except services.StaleEdit as exc:
            # Opened before someone else's change: the form again, with the current values.
            db.session.rollback()
            session = _managed_session(session_id)
            if (closed := _closed(session)) is not None:
                return closed
            form = SessionForm(formdata=None)
            _fill_session_form(form, session)
            form.form_errors.append(exc.message)
        except DomainError as exc:
            db.session.rollback()
            _form_error(form, exc)
        else:
            if not changes:
                flash(_("変更はありませんでした。"), "info")
            elif any(name in changes for name in services.NOTIFIED_FIELDS):
                flash(_("回を変更しました。申込者に変更を通知します。"), "success")
            else:
                flash(_("回を変更しました。"), "success")
            return redirect(url_for("courses.manage_course", course_id=course.id))
    _quota_choices(form)
    return render_template("courses/session_form.html", form=form, course=course, session=session)


@bp.route("/manage/sessions/<int:session_id>/cancel", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def cancel_session(session_id: int):
    session = _managed_session(session_id)
    course_id = session.course_id
    if session.status == CANCELLED:
        return _no_form(course_id, _("この回はすでに中止されています。"), "info")
    refusal = services.cancel_session_refusal(session)
    if refusal is not None:
        return _no_form(course_id, refusal)
    form = CancelForm()
    if form.validate_on_submit():
        try:
            services.cancel_session(current_user, session, form.reason.data or "")
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            flash(_("回を中止しました。申込者に通知します。"), "success")
            return redirect(url_for("courses.manage_course", course_id=course_id))
    return render_template("courses/cancel.html", form=form, course=session.course, session=session,
                           session_ids=[session.id])


# ---------------------------------------------------------------- helpers


def _managed_course(course_id: int) -> Course:
    course = db.get_or_404(Course, course_id)
    if not services.can_manage_course(current_user, course):
        refuse_as_missing(current_user, "course", course_id)  # another trainer's: as if there were none
    return course


def _managed_session(session_id: int) -> TrainingSession:
    session = db.get_or_404(TrainingSession, session_id)
    if not services.can_manage_course(current_user, session.course):
        refuse_as_missing(current_user, "training_session", session_id)
    return session


def _closed(session: TrainingSession, *, adding: bool = False) -> Response | None:
    """A cancelled session (or a session of a cancelled course) offers no form to change it
    or add to it: the course's page, with the reason the service would give."""
    if session.status == CANCELLED:
        message = _("中止した回には日程や補講を追加できません。") if adding else _("中止した回は編集できません。")
    elif session.course.status == CANCELLED:
        message = _("中止した研修には回を追加できません。") if adding else _("中止した研修の回は編集できません。")
    elif not adding and as_utc(session.ends_at) <= utcnow():
        message = services.ended_session_message()
    elif adding and session.makeup_for_id is not None:
        message = _("連続講座の日程は、同じ研修の回（補講を除く）に追加してください。")
    else:
        return None
    return _no_form(session.course_id, message)


def _no_form(course_id: int, message: str, category: str = "error") -> Response:
    flash(message, category)
    return redirect(url_for("courses.manage_course", course_id=course_id))


def _course_action(course_id: int, action, message: str):
    course = _managed_course(course_id)
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        action(current_user, course)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(message, "success")
    return redirect(url_for("courses.manage_course", course_id=course_id))


def _form_error(form, exc: DomainError) -> None:
    if isinstance(exc, NotAllowed):
        abort(403)
    name = exc.context.get("field") if isinstance(exc, InvalidInput) else None
    if name and name in form and name != "quotas":
        form[name].errors = [*form[name].errors, exc.message]
    else:
        form.form_errors.append(exc.message)


def _municipality_groups() -> list[tuple[str, list[Municipality]]]:
    rows = db.session.scalars(
        select(Municipality).where(Municipality.active.is_(True)).order_by(Municipality.sort_order, Municipality.code)
    ).all()
    order = {kind: i for i, kind in enumerate(KINDS)}
    rows = sorted(rows, key=lambda m: (order.get(m.kind, 99), m.sort_order, m.code))
    # (headed by the kind's label: 市 is Cities in English)
    return [(kind_label(kind), list(items)) for kind, items in groupby(rows, key=lambda m: m.kind)]


def _course_choices(form: CourseForm) -> None:
    form.category_id.choices = choices_of([(0, _("（分類なし）"))] + [(c.id, c.label) for c in cat.categories()])
    form.municipality_ids.choices = choices_of(
        (m.id, m.name) for _kind, items in _municipality_groups() for m in items
    )


def _course_form_page(form: CourseForm, course: Course | None):
    preview = None
    if form.preview.data and not form.description_md.errors:  # (too long: the field says so, no preview)
        preview = render_markdown(form.description_md.data or "")
    return render_template(
        "courses/course_form.html",
        form=form,
        course=course,
        groups=_municipality_groups(),
        selected=set(form.municipality_ids.data or []),
        preview=preview,
    )


def _course_input(form: CourseForm) -> services.CourseInput:
    attendance_pct, viewing_pct = form.attendance_threshold_pct.data, form.viewing_threshold_pct.data
    assert attendance_pct is not None and viewing_pct is not None  # Required, and the form is validated
    return services.CourseInput(
        title=form.title.data or "",
        summary=form.summary.data or "",
        description_md=form.description_md.data or "",
        category_id=form.category_id.data or None,
        target_audience=form.target_audience.data or "",
        eligible_all=form.eligibility.data != "list",
        municipality_ids=list(form.municipality_ids.data or []),
        requires_approval=bool(form.requires_approval.data),
        supervisor_approval=bool(form.supervisor_approval.data),
        selection=bool(form.selection.data),
        completion_mode=form.completion_mode.data,
        attendance_threshold_pct=attendance_pct,
        viewing_threshold_pct=viewing_pct,
        series_threshold_pct=form.series_threshold_pct.data or 75,
        organizer_mailbox=form.organizer_mailbox.data or "",
        audience_grades=form.audience_grades.data or "",
        audience_titles=form.audience_titles.data or "",
        min_years_of_service=form.min_years_of_service.data,
        max_years_of_service=form.max_years_of_service.data,
        new_hires_only=bool(form.new_hires_only.data),
    )


def _quota_choices(form: SessionForm) -> None:
    choices = [SelectChoice(0, _("（自治体を選択）"))] + [
        SelectChoice(m.id, m.name, optgroup=kind) for kind, items in _municipality_groups() for m in items
    ]
    form.quota_choices = choices
    for entry in form.quotas:
        entry.form.municipality_id.choices = choices


def _local(value):
    local = to_tokyo(value)
    return local.replace(tzinfo=None) if local else None


def _fill_session_form(form: SessionForm, session: TrainingSession) -> None:
    form.title.data = session.title
    for name in ("starts_at", "ends_at", "enroll_opens_at", "enroll_closes_at", "cancel_deadline"):
        form[name].data = _local(getattr(session, name))
    form.delivery.data = session.delivery
    form.location.data = session.location
    form.join_url.data = session.join_url
    form.capacity.data = session.capacity
    form.version.data = services.session_edit_version(session)
    for quota in sorted(session.quotas, key=lambda q: q.municipality.sort_order):
        form.quotas.append_entry({"municipality_id": quota.municipality_id, "seats": quota.seats})
    form.quotas.append_entry()
    _quota_choices(form)


def _session_input(form: SessionForm) -> services.SessionInput:
    quotas: dict[int, int] = {}
    for entry in form.quotas:
        row = entry.form
        mid = row.municipality_id.data or 0
        if row.remove.data:
            continue
        if not mid:
            if row.seats.data is not None:  # seats without a municipality: said, not dropped
                raise InvalidInput(_("割当人数を入れた行では自治体を選んでください（不要な行は「削除」にチェックしてください）。"),
                                   field="quotas")
            continue
        if row.seats.data is None:
            raise InvalidInput(_("割当人数を入力してください（不要な行は「削除」にチェックしてください）。"), field="quotas")
        if mid in quotas:
            raise InvalidInput(_("同じ自治体の割当が2行あります。1行にまとめてください。"), field="quotas")
        quotas[mid] = row.seats.data

    def utc(field):
        return tokyo_to_utc(field.data) if field.data else None

    capacity = form.capacity.data
    assert capacity is not None  # Required, and the form is validated
    return services.SessionInput(
        title=form.title.data or "",
        starts_at=utc(form.starts_at),
        ends_at=utc(form.ends_at),
        delivery=form.delivery.data,
        location=form.location.data or "",
        join_url=form.join_url.data or "",
        capacity=capacity,
        enroll_opens_at=utc(form.enroll_opens_at),
        enroll_closes_at=utc(form.enroll_closes_at),
        cancel_deadline=utc(form.cancel_deadline),
        quotas=quotas,
        accept_clashes=bool(form.accept_clashes.data),
    )


def _when(session: TrainingSession) -> str:
    return format_datetime_jst(session.starts_at)


def _eligible_names(course: Course) -> list[str]:
    if course.eligible_all:
        return []
    return list(db.session.scalars(
        select(Municipality.name)
        .join(CourseEligibility, CourseEligibility.municipality_id == Municipality.id)
        .where(CourseEligibility.course_id == course.id)
        .order_by(Municipality.sort_order, Municipality.code)
    ))

