"""Activity pages: trainers build them (/manage/…), learners answer them (/activities/…),
training offices review reports (/reports)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required

from lms.activities import files as activity_files
from lms.activities import results as activity_results
from lms.activities import services
from lms.activities.forms import (
    ANCHOR_LABELS,
    KIND_LABELS,
    QUESTION_LABELS,
    ActivityForm,
    QuestionForm,
    ReviewForm,
)
from lms.activities.models import (
    DATE,
    DRAFT,
    LONGTEXT,
    MULTIPLE,
    NUMBER,
    QUIZ,
    REPORT,
    RETURNED,
    SINGLE,
    SUBMITTED,
    TEXT,
    Activity,
    ActivityQuestion,
    ActivitySubmission,
    BankQuestion,
)
from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, TRAINER
from lms.common import once
from lms.common.access import refuse_as_missing, role_required
from lms.common.errors import Conflict, DomainError, InvalidInput, NotAllowed, NotFound
from lms.common.forms import ActionForm, put_error
from lms.common.ids import parse_id, parse_ids
from lms.common.pagination import Page, beyond_last_page, requested_page
from lms.common.timeutil import utcnow
from lms.common.web import private_download
from lms.common.xlsx import XLSX_MIME
from lms.courses.models import Course, TrainingSession
from lms.courses.services import can_manage_course
from lms.extensions import db
from lms.roster.models import StaffMember

bp = Blueprint("activities", __name__)
# The prefix of the activity's settings form on its page (beside the question form).
SETTINGS = "settings"
# The reports waiting for review on a page of /reports (the oldest first; the page says how many in all).
REPORTS_PER_PAGE = 20


@bp.app_template_global("activity_todos")
def activity_todos(staff_member_id: int | None, course_id: int | None = None) -> list[services.Todo]:
    """マイページ and the course page: the learner's activities, soonest closing first."""
    return services.todos(staff_member_id, course_id) if staff_member_id else []


@bp.app_template_global("course_activity_todos")
def course_activity_todos(course_id: int) -> list[services.Todo]:
    """The course page: the signed-in learner's activities of this course (one statement when
    the course has none, as most have)."""
    if not services.has_published(course_id):
        return []
    member = current_user.staff_member
    return services.todos(member.id, course_id) if member is not None else []


@bp.app_template_global("activity_kind_label")
def activity_kind_label(kind: str) -> str:
    return str(KIND_LABELS.get(kind, kind))


@bp.app_template_global("activity_status_label")
def activity_status_label(status: str) -> str:
    return {"": _("未提出"), DRAFT: _("下書き"), SUBMITTED: _("提出済み"), "confirmed": _("確認済"),
            RETURNED: _("差し戻し"), "passed": _("合格"), "failed": _("不合格")}.get(status, status)


# ---------------------------------------------------------------- trainers


def _course(course_id: int) -> Course:
    course = db.get_or_404(Course, course_id)
    if not can_manage_course(current_user, course):
        refuse_as_missing(current_user, "course", course_id)
    return course


def _activity(activity_id: int) -> Activity:
    activity = db.get_or_404(Activity, activity_id)
    if not can_manage_course(current_user, activity.course):
        refuse_as_missing(current_user, "activity", activity_id)
    return activity


def _question(question_id: int) -> ActivityQuestion:
    question = db.get_or_404(ActivityQuestion, question_id)
    if not can_manage_course(current_user, question.activity.course):
        refuse_as_missing(current_user, "activity", question.activity_id)
    return question


def _activity_input(form: ActivityForm) -> services.ActivityInput:
    return services.ActivityInput(
        kind=form.kind.data, title=form.title.data or "", instructions_md=form.instructions_md.data or "",
        required=bool(form.required.data), anonymous=bool(form.anonymous.data), opens_anchor=form.opens_anchor.data,
        opens_offset_hours=form.opens_offset_hours.data or 0, closes_anchor=form.closes_anchor.data,
        closes_offset_hours=form.closes_offset_hours.data or 0, allow_late=bool(form.allow_late.data),
        pass_pct=form.pass_pct.data or 60, max_attempts=form.max_attempts.data or 1,
        time_limit_minutes=form.time_limit_minutes.data or None, shuffle=bool(form.shuffle.data),
        show_answers=bool(form.show_answers.data), draw_count=form.draw_count.data or None)


def _form_post(form, run, done, *, shows: Callable[[Any], str] | None = None):
    """A form's POST: validated, ``run()`` (the service) committed, then ``done(result)`` (the
    redirect) — or (None, status) with the refusal's message on the form, nothing kept.
    A creating form gives ``shows(result)``, the page of what it made: its one-time token is
    claimed (``lms.common.once``), so the same form sent again leads there instead."""
    if not form.validate_on_submit():
        return None, 400
    if shows is not None and (again := once.repeated()) is not None:
        return again, 200
    try:
        result = run()
    except DomainError as exc:
        db.session.rollback()
        put_error(form, exc)
        return None, 409 if isinstance(exc, Conflict) else 400
    if shows is not None:
        once.remember(shows(result))
    db.session.commit()
    return done(result), 200


def _created(activity: Activity):
    flash(_("「%(title)s」を作りました。質問を加えてから公開してください。", title=activity.title), "success")
    return redirect(url_for("activities.manage", activity_id=activity.id))


@bp.route("/manage/courses/<int:course_id>/activities", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def course_activities(course_id: int):
    course = _course(course_id)
    form = ActivityForm()
    status = 200
    if request.method == "POST":
        done, status = _form_post(form, lambda: services.create_activity(current_user, course, _activity_input(form)),
                                  _created, shows=lambda a: url_for("activities.manage", activity_id=a.id))
        if done is not None:
            return done
    activities = list(db.session.scalars(db.select(Activity).where(Activity.course_id == course.id)
                                         .order_by(Activity.position, Activity.id)))
    return render_template("activities/course_activities.html", course=course, activities=activities, form=form,
                           kinds=KIND_LABELS, anchors=ANCHOR_LABELS), status


@bp.route("/manage/activities/<int:activity_id>", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def manage(activity_id: int):
    activity = _activity(activity_id)
    # (prefixed: the page's question form has fields of the same names)
    form = ActivityForm(obj=activity, prefix=SETTINGS) if request.method == "GET" else ActivityForm(prefix=SETTINGS)
    status = 200
    if request.method == "POST":
        def saved(changes):
            flash(_("保存しました。") if changes else _("変更はありませんでした。"), "success")
            return redirect(url_for("activities.manage", activity_id=activity_id))

        done, status = _form_post(form, lambda: services.update_activity(current_user, activity, _activity_input(form)),
                                  saved)
        if done is not None:
            return done
        activity = _activity(activity_id)
    return _manage_page(activity, form, QuestionForm(formdata=None), status)


def _manage_page(activity: Activity, form: ActivityForm, question_form: QuestionForm, status: int = 200):
    return render_template("activities/manage.html", activity=activity, course=activity.course, form=form,
                           question_form=question_form, action_form=ActionForm(), kinds=KIND_LABELS,
                           question_kinds=QUESTION_LABELS, answered=services.has_answers(activity.id),
                           bank=services.bank_of(activity.course_id) if activity.kind == QUIZ else [],
                           scored_count=len(services.scored_questions(activity))), status


def _question_input(form: QuestionForm) -> services.QuestionInput:
    kind = form.kind.data
    correct: list = []
    text = (form.correct.data or "").strip()
    if text:
        if kind in (SINGLE, MULTIPLE):
            try:
                correct = sorted({int(part) - 1 for part in text.replace("、", ",").split(",") if part.strip()})
            except ValueError:
                raise InvalidInput(_("正解は選択肢の番号（1から）をカンマで区切って入力してください。"), field="correct") from None
        elif kind == NUMBER:
            if (number := services.read_number(text)) is None:  # (read as the learners' answers are)
                raise InvalidInput(_("正解の数値を半角数字で入力してください。"), field="correct")
            correct = [number]
    return services.QuestionInput(kind=kind, prompt=form.prompt.data or "", help_text=form.help_text.data or "",
                                  required=bool(form.required.data), choices=services.parse_choices(form.choices.data or ""),
                                  correct=correct, max_length=form.max_length.data, points=form.points.data or 1)


@bp.post("/manage/activities/<int:activity_id>/questions")
@role_required(TRAINER, PLATFORM_ADMIN)
def add_question(activity_id: int):
    activity = _activity(activity_id)
    question_form = QuestionForm()
    done, status = _form_post(question_form,
                              lambda: services.add_question(current_user, activity, _question_input(question_form)),
                              lambda _q: _to_questions(activity_id, _("質問を追加しました。")),
                              shows=lambda _q: url_for("activities.manage", activity_id=activity_id) + "#questions")
    if done is not None:
        return done
    activity = _activity(activity_id)
    return _manage_page(activity, ActivityForm(obj=activity, formdata=None, prefix=SETTINGS), question_form, status)


def _to_questions(activity_id: int, message: str):
    flash(message, "success")
    return redirect(url_for("activities.manage", activity_id=activity_id) + "#questions")


@bp.route("/manage/activity-questions/<int:question_id>", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def edit_question(question_id: int):
    question = _question(question_id)
    form = QuestionForm(formdata=None, obj=question) if request.method == "GET" else QuestionForm()
    if request.method == "GET":
        form.choices.data = "\n".join(question.choices or [])
        if question.kind in (SINGLE, MULTIPLE):
            form.correct.data = ",".join(str(i + 1) for i in question.correct or [])
        elif question.kind == NUMBER and question.correct:
            form.correct.data = str(question.correct[0])
    status = 200
    if request.method == "POST":
        activity_id = question.activity_id
        done, status = _form_post(form, lambda: services.update_question(current_user, question, _question_input(form)),
                                  lambda _r: _to_questions(activity_id, _("質問を保存しました。")))
        if done is not None:
            return done
        question = _question(question_id)
    return render_template("activities/question_form.html", question=question, activity=question.activity,
                           form=form), status


@bp.route("/manage/activity-questions/<int:question_id>/delete", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def delete_question(question_id: int):
    """Asks on a page of its own first (what is deleted, from which activity), then deletes."""
    if request.method == "GET":
        question = _question(question_id)
        back = url_for("activities.manage", activity_id=question.activity_id) + "#questions"
        if services.has_answers(question.activity_id):  # (the list offers no button then; an old tab or a link might)
            flash(_("回答があるため、質問は削除できません。"), "error")
            return redirect(back)
        return render_template(
            "confirm.html", heading=_("質問を削除"),
            lead=_("この質問を削除します。削除した質問は元に戻せません。"),
            facts=[(_("活動"), question.activity.title), (_("質問"), question.prompt)],
            action_url=url_for("activities.delete_question", question_id=question_id), button=_("削除する"),
            back_url=back)
    return _on_question(question_id, services.delete_question, _("質問を削除しました。"))


def _on_question(question_id: int, run, message: str):
    """A button on one of an activity's questions: ``run(user, question)``, back to the list."""
    question = _question(question_id)
    activity_id = question.activity_id
    _act(lambda: run(current_user, question), message)
    return redirect(url_for("activities.manage", activity_id=activity_id) + "#questions")


def _act(run, message: str | Callable[[Any], str] | None = None) -> None:
    """A button's POST (its CSRF token checked): ``run()`` committed with ``message`` flashed
    (or ``message(result)``), or its refusal flashed with nothing kept (an object not the
    user's: 404)."""
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        result = run()
    except (NotAllowed, NotFound):
        db.session.rollback()
        abort(404)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return
    db.session.commit()
    if message:
        flash(message(result) if callable(message) else message, "success")


@bp.post("/manage/activity-questions/<int:question_id>/move")
@role_required(TRAINER, PLATFORM_ADMIN)
def move_question(question_id: int):
    question = _question(question_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    services.move_question(current_user, question, -1 if request.form.get("direction") == "up" else 1)
    db.session.commit()
    return redirect(url_for("activities.manage", activity_id=question.activity_id) + f"#question-{question.id}")


@bp.post("/manage/activities/<int:activity_id>/publish")
@role_required(TRAINER, PLATFORM_ADMIN)
def publish(activity_id: int):
    activity = _activity(activity_id)
    published = request.form.get("published") == "1"
    _act(lambda: services.set_published(current_user, activity, published),
         _("公開しました。受講が決まっている人のマイページに表示されます。") if published else _("非公開にしました。"))
    return redirect(url_for("activities.manage", activity_id=activity_id))


# ---------------------------------------------------------------- the question bank (問題バンク)


@bp.route("/manage/courses/<int:course_id>/question-bank", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def question_bank(course_id: int):
    course = _course(course_id)
    form = QuestionForm() if request.method == "POST" else QuestionForm(formdata=None)
    status = 200
    if request.method == "POST":
        def added(_item):
            flash(_("問題バンクに追加しました。"), "success")
            return redirect(url_for("activities.question_bank", course_id=course_id))

        done, status = _form_post(form, lambda: services.add_to_bank(current_user, course, _question_input(form)),
                                  added)
        if done is not None:
            return done
    return render_template("activities/question_bank.html", course=course, items=services.bank_of(course.id),
                           question_form=form, question_kinds=QUESTION_LABELS, action_form=ActionForm()), status


@bp.route("/manage/question-bank/<int:item_id>/delete", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def delete_bank_question(item_id: int):
    """Asks on a page of its own first, then takes the question out of the course's bank."""
    item = db.get_or_404(BankQuestion, item_id)
    course = _course(item.course_id)
    if request.method == "GET":
        return render_template(
            "confirm.html", heading=_("問題バンクから外す"),
            lead=_("この問題を問題バンクから外します。確認テストに追加済みの質問はそのまま残ります。"),
            facts=[(_("研修"), course.title), (_("問題"), item.prompt)],
            action_url=url_for("activities.delete_bank_question", item_id=item_id), button=_("バンクから外す"),
            back_url=url_for("activities.question_bank", course_id=course.id))
    _act(lambda: services.delete_from_bank(current_user, item), _("問題バンクから外しました。"))
    return redirect(url_for("activities.question_bank", course_id=course.id))


@bp.post("/manage/activity-questions/<int:question_id>/bank")
@role_required(TRAINER, PLATFORM_ADMIN)
def save_to_bank(question_id: int):
    return _on_question(question_id, services.save_to_bank, _("問題バンクに保存しました。"))


@bp.post("/manage/activities/<int:activity_id>/from-bank")
@role_required(TRAINER, PLATFORM_ADMIN)
def add_from_bank(activity_id: int):
    activity = _activity(activity_id)
    chosen = parse_ids(request.form.getlist("item"))
    _act(lambda: services.add_from_bank(current_user, activity, chosen), lambda added: _(
        "問題バンクから%(n)d問を追加しました。", n=len(added)) + (_(
            "%(n)d問はこの確認テストにすでにあるため追加しませんでした。", n=len(chosen) - len(added))
            if len(added) < len(chosen) else ""))
    return redirect(url_for("activities.manage", activity_id=activity_id) + "#questions")


# ---------------------------------------------------------------- learners


def _raw_answers() -> dict[str, list[str]]:
    return {key: request.form.getlist(key) for key in request.form if key.startswith("q")}


def _uploads() -> dict[int, services.Upload]:
    """The files posted for file questions (field ``f<question id>``; an empty picker sends none)."""
    uploads = {}
    for key, posted in request.files.items(multi=False):
        question_id = parse_id(key[1:]) if key.startswith("f") else None
        if question_id is not None and posted.filename:
            uploads[question_id] = services.Upload(posted.stream, posted.filename)
    return uploads


def _removed() -> set[int]:
    return set(parse_ids(request.form.getlist("remove")))


@bp.route("/activities/<int:activity_id>", methods=["GET", "POST"])
@login_required
def answer(activity_id: int):
    activity = db.session.get(Activity, activity_id)
    if activity is None or not activity.published:
        abort(404)
    errors: dict[int, str] = {}
    status = 200
    raw: dict[str, list[str]] = {}
    if request.method == "POST":
        if not ActionForm().validate_on_submit():
            abort(400)
        action = request.form.get("action", "save")
        raw = _raw_answers()
        try:
            if action == "reopen":
                services.reopen_returned(activity_id, current_user)
                db.session.commit()
                return redirect(url_for("activities.answer", activity_id=activity_id))
            submission, errors = services.save(activity_id, current_user, raw, submit=action == "submit",
                                               uploads=_uploads(), remove=_removed(),
                                               attempt=parse_id(request.form.get("attempt", "")))
        except (NotAllowed, NotFound):
            db.session.rollback()
            abort(404)
        except services.StaleAttempt as exc:
            # The page of the attempt now open, with its own answers: the earlier page's answers
            # shown in its form would be one click (or its timer) from being handed in with it.
            db.session.rollback()
            flash(exc.message, "error")
            return redirect(url_for("activities.answer", activity_id=activity_id))
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
            status = 409
        else:
            # (worded before the commit, which expires what it would read)
            submitted = submission.status == SUBMITTED
            message = (_submitted_message(activity, submission) if submitted
                       else _("下書きを保存しました（まだ提出していません）。"))
            db.session.commit()
            if errors:
                status = 400
            else:
                flash(message, "success" if submitted else "info")
                return redirect(url_for("activities.answer", activity_id=activity_id))
    try:
        place = services.place_of(activity, current_user)
    except (NotAllowed, NotFound):
        abort(404)
    attempt = place.submission
    questions = services.ordered_questions(activity, attempt)
    now = utcnow()
    shown = raw or {f"q{k}": (v if isinstance(v, list) else [v]) for k, v in ((attempt.answers or {}) if attempt else {}).items()}
    quiz_open = activity.kind == QUIZ and attempt is not None and attempt.status == DRAFT
    rewrite = services.is_rewrite(attempt)
    # A timed attempt past its limit (and grace) takes no more answers: it is scored with what
    # was saved in time (the page's script submits it; without it, the learner does).
    time_up = quiz_open and attempt is not None and services.time_is_up(activity, attempt, now)
    # (an attempt started in time takes answers until its own deadline, the close included)
    editable = rewrite or (quiz_open and not time_up) or place.is_open(now) and (
        activity.kind != QUIZ and (attempt is None or attempt.status == DRAFT))
    closed_review = services.answers_revealed(place, now)
    return render_template(
        "activities/answer.html", activity=activity, place=place, attempt=attempt, questions=questions,
        shown=shown, errors=errors, editable=editable, rewrite=rewrite, now=now, action_form=ActionForm(),
        time_up=time_up,
        # What a refused save or submission (closed meanwhile, say) sent, shown for the learner
        # to copy: nothing typed is lost from sight.
        refused=[(q, raw[f"q{q.id}"][0]) for q in questions
                 if q.kind in (TEXT, LONGTEXT, NUMBER, DATE) and (raw.get(f"q{q.id}") or [""])[0].strip()]
        if status == 409 and not editable else [],
        deadline=services.deadline_of(activity, attempt) if quiz_open and attempt is not None else None,
        deadline_is_close=quiz_open and attempt is not None and services.closed_first(activity, attempt),
        accept_files=activity_files.ACCEPT_ATTRIBUTE, file_limit=activity_files.human_size(activity_files.max_bytes()),
        closed_review=closed_review, choice_order=services.choice_order,
        required=services.required_for(activity, current_user.staff_member.id, place.session),
        can_start=activity.kind == QUIZ and place.is_open(now) and not quiz_open
        and not (attempt is not None and attempt.passed) and place.attempts < activity.max_attempts,
    ), status


def _submitted_message(activity: Activity, submission: ActivitySubmission) -> str:
    if activity.kind == QUIZ:
        timing = services.ran_out(activity, submission)
        verdict = _("合格です。") if submission.passed else _("不合格です。")
        if timing and services.closed_first(activity, submission):
            return (_("回答の受付の締切を過ぎたため、締切までに保存した回答で採点しました：%(score)d点（合格点は%(pass)d点）。%(verdict)s",
                      score=submission.score_pct or 0, verdict=verdict, **{"pass": activity.pass_pct})
                    if timing == "late" else
                    _("回答の受付の締切になったため、その時点の回答で採点しました：%(score)d点（合格点は%(pass)d点）。%(verdict)s",
                      score=submission.score_pct or 0, verdict=verdict, **{"pass": activity.pass_pct}))
        if timing == "late":
            return _("制限時間を過ぎたため、時間内に保存した回答で採点しました：%(score)d点（合格点は%(pass)d点）。%(verdict)s",
                     score=submission.score_pct or 0, verdict=verdict, **{"pass": activity.pass_pct})
        if timing == "at_time":
            return _("制限時間になったため、その時点の回答で採点しました：%(score)d点（合格点は%(pass)d点）。%(verdict)s",
                     score=submission.score_pct or 0, verdict=verdict, **{"pass": activity.pass_pct})
        if submission.passed:
            return _("採点しました：%(score)d点で合格です。", score=submission.score_pct or 0)
        return _("採点しました：%(score)d点（合格点は%(pass)d点）。", score=submission.score_pct or 0, **{"pass": activity.pass_pct})
    if activity.kind == REPORT:
        return _("報告を提出しました。研修担当が確認します。")
    if submission.late:
        return _("提出しました（締切後の提出として記録しました）。")
    return _("提出しました。ありがとうございました。")


@bp.post("/activities/<int:activity_id>/attempts")
@login_required
def start_attempt(activity_id: int):
    _act(lambda: services.start_attempt(activity_id, current_user))
    return redirect(url_for("activities.answer", activity_id=activity_id))


@bp.get("/activity-files/<int:attachment_id>")
@login_required
def attached_file(attachment_id: int):
    """An attached file, for its writer, its report's reviewers and the course's managers."""
    try:
        row = services.file_for(current_user, attachment_id)
        body = activity_files.read(row)
    except NotFound:
        abort(404)
    response = private_download(body, row.filename, row.content_type, fallback="attachment")
    response.headers["Content-Length"] = str(row.size)
    return response


# ---------------------------------------------------------------- reports (受講報告)


@bp.get("/reports")
@role_required(MUNICIPAL_ADMIN, TRAINER, PLATFORM_ADMIN)
def reports():
    page = _reports_to_review(requested_page())
    if (last := beyond_last_page(page)) is not None:
        return last
    return _reports_page(page)


def _reports_to_review(number: int) -> Page:
    """Page ``number`` of the reports waiting for the current user's review (past the last:
    empty, with the total; ``_last_reports_page`` says which is the last)."""
    total = services.count_reports_to_review(current_user)
    items = services.reports_to_review(current_user, limit=REPORTS_PER_PAGE, offset=(number - 1) * REPORTS_PER_PAGE) \
        if total > (number - 1) * REPORTS_PER_PAGE else []
    return Page(items=items, total=total, page=number, per_page=REPORTS_PER_PAGE)


def _last_reports_page(number: int) -> int:
    """``number``, or the last page of reports waiting when there are fewer pages now (the first when none wait)."""
    pages = Page(items=[], total=services.count_reports_to_review(current_user), page=number, per_page=REPORTS_PER_PAGE).pages
    return max(1, min(number, pages))


def _reports_address(number: int) -> str:
    return url_for("activities.reports", page=number if number > 1 else None)


def _reports_page(page: Page, refused: tuple[int, str, str] | None = None, status: int = 200):
    """A page of the reports waiting for review; ``refused``: (report id, comment typed, why) of
    a review refused, shown at that report's field with what was typed kept. Each review form
    carries the page it is on (``?page=``), to come back to it."""
    waiting = page.items
    return render_template("activities/reports.html", page=page, waiting=waiting, form=ReviewForm(formdata=None),
                           refused=refused, total=page.total,
                           members={m.id: m for m in db.session.scalars(db.select(StaffMember).where(
                               StaffMember.id.in_([s.staff_member_id for s in waiting])))} if waiting else {}), status


def _refused_review(submission_id: int, comment: str, why: str):
    """The page the review was made on (the last, when there are fewer pages now: a post is not
    redirected), the error at that report's field and what was typed kept."""
    page = _reports_to_review(requested_page())
    if page.total and page.page > page.pages:
        page = _reports_to_review(page.pages)
    return _reports_page(page, (submission_id, comment, why), 422)


@bp.post("/reports/<int:submission_id>")
@role_required(MUNICIPAL_ADMIN, TRAINER, PLATFORM_ADMIN)
def review(submission_id: int):
    form = ReviewForm()
    if not form.validate_on_submit():
        if "comment" not in form.errors:  # (the CSRF token)
            abort(400)
        return _refused_review(submission_id, form.comment.data or "", form.comment.errors[0])
    decision = request.form.get("decision", "")
    try:
        submission = services.review_report(submission_id, current_user, decision, form.comment.data or "")
    except NotFound:
        db.session.rollback()
        abort(404)
    except InvalidInput as exc:
        db.session.rollback()
        return _refused_review(submission_id, form.comment.data or "", exc.message)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(_reports_address(_last_reports_page(requested_page())) + f"#report-{submission_id}")
    db.session.commit()
    name = submission.staff_member.full_name
    flash(_("%(name)s さんの報告を確認済にしました。", name=name) if submission.status == "confirmed"
          else _("%(name)s さんの報告を差し戻しました。", name=name), "success")
    # Back to the page the review was made on (the next reports have moved up into it), or the
    # last when that one is gone.
    return redirect(_reports_address(_last_reports_page(requested_page())))


# ---------------------------------------------------------------- results (trainers)


def _results_session(activity: Activity) -> int | None:
    """The session the results are narrowed to (``?session=``; none given: all of them); 404 for
    a value that names no session of the activity's course (not the whole course's figures
    under a heading the reader did not ask for)."""
    given = (request.args.get("session") or "").strip()
    if not given:
        return None
    session_id = parse_id(given)
    if session_id is None:
        abort(404)
    session = db.session.get(TrainingSession, session_id)
    if session is None or session.course_id != activity.course_id:
        abort(404)
    return session_id


@bp.get("/manage/activities/<int:activity_id>/results")
@role_required(TRAINER, PLATFORM_ADMIN)
def results(activity_id: int):
    activity = _activity(activity_id)
    session_id = _results_session(activity)
    return render_template("activities/results.html", activity=activity, course=activity.course,
                           result=activity_results.results(activity, session_id), session_id=session_id,
                           min_group=activity_results.MIN_GROUP, question_kinds=QUESTION_LABELS,
                           sessions=list(db.session.scalars(db.select(TrainingSession).where(
                               TrainingSession.course_id == activity.course_id).order_by(TrainingSession.starts_at))))


@bp.get("/manage/activities/<int:activity_id>/results.xlsx")
@role_required(TRAINER, PLATFORM_ADMIN)
def results_export(activity_id: int):
    activity = _activity(activity_id)
    session_id = _results_session(activity)
    body = activity_results.workbook(activity, session_id, file_url=lambda attachment_id: url_for(
        "activities.attached_file", attachment_id=attachment_id, _external=True))
    return private_download(body, _("%(title)s_回答.xlsx", title=activity.title), XLSX_MIME, fallback="answers.xlsx")
