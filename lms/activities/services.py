"""Activities: building them (trainers), answering them (learners), reviewing reports
(training offices), and what completion asks of them.

A learner's activity belongs to their session: the course's session they hold a confirmed
place in (the first of a 連続講座), whose start and end the activity's window is counted from.
Every write runs in a transaction that locks the learner's roster row first, so a second
tab or a replayed request can neither add a quiz attempt nor submit twice.
"""

from __future__ import annotations

import random
import re
import unicodedata
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import IO

from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, or_, select, text
from sqlalchemy.orm import contains_eager

from lms.activities import files
from lms.activities.models import (
    CONFIRMED,
    DATE,
    DRAFT,
    END,
    FILE,
    FILE_ACTIVITY_KINDS,
    KINDS,
    LONGTEXT,
    MULTIPLE,
    NUMBER,
    QUESTION_KINDS,
    QUIZ,
    REPORT,
    RETURNED,
    SCALE,
    SCALE_LABELS_DEFAULT,
    SCORED,
    SECTION,
    SINGLE,
    START,
    SUBMITTED,
    SURVEY,
    TEXT,
    Activity,
    ActivityFile,
    ActivityQuestion,
    ActivitySubmission,
    AnonymousAnswer,
    BankQuestion,
    default_scale_labels,
    is_default_scale,
)
from lms.audit.services import record_action
from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN
from lms.common import signals
from lms.common.database import begin_write, ensure_writer, is_sqlite
from lms.common.errors import Conflict, InvalidInput, NotAllowed, NotFound
from lms.common.forms import impossible_date, parse_japanese_date, stripped
from lms.common.templating import format_datetime_jst as format_tokyo
from lms.common.timeutil import as_utc, fiscal_year_bounds, fiscal_year_of, today_tokyo, utcnow
from lms.courses.models import CANCELLED as SESSION_CANCELLED
from lms.courses.models import Course, TrainingSession
from lms.courses.services import can_manage_course
from lms.enrollment.models import CONFIRMED as PLACE_CONFIRMED
from lms.enrollment.models import SERIES, Enrollment
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.roster.models import StaffMember

# Text answers: the default and the largest limits (characters).
TEXT_LIMIT, LONGTEXT_LIMIT = 200, 4000
MAX_CHOICES = 30
# A quiz answer saved within this long after the time limit (the request on its way) counts.
GRACE = timedelta(seconds=30)


# ---------------------------------------------------------------- windows


def window(activity: Activity, session: TrainingSession) -> tuple[datetime, datetime]:
    """When the activity opens and closes for a learner of ``session`` (a 連続講座's first part:
    counted from the start of its first day and the end of its last)."""
    starts, ends = span(session)

    def at(anchor: str, hours: int) -> datetime:
        base = as_utc(starts if anchor == START else ends)
        assert base is not None
        return base + timedelta(hours=hours)

    return at(activity.opens_anchor, activity.opens_offset_hours), at(activity.closes_anchor, activity.closes_offset_hours)


def span(session: TrainingSession) -> tuple[datetime, datetime]:
    """When a learner's session starts and ends: a 連続講座 from its first day's start to its
    last day's end (its parts not cancelled; no make-up); one statement for a series."""
    if session.series_id is None or session.id is None:
        return session.starts_at, session.ends_at
    first, last = db.session.execute(select(func.min(TrainingSession.starts_at), func.max(TrainingSession.ends_at)).where(
        TrainingSession.series_id == session.series_id, TrainingSession.makeup_for_id.is_(None),
        TrainingSession.status != SESSION_CANCELLED)).one()
    return (first or session.starts_at), (last or session.ends_at)


def last_close(activity: Activity) -> datetime | None:
    """When the activity's window closes for the last of its course's sessions (not cancelled;
    a 連続講座 counted once, by its first part; no make-up): until then some learner may still
    be answering it. None when the course has no such session."""
    sessions = db.session.scalars(select(TrainingSession).where(
        TrainingSession.course_id == activity.course_id, TrainingSession.status != SESSION_CANCELLED,
        TrainingSession.makeup_for_id.is_(None),
        or_(TrainingSession.series_id.is_(None), TrainingSession.series_id == TrainingSession.id)))
    return max((window(activity, s)[1] for s in sessions), default=None)


def learner_sessions(course_id: int, staff_member_id: int) -> list[TrainingSession]:
    """The course's sessions the staff member holds a confirmed place in (not a later part of a
    連続講座: its first; not a make-up), latest first."""
    return list(db.session.scalars(
        select(TrainingSession).join(Enrollment, Enrollment.session_id == TrainingSession.id)
        .where(TrainingSession.course_id == course_id, Enrollment.staff_member_id == staff_member_id,
               Enrollment.status == PLACE_CONFIRMED, Enrollment.source != SERIES,
               TrainingSession.makeup_for_id.is_(None))
        .order_by(TrainingSession.starts_at.desc(), TrainingSession.id.desc())))


def choose_session(activity: Activity, sessions: list[TrainingSession], submissions: list[ActivitySubmission],
                   now: datetime) -> TrainingSession:
    """Which of the learner's places (``sessions``, latest first) an activity is answered for,
    when they hold more than one in its course (a later session of the same course, a retake):
    the one they already handed it in for, within the latest place's 年度 (work done stands
    and counts toward completion for the year); else the one whose window is open now; else
    the latest. ``submissions``: the learner's for this activity."""
    if len(sessions) == 1:
        return sessions[0]
    year = fiscal_year_of(sessions[0].starts_at)
    handed_in = {s.session_id for s in submissions if s.status != DRAFT}
    for session in sessions:
        if session.id in handed_in and fiscal_year_of(session.starts_at) == year:
            return session
    open_now = [session for session in sessions if window(activity, session)[0] <= now <= window(activity, session)[1]]
    drafts = {s.session_id for s in submissions}
    return next((s for s in open_now if s.id in drafts), None) or (open_now or sessions)[0]


# ---------------------------------------------------------------- who may do what


def is_reviewer(user, submission: ActivitySubmission) -> bool:
    """Who confirms or returns a report: the training office of the learner's municipality, the
    course's trainer for the prefecture's own staff, and platform admins — never its writer
    (a confirmation is someone else's word on it)."""
    if user is None or not user.is_authenticated or is_own(user, submission):
        return False
    if user.has_role(PLATFORM_ADMIN):
        return True
    if user.has_role(MUNICIPAL_ADMIN) and user.municipality_id == submission.municipality_id:
        return True
    municipality = db.session.get(Municipality, submission.municipality_id)
    return bool(municipality is not None and municipality.is_prefecture
                and can_manage_course(user, submission.activity.course))


def is_own(user, submission: ActivitySubmission) -> bool:
    """The submission is the user's own work."""
    return db.session.scalar(select(StaffMember.user_id).where(StaffMember.id == submission.staff_member_id)) == user.id


def require_manage(user, course: Course) -> None:
    if not can_manage_course(user, course):
        raise NotAllowed(_("この研修を管理する権限がありません。"))


# ---------------------------------------------------------------- building (trainers)


@dataclass
class ActivityInput:
    kind: str
    title: str
    instructions_md: str = ""
    required: bool = True
    anonymous: bool = False
    opens_anchor: str = START
    opens_offset_hours: int = -24 * 30
    closes_anchor: str = END
    closes_offset_hours: int = 24 * 7
    allow_late: bool = False
    pass_pct: int = 60
    draw_count: int | None = None
    max_attempts: int = 2
    time_limit_minutes: int | None = None
    shuffle: bool = False
    show_answers: bool = True


def has_published(course_id: int) -> bool:
    return db.session.scalar(select(Activity.id).where(Activity.course_id == course_id, Activity.published.is_(True))
                             .limit(1)) is not None


def has_answers(activity_id: int) -> bool:
    return db.session.scalar(select(ActivitySubmission.id).where(ActivitySubmission.activity_id == activity_id)
                             .limit(1)) is not None


def _check_activity(data: ActivityInput) -> None:
    if data.kind not in KINDS:
        raise InvalidInput(_("種類を選んでください。"), field="kind")
    if not stripped(data.title):  # (a zero-width space alone is no name either)
        raise InvalidInput(_("名前を入力してください。"), field="title")
    if data.anonymous and data.kind != SURVEY:
        raise InvalidInput(_("無記名にできるのはアンケートだけです。"), field="anonymous")
    if data.opens_anchor not in (START, END) or data.closes_anchor not in (START, END):
        raise InvalidInput(_("受付の基準を選んでください。"), field="opens_anchor")
    probe = TrainingSession(starts_at=datetime(2030, 4, 1, 1), ends_at=datetime(2030, 4, 1, 3))
    opens, closes = window(Activity(**{k: getattr(data, k) for k in (
        "opens_anchor", "opens_offset_hours", "closes_anchor", "closes_offset_hours")}), probe)
    if closes <= opens:
        raise InvalidInput(_("締切は受付開始より後にしてください。"), field="closes_offset_hours")
    if not 1 <= data.pass_pct <= 100:
        raise InvalidInput(_("1から100までの数で入力してください。"), field="pass_pct")
    if not 1 <= data.max_attempts <= 20:
        raise InvalidInput(_("受験回数は1から20までの数で入力してください。"), field="max_attempts")
    if data.draw_count is not None and not 1 <= data.draw_count <= 200:
        raise InvalidInput(_("出題数は1から200までの数で入力してください。"), field="draw_count")
    if data.time_limit_minutes is not None and not 1 <= data.time_limit_minutes <= 600:
        raise InvalidInput(_("制限時間は1から600分までで入力してください。"), field="time_limit_minutes")


def create_activity(actor, course: Course, data: ActivityInput) -> Activity:
    require_manage(actor, course)
    _check_activity(data)
    position = (db.session.scalar(select(func.max(Activity.position)).where(Activity.course_id == course.id)) or 0) + 1
    activity = Activity(course_id=course.id, position=position, **_values(data))
    db.session.add(activity)
    db.session.flush()
    record_action(actor, "activity.create", "activity", activity.id, None, course_id=course.id, kind=data.kind)
    return activity


def _values(data: ActivityInput) -> dict:
    return {
        "kind": data.kind, "title": (stripped(data.title) or "")[:200], "instructions_md": data.instructions_md or "",
        "required": bool(data.required), "anonymous": bool(data.anonymous) and data.kind == SURVEY,
        "opens_anchor": data.opens_anchor, "opens_offset_hours": int(data.opens_offset_hours),
        "closes_anchor": data.closes_anchor, "closes_offset_hours": int(data.closes_offset_hours),
        "allow_late": bool(data.allow_late), "pass_pct": int(data.pass_pct), "max_attempts": int(data.max_attempts),
        "time_limit_minutes": data.time_limit_minutes, "shuffle": bool(data.shuffle),
        "show_answers": bool(data.show_answers),
        "draw_count": data.draw_count if data.kind == QUIZ else None,
    }


def update_activity(actor, activity: Activity, data: ActivityInput) -> dict:
    """Change the settings; once answers exist, not the kind and not whether it is anonymous
    (the answers already given would no longer mean what they meant)."""
    require_manage(actor, activity.course)
    _check_activity(data)
    values = _values(data)
    if data.kind not in FILE_ACTIVITY_KINDS and any(q.kind == FILE for q in activity.questions):
        raise InvalidInput(_("ファイルの添付を求める質問があるため、事前課題か受講報告のままにしてください。"), field="kind")
    if has_answers(activity.id):
        if values["kind"] != activity.kind:
            raise Conflict(_("回答があるため、種類は変えられません。"))
        if values["anonymous"] != activity.anonymous:
            raise Conflict(_("回答があるため、無記名かどうかは変えられません（回答した人との結びつきが変わってしまいます）。"))
    changes = {k: (getattr(activity, k), v) for k, v in values.items() if getattr(activity, k) != v}
    if "pass_pct" in changes and activity.kind == QUIZ and has_answers(activity.id):
        raise Conflict(_("受験した人がいるため、合格点は変えられません（すでに出た合否と食い違ってしまいます）。"),
                       field="pass_pct")
    counted = counts_toward_completion(activity)
    for key, (_old, new) in changes.items():
        setattr(activity, key, new)
    _follow_requirement(activity, counted)
    if changes:
        record_action(actor, "activity.update", "activity", activity.id, None, fields=sorted(changes))
    return changes


def scored_questions(activity: Activity) -> list[ActivityQuestion]:
    """A quiz's questions that are scored: of a scored kind, with a correct answer set."""
    return [q for q in activity.questions if q.kind in SCORED and q.correct]


def counts_toward_completion(activity: Activity) -> bool:
    """A requirement of the course's completion: published and required."""
    return bool(activity.published and activity.required)


def _follow_requirement(activity: Activity, counted_before: bool) -> None:
    """``required_since`` follows a change of ``published``/``required``: the moment it became a
    requirement, or None once it is none; when it stops being one, the completions it held
    back are recomputed (``activity_requirement_dropped``, in the worker after the commit)."""
    counted = counts_toward_completion(activity)
    if counted and not counted_before:
        activity.required_since = utcnow()
    elif counted_before and not counted:
        activity.required_since = None
        signals.activity_requirement_dropped.send(None, course_id=activity.course_id)


def set_published(actor, activity: Activity, published: bool) -> None:
    require_manage(actor, activity.course)
    if published and not any(q.kind != SECTION for q in activity.questions):
        raise Conflict(_("質問が1つもないため、公開できません。"))
    if published and activity.kind == QUIZ and not scored_questions(activity):
        raise Conflict(_("確認テストに採点できる質問（正解を設定した選択式・数値）がないため、公開できません。"))
    counted = counts_toward_completion(activity)
    activity.published = published
    _follow_requirement(activity, counted)
    record_action(actor, "activity.publish" if published else "activity.unpublish", "activity", activity.id, None)


@dataclass
class QuestionInput:
    kind: str
    prompt: str
    help_text: str = ""
    required: bool = True
    choices: list[str] | None = None
    correct: list | None = None
    max_length: int | None = None
    points: int = 1


def parse_choices(text: str) -> list[str]:
    """One choice per line (blank lines dropped)."""
    return [line.strip()[:200] for line in (text or "").splitlines() if line.strip()]


def _check_question(activity: Activity, data: QuestionInput) -> dict:
    if data.kind not in QUESTION_KINDS:
        raise InvalidInput(_("質問の種類を選んでください。"), field="kind")
    if data.kind == FILE and activity.kind not in FILE_ACTIVITY_KINDS:
        raise InvalidInput(_("ファイルの添付を求められるのは事前課題と受講報告だけです。"), field="kind")
    if not data.prompt.strip():
        raise InvalidInput(_("質問文を入力してください。"), field="prompt")
    choices = list(data.choices or [])
    correct = list(data.correct or [])
    if data.kind in (SINGLE, MULTIPLE):
        if len(choices) < 2:
            raise InvalidInput(_("選択肢を2つ以上、1行に1つずつ入力してください。"), field="choices")
        if len(choices) > MAX_CHOICES:
            raise InvalidInput(_("選択肢は%(n)d個までです。", n=MAX_CHOICES), field="choices")
        twice = next((c for n, c in enumerate(choices) if c in choices[:n]), None)
        if twice is not None:  # (learners would see two options alike, and an answer could mean either)
            raise InvalidInput(_("同じ選択肢「%(choice)s」が2回あります。選択肢はそれぞれ違うものにしてください。", choice=twice),
                               field="choices")
        if any(not isinstance(i, int) or not 0 <= i < len(choices) for i in correct):
            raise InvalidInput(_("正解は選択肢の番号（1から）で入力してください。"), field="correct")
        if data.kind == SINGLE and len(correct) > 1:
            raise InvalidInput(_("単一選択の正解は1つだけです。"), field="correct")
    elif data.kind == SCALE:
        if choices and len(choices) != len(SCALE_LABELS_DEFAULT):
            # (a label list of another length was replaced by the defaults without a word)
            raise InvalidInput(_("5段階評価の目盛りは、低い方から順に5行で入力してください（空欄なら「不満」〜「満足」）。"),
                               field="choices")
        choices = _labels(SCALE, choices or default_scale_labels())
        correct = []
    elif data.kind == NUMBER:
        choices = []
        if len(correct) > 1:
            raise InvalidInput(_("数値の正解は1つだけです。"), field="correct")
    else:
        choices, correct = [], []
    limit = LONGTEXT_LIMIT if data.kind == LONGTEXT else TEXT_LIMIT
    max_length = data.max_length if data.kind in (TEXT, LONGTEXT) and data.max_length else None
    if max_length is not None and not 1 <= max_length <= limit:
        raise InvalidInput(_("文字数の上限は1から%(n)dまでで入力してください。", n=limit), field="max_length")
    return {"kind": data.kind, "prompt": data.prompt.strip()[:2000], "help_text": (data.help_text or "").strip()[:1000],
            "required": bool(data.required) and data.kind != SECTION, "choices": choices, "correct": correct,
            "max_length": max_length, "points": max(1, min(int(data.points or 1), 100))}


def _lock_row(model, row_id: int) -> None:
    """The row's lock (PostgreSQL) or the write lock (SQLite) before a read that decides a
    change: a form sent twice at once (two tabs) meets the first one's result."""
    ensure_writer()
    if not is_sqlite():
        db.session.execute(select(model.id).where(model.id == row_id).with_for_update())


def add_question(actor, activity: Activity, data: QuestionInput) -> ActivityQuestion:
    require_manage(actor, activity.course)
    _lock_row(Activity, activity.id)
    db.session.expire(activity, ["questions"])  # read again under the lock: the next position
    values = _check_question(activity, data)
    if values["required"] and has_answers(activity.id):
        raise Conflict(_("回答があるため、必須の質問は追加できません（任意の質問なら追加できます）。"))
    position = max((q.position for q in activity.questions), default=0) + 1
    question = ActivityQuestion(activity_id=activity.id, position=position, **values)
    activity.questions.append(question)
    db.session.flush()
    record_action(actor, "activity.question_add", "activity", activity.id, None, question_id=question.id)
    return question


def update_question(actor, question: ActivityQuestion, data: QuestionInput) -> None:
    """Change a question; once answers exist, only in ways that keep them meaning what they
    meant: the same kind, no choice removed or reordered (new ones may be added at the end),
    the same right answer, and not made required."""
    activity = question.activity
    require_manage(actor, activity.course)
    values = _check_question(activity, data)
    if has_answers(activity.id):
        if values["kind"] != question.kind:
            raise Conflict(_("回答があるため、質問の種類は変えられません。"))
        if values["kind"] == SCALE and is_default_scale(question.choices) and is_default_scale(values["choices"]):
            values["choices"] = list(question.choices)  # (the default labels, stored in either language)
        if values["choices"][: len(question.choices)] != list(question.choices):
            raise Conflict(_("回答があるため、選択肢の削除や並べ替え、書き換えはできません（末尾への追加はできます）。"))
        if values["correct"] != list(question.correct) or values["points"] != question.points:
            raise Conflict(_("回答があるため、正解と配点は変えられません（採点済みの結果が変わってしまいます）。"))
        if values["required"] and not question.required:
            raise Conflict(_("回答があるため、任意の質問を必須にはできません。"))
    for key, value in values.items():
        setattr(question, key, value)
    record_action(actor, "activity.question_update", "activity", activity.id, None, question_id=question.id)


def delete_question(actor, question: ActivityQuestion) -> None:
    activity = question.activity
    require_manage(actor, activity.course)
    _lock_row(Activity, activity.id)
    if db.session.get(ActivityQuestion, question.id, populate_existing=True) is None:
        raise NotFound(_("質問はすでに削除されています。"))  # deleted a moment ago (sent twice)
    if has_answers(activity.id):
        raise Conflict(_("回答があるため、質問は削除できません。"))
    activity.questions.remove(question)
    record_action(actor, "activity.question_delete", "activity", activity.id, None, question_id=question.id)


def move_question(actor, question: ActivityQuestion, offset: int) -> None:
    activity = question.activity
    require_manage(actor, activity.course)
    ordered = list(activity.questions)
    index = ordered.index(question)
    target = index + offset
    if 0 <= target < len(ordered):
        ordered[index], ordered[target] = ordered[target], ordered[index]
        for n, q in enumerate(ordered, start=1):
            q.position = n


# ---------------------------------------------------------------- the question bank (問題バンク)

_BANK_FIELDS = ("kind", "prompt", "help_text", "choices", "correct", "max_length", "points")


def bank_of(course_id: int) -> list[BankQuestion]:
    return list(db.session.scalars(select(BankQuestion).where(BankQuestion.course_id == course_id)
                                   .order_by(BankQuestion.id)))


def add_to_bank(actor, course: Course, data: QuestionInput) -> BankQuestion:
    """A question kept in the course's bank (any kind a quiz may ask)."""
    require_manage(actor, course)
    if data.kind == SECTION:
        raise InvalidInput(_("見出しは問題バンクに入れられません。"), field="kind")
    values = _check_question(Activity(kind=QUIZ), data)
    _lock_row(Course, course.id)  # the bank is read under the course's lock: one copy each
    if any(_same_question(values, other) for other in bank_of(course.id)):
        raise Conflict(_("同じ問題がすでに問題バンクにあります。"))
    item = BankQuestion(course_id=course.id, **{k: values[k] for k in _BANK_FIELDS})
    db.session.add(item)
    db.session.flush()
    record_action(actor, "activity.bank_add", "course", course.id, None, item_id=item.id)
    return item


def save_to_bank(actor, question: ActivityQuestion) -> BankQuestion:
    """A copy of a quiz's question kept in its course's bank."""
    values = {k: getattr(question, k) for k in _BANK_FIELDS}
    return add_to_bank(actor, question.activity.course, QuestionInput(**{**values, "required": True}))


def delete_from_bank(actor, item: BankQuestion) -> None:
    """Take a question out of the bank (the quizzes that copied it keep their copies)."""
    require_manage(actor, _course_of(item))
    _lock_row(Course, item.course_id)
    if db.session.get(BankQuestion, item.id, populate_existing=True) is None:
        raise NotFound(_("問題バンクから外されています。"))  # a moment ago (sent twice)
    db.session.delete(item)
    record_action(actor, "activity.bank_delete", "course", item.course_id, None, item_id=item.id)


def _course_of(item: BankQuestion) -> Course:
    course = db.session.get(Course, item.course_id)
    if course is None:
        raise NotFound(_("研修が見つかりません。"))
    return course


def _labels(kind: str, choices) -> list[str]:
    """The choices as compared: a scale's default labels alike in either language they were stored in."""
    choices = list(choices or [])
    return default_scale_labels() if kind == SCALE and is_default_scale(choices) else choices


def _same_question(values: dict, other) -> bool:
    """The same question: kind, prompt, choices and right answers (a bank or quiz copy)."""
    return (values["kind"], values["prompt"].strip(), _labels(values["kind"], values["choices"]),
            list(values["correct"] or [])) == (
        other.kind, other.prompt.strip(), _labels(other.kind, other.choices), list(other.correct or []))


def add_from_bank(actor, activity: Activity, item_ids: list[int]) -> list[ActivityQuestion]:
    """Copy the chosen bank questions (of the activity's own course) into the activity; a
    question the activity already asks is not added again. Returns the questions added."""
    require_manage(actor, activity.course)
    _lock_row(Activity, activity.id)
    db.session.expire(activity, ["questions"])  # what it asks now, read under the lock
    wanted = set(item_ids)
    items = [i for i in bank_of(activity.course_id) if i.id in wanted]
    if not wanted:
        raise InvalidInput(_("問題バンクから追加する質問を選んでください。"), field="item")
    if len(items) != len(wanted):  # (another course's, or taken out of the bank meanwhile)
        raise InvalidInput(_("選んだ問題の中に、この研修の問題バンクにないものがあります。ページを開き直して選び直してください。"),
                           field="item")
    values = [{k: getattr(item, k) for k in _BANK_FIELDS} for item in items]
    new: list[dict] = []
    for v in values:  # (not twice either: a bank may hold a question twice from before)
        if not any(_same_question(v, q) for q in activity.questions) and not any(
                _same_question(v, SimpleNamespace(**n)) for n in new):
            new.append(v)
    if not new:
        raise Conflict(_("選んだ問題はすべてこの確認テストにすでにあります。"))
    if has_answers(activity.id):  # (a bank question is added as required: the answers given would lack it)
        raise Conflict(_("回答があるため、問題バンクから問題を追加できません。"))
    return [add_question(actor, activity, QuestionInput(**v, required=True)) for v in new]


# ---------------------------------------------------------------- a copied course


_ACTIVITY_FIELDS = ("kind", "title", "instructions_md", "required", "anonymous", "opens_anchor", "opens_offset_hours",
                    "closes_anchor", "closes_offset_hours", "allow_late", "pass_pct", "max_attempts",
                    "time_limit_minutes", "shuffle", "show_answers", "draw_count", "position")
_QUESTION_FIELDS = (*_BANK_FIELDS, "position", "required")


def copy_activities(source: Course, target: Course) -> None:
    """Copy a course's activities (unpublished: the trainer reviews them before learners see
    them; no answers) and its question bank into another course."""
    for activity in db.session.scalars(select(Activity).where(Activity.course_id == source.id)
                                       .order_by(Activity.position, Activity.id)):
        db.session.add(Activity(course_id=target.id, published=False,
                                **{k: getattr(activity, k) for k in _ACTIVITY_FIELDS},
                                questions=[ActivityQuestion(**{k: getattr(q, k) for k in _QUESTION_FIELDS})
                                           for q in activity.questions]))
    db.session.add_all(BankQuestion(course_id=target.id, **{k: getattr(item, k) for k in _BANK_FIELDS})
                       for item in bank_of(source.id))
    db.session.flush()


# ---------------------------------------------------------------- answers


def _normalise_number(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").strip().replace(",", "")


_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def read_number(text: str) -> int | float | None:
    """A number as a person writes it (全角 too, 1,200 with its comma; no exponent, no
    infinity), or None when it is none: a learner's answer and a quiz's right answer alike."""
    normal = _normalise_number(text)
    if not _NUMBER.match(normal) or len(normal) > 20:
        return None
    return float(normal) if "." in normal else int(normal)


def _choice_index(text: str, count: int) -> int | None:
    """A choice's index as the form posts it ("0", "1", …), or None: anything else (a digit that
    is not ASCII, such as ², a huge number) is no choice."""
    if not (text.isascii() and text.isdigit()) or len(text) > 4:
        return None
    index = int(text)
    return index if index < count else None


def clean_answers(activity: Activity, raw: dict[str, list[str]], *, final: bool,
                  questions: list[ActivityQuestion] | None = None, attached: dict[str, dict] | None = None,
                  errors: dict[int, str] | None = None) -> tuple[dict[str, object], dict[int, str]]:
    """The answers of a posted form (``raw``: name → values; a question's field is ``q<id>``;
    ``attached``: the files the answer holds, by question id), checked against each question:
    (answers by question id, messages by question id). A draft (``final`` false) keeps what is
    valid and does not ask for required answers."""
    answers: dict[str, object] = {}
    errors = dict(errors or {})
    for q in questions if questions is not None else activity.questions:
        if q.kind == SECTION:
            continue
        values = [v for v in raw.get(f"q{q.id}", []) if v is not None]
        text = (values[0] if values else "").strip()
        value: object = None
        # (one value per question but a multiple choice's: a page never sends two; a crafted
        # post that does is not read as its first)
        several = q.kind not in (MULTIPLE, FILE) and len([v for v in values if v.strip()]) > 1
        if q.kind == FILE:
            value = (attached or {}).get(str(q.id))
        elif q.kind == SINGLE:
            if text:
                if several or (index := _choice_index(text, len(q.choices))) is None:
                    errors[q.id] = _("選択肢から選んでください。")
                else:
                    value = index
        elif q.kind == MULTIPLE:
            picked = sorted({i for v in values if (i := _choice_index(v, len(q.choices))) is not None})
            if len(picked) != len({v for v in values if v}):
                errors[q.id] = _("選択肢から選んでください。")
            value = picked or None
        elif q.kind == SCALE:
            if text:
                if several or text not in ("1", "2", "3", "4", "5"):
                    errors[q.id] = _("1から5のいずれかを選んでください。")
                else:
                    value = int(text)
        elif q.kind == NUMBER:
            if text:
                if several or (number := read_number(text)) is None:
                    errors[q.id] = _("数値を半角または全角の数字で入力してください（例：12.5）。")
                else:
                    value = number
        elif q.kind == DATE:
            if text:
                day = None if several else parse_japanese_date(text)  # (2026-04-01, 2026/4/1, 2026年4月1日, full-width too)
                if day is None and not several and impossible_date(text):
                    errors[q.id] = _("存在しない日付です（その月にない日）。")
                elif day is None:
                    errors[q.id] = _("日付を 2026-04-01 の形で入力してください。")
                else:
                    value = day.isoformat()
        else:  # text, longtext
            limit = q.max_length or (LONGTEXT_LIMIT if q.kind == LONGTEXT else TEXT_LIMIT)
            body = text if q.kind == TEXT else "\n".join(line.rstrip() for line in (values[0] if values else "")
                                                          .replace("\r\n", "\n").split("\n")).strip()
            if "\x00" in body or several:
                errors[q.id] = _("使えない文字が含まれています。") if not several else _("回答を1つだけ入力してください。")
            elif len(body) > limit:
                errors[q.id] = _("%(n)d文字以内で入力してください（いま%(m)d文字）。", n=limit, m=len(body))
                value = body[:limit] if not final else None
            else:
                value = body or None
        if value is not None and (q.id not in errors or q.kind == FILE):
            answers[str(q.id)] = value
        elif final and q.required and q.id not in errors:
            errors[q.id] = _("この質問は回答が必要です。")
    return answers, errors


def score(activity: Activity, answers: dict, questions: list[ActivityQuestion] | None = None) -> tuple[int, bool]:
    """(score %, passed) of a quiz's answers to its questions (or those an attempt drew): each
    scored question with a right answer is worth its points when answered exactly right (every
    right choice and no other)."""
    total = earned = 0
    for q in questions if questions is not None else activity.questions:
        if q.kind not in SCORED or not q.correct:
            continue
        total += q.points
        given = answers.get(str(q.id))
        if q.kind == SINGLE:
            right = given == q.correct[0]
        elif q.kind == MULTIPLE:
            right = sorted(given or []) == sorted(q.correct)
        else:
            right = given is not None and abs(float(given) - float(q.correct[0])) < 1e-9
        earned += q.points if right else 0
    pct = round(earned * 100 / total) if total else 0
    return pct, pct >= activity.pass_pct


# ---------------------------------------------------------------- the learner's side


@dataclass(frozen=True)
class Place:
    """A learner's standing with one activity: their session, its window, their latest work."""

    activity: Activity
    session: TrainingSession
    opens: datetime
    closes: datetime
    submission: ActivitySubmission | None
    attempts: int

    @property
    def done(self) -> bool:
        return is_done(self.activity, self.submission)

    def is_open(self, now: datetime) -> bool:
        return self.opens <= now and (now <= self.closes or self.activity.allow_late)


def is_done(activity: Activity, submission: ActivitySubmission | None) -> bool:
    """What completion asks: submitted (pre-work, survey), passed (quiz), confirmed (report)."""
    if submission is None:
        return False
    if activity.kind == QUIZ:
        return bool(submission.passed)
    if activity.kind == REPORT:
        return submission.status == CONFIRMED
    return submission.status in (SUBMITTED, CONFIRMED)


def left_to_do(activity: Activity, submissions: list[ActivitySubmission]) -> bool:
    """Whether the learner can still do something toward the activity (``submissions``: theirs
    for one session): not done, no report waiting for its review, a quiz attempt left (or one
    under way). What a reminder is about."""
    if any(is_done(activity, s) for s in submissions):
        return False
    if activity.kind == REPORT and any(s.status == SUBMITTED for s in submissions):
        return False
    if activity.kind == QUIZ and len(submissions) >= activity.max_attempts:
        return any(s.status == DRAFT for s in submissions)
    return True


def answers_revealed(place: Place, now: datetime) -> bool:
    """Whether a quiz's review shows the right answers (when the trainer asks for it): only
    once they can help nobody pass — no late answers are taken (anyone of the course who has
    not answered yet could answer late with them: they wait until the trainer stops taking
    late answers), and the window has closed for the learner (no other attempt then) and for
    every session of the course (an earlier session's learners would pass them on to a later
    one's)."""
    activity = place.activity
    if activity.kind != QUIZ or not activity.show_answers or activity.allow_late:
        return False
    attempt = place.submission
    if attempt is None or attempt.status == DRAFT:
        return False
    last = last_close(activity)
    return now > place.closes and (last is None or now > last)


def _member_of(user) -> StaffMember:
    member = db.session.scalar(select(StaffMember).where(StaffMember.user_id == user.id))
    if member is None:
        raise NotAllowed(_("職員名簿にあなたの登録がないため、回答できません。"))
    return member


def _latest(submissions: list[ActivitySubmission], session_id: int) -> tuple[ActivitySubmission | None, int]:
    """The attempt that stands for the session (a passed one, else the latest), and how many."""
    rows = sorted((s for s in submissions if s.session_id == session_id), key=lambda s: s.attempt, reverse=True)
    if not rows:
        return None, 0
    passed = next((r for r in rows if r.passed), None)  # a passed attempt stands
    return passed or rows[0], len(rows)


def place_of(activity: Activity, user, member: StaffMember | None = None) -> Place:
    """The learner's standing, or NotAllowed if they hold no place in the course."""
    if not activity.published:
        raise NotFound(_("課題が見つかりません。"))
    member = member or _member_of(user)
    sessions = learner_sessions(activity.course_id, member.id)
    if not sessions:
        raise NotAllowed(_("この研修の受講が決まっている人だけが回答できます。"))
    submissions = list(db.session.scalars(select(ActivitySubmission).where(
        ActivitySubmission.activity_id == activity.id, ActivitySubmission.staff_member_id == member.id,
        ActivitySubmission.session_id.in_([s.id for s in sessions]))))
    session = choose_session(activity, sessions, submissions, utcnow())
    opens, closes = window(activity, session)
    submission, attempts = _latest(submissions, session.id)
    return Place(activity, session, opens, closes, submission, attempts)


def _lock_member(user) -> StaffMember:
    begin_write()
    member = db.session.scalar(select(StaffMember).where(StaffMember.user_id == user.id).with_for_update()
                               .execution_options(populate_existing=True))
    if member is None:
        raise NotAllowed(_("職員名簿にあなたの登録がないため、回答できません。"))
    return member


def _check_window(place: Place, now: datetime) -> bool:
    """Raises when the activity is not open now; returns whether the answer is late."""
    if now < place.opens:
        raise Conflict(_("まだ回答できません。%(when)s から回答できます。", when=format_tokyo(place.opens)))
    if now > place.closes:
        if not place.activity.allow_late:
            raise Conflict(_("回答の受付は %(when)s に締め切りました。", when=format_tokyo(place.closes)))
        return True
    return False


class StaleAttempt(Conflict):
    """Answers sent from a page of an earlier quiz attempt than the one now open: the page to
    show is the open attempt's own (not the earlier page's answers in its form)."""


@dataclass(frozen=True)
class Upload:
    """A file posted for a file question: a seekable stream and the name the browser gave."""

    stream: IO[bytes]
    filename: str


def save(activity_id: int, user, raw: dict[str, list[str]], *, submit: bool, uploads: dict[int, Upload] | None = None,
         remove: set[int] | frozenset[int] = frozenset(),
         attempt: int | None = None) -> tuple[ActivitySubmission, dict[int, str]]:
    """Save the learner's answers as a draft, or submit them (checked in full; a quiz is
    scored, an anonymous survey's answers go where nobody can trace them: it keeps no draft,
    not even the valid part of a refused submission). ``uploads``: files
    posted for file questions (each replaces the one held); ``remove``: file questions whose
    file is taken away. Returns the submission and the messages of the answers refused
    (nothing is submitted then; what was valid is kept as the draft, files included).
    ``attempt``: the quiz attempt the page was showing (its number); answers sent for another
    one are refused (a tab left open on a finished attempt, its timer submitting, must not
    hand in the attempt begun since in another tab). The caller commits."""
    now = utcnow()
    member = _lock_member(user)
    activity = db.session.get(Activity, activity_id)
    if activity is None:
        raise NotFound(_("課題が見つかりません。"))
    place = place_of(activity, user, member)
    current = place.submission
    # A report returned to its writer may be sent again after the close (marked late): the
    # office's review often comes after the window, and the writer must be able to finish.
    # A quiz attempt started in time is answered until its own deadline (``deadline_of``): the
    # window was checked when it began.
    if is_rewrite(current):
        late = now > place.closes
    elif activity.kind == QUIZ and current is not None and current.status == DRAFT:
        late = as_utc(current.started_at) > place.closes
    else:
        late = _check_window(place, now)
    timed_out = False
    if activity.kind == QUIZ:
        if current is not None and current.status != DRAFT:  # (another tab handed this attempt in)
            raise Conflict(_("この受験はすでに提出され、採点されています。もう一度受験できる場合は「受験を始める」から始めてください。"))
        if current is None:
            raise Conflict(_("確認テストは「受験を始める」から始めてください。"))
        if attempt is not None and attempt != current.attempt:
            raise StaleAttempt(_("このページの回答は%(old)d回目の受験のものです。いまは%(now)d回目を受験中のため、受け付けませんでした。"
                             "ページを開き直して、%(now)d回目の問題に回答してください。", old=attempt, now=current.attempt))
        expired = _expired(activity, current, now)
        deadline = deadline_of(activity, current)
        timed_out = submit and deadline is not None and now > deadline  # (the page submits at the time)
    else:
        expired = False
        if current is not None and current.status in (SUBMITTED, CONFIRMED):
            raise Conflict(_("この課題はすでに提出しています。提出した回答は変更できません。"))
        if activity.anonymous and not submit:  # (answers kept with a person until submitted: no)
            raise Conflict(_("無記名のアンケートは下書きを保存できません。回答は提出したときにだけ、誰のものか分からない形で保存します。"))
    questions = ordered_questions(activity, current)
    if current is None:
        current = ActivitySubmission(activity_id=activity.id, staff_member_id=member.id,
                                     municipality_id=member.municipality_id, session_id=place.session.id, attempt=1,
                                     status=DRAFT, answers={}, started_at=now)
        db.session.add(current)
    errors: dict[int, str] = {}
    if expired:  # the time is up: what was saved in time is what counts
        answers = dict(current.answers or {})
        submit = True
    elif timed_out:  # within the grace period: the answers as they stand, the unanswered wrong
        answers, _ignored = clean_answers(activity, raw, final=False, questions=questions)
    else:
        attached, errors = _attach(activity, current, questions, uploads or {}, remove)
        answers, errors = clean_answers(activity, raw, final=submit, questions=questions, attached=attached,
                                        errors=errors)
    if errors and activity.anonymous:
        # Nothing kept with the person: the page shows again what was typed, from the form.
        if current in db.session.new:
            db.session.expunge(current)
        else:
            current.answers = {}
        return current, errors
    if errors:
        kept = {k: v for k, v in (current.answers or {}).items() if k in {str(q.id) for q in questions}}
        kept.update(answers)
        for q in questions:  # a file taken away stays away
            if q.kind == FILE and str(q.id) not in answers:
                kept.pop(str(q.id), None)
        current.answers = kept
        db.session.flush()
        return current, errors
    current.answers = answers
    if not submit:
        db.session.flush()
        return current, {}
    current.status = SUBMITTED
    current.submitted_at = now
    current.late = late
    current.review_comment = current.review_comment if activity.kind == REPORT else ""
    if activity.kind == QUIZ:
        current.score_pct, current.passed = score(activity, answers, questions)
    if activity.anonymous:
        db.session.add(AnonymousAnswer(id=uuid.uuid4().hex, activity_id=activity.id, session_id=place.session.id,
                                       answers=answers, submitted_on=today_tokyo()))
        current.answers = None
    db.session.flush()
    _changed(current)
    return current, {}


def _attach(activity: Activity, submission: ActivitySubmission, questions: list[ActivityQuestion],
            uploads: dict[int, Upload], remove: set[int] | frozenset[int]) -> tuple[dict[str, dict], dict[int, str]]:
    """The files the answer holds after this post: a new upload replaces the one held (whose
    stored object goes once the change is committed), a removal takes it away; a refused file
    leaves the one held in place, with the reason."""
    held = {int(k): v for k, v in (submission.answers or {}).items() if isinstance(v, dict) and "file" in v}
    attached: dict[str, dict] = {}
    errors: dict[int, str] = {}
    for q in questions:
        if q.kind != FILE:
            continue
        value = held.get(q.id)
        upload = uploads.get(q.id)
        if upload is not None:
            if submission.id is None:
                db.session.flush()  # (the file's row names the submission)
            try:
                row = files.store(upload.stream, upload.filename, activity_id=activity.id,
                                  submission_id=submission.id, question_id=q.id)
            except InvalidInput as exc:
                errors[q.id] = exc.message
            else:
                db.session.add(row)
                db.session.flush()
                _drop_file(value)
                value = {"file": row.id, "name": row.filename, "size": row.size}
        elif q.id in remove:
            _drop_file(value)
            value = None
        if value is not None:
            attached[str(q.id)] = value
    return attached, errors


def _drop_file(value: dict | None) -> None:
    if not value:
        return
    row = db.session.get(ActivityFile, value.get("file"))
    if row is not None:
        files.forget(row)
        db.session.delete(row)


def file_for(user, file_id: int) -> ActivityFile:
    """An attached file, for its writer, the reviewers of the report it belongs to and the
    course's managers; NotFound for anyone else (as if it did not exist)."""
    row = db.session.get(ActivityFile, file_id)
    if row is None:
        raise NotFound(_("ファイルが見つかりません。"))
    submission = row.submission
    owner = db.session.scalar(select(StaffMember.user_id).where(StaffMember.id == submission.staff_member_id))
    if owner == user.id or can_manage_course(user, submission.activity.course) or (
            submission.activity.kind == REPORT and submission.status != DRAFT and is_reviewer(user, submission)):
        return row
    raise NotFound(_("ファイルが見つかりません。"))


def time_is_up(activity: Activity, attempt: ActivitySubmission, now: datetime) -> bool:
    """An attempt past its deadline and the grace: answers given now no longer count."""
    return _expired(activity, attempt, now)


def _expired(activity: Activity, attempt: ActivitySubmission, now: datetime) -> bool:
    deadline = deadline_of(activity, attempt)
    return deadline is not None and now > deadline + GRACE


def ran_out(activity: Activity, attempt: ActivitySubmission) -> str:
    """How a quiz attempt with a deadline was scored: "" in time; "at_time" when submitted at
    its deadline (within the grace: the answers as they stood); "late" after it (what was
    saved in time)."""
    submitted = as_utc(attempt.submitted_at)
    deadline = deadline_of(activity, attempt)
    if submitted is None or deadline is None or submitted <= deadline:
        return ""
    return "late" if _expired(activity, attempt, submitted) else "at_time"


def deadline_of(activity: Activity, attempt: ActivitySubmission) -> datetime | None:
    """Until when an attempt takes answers: its time limit, and the window's close for one
    started before it (no late answers taken) — an attempt begun in time is then scored with
    what was saved by its deadline, not refused. None: no deadline."""
    started = as_utc(attempt.started_at)
    assert started is not None
    ends = []
    if activity.time_limit_minutes:
        ends.append(started + timedelta(minutes=activity.time_limit_minutes))
    if not activity.allow_late and attempt.session is not None:
        closes = window(activity, attempt.session)[1]
        if started <= closes:
            ends.append(closes)
    return min(ends, default=None)


def closed_first(activity: Activity, attempt: ActivitySubmission) -> bool:
    """The attempt's deadline was the window's close, not its time limit."""
    deadline = deadline_of(activity, attempt)
    started = as_utc(attempt.started_at)
    assert started is not None
    return deadline is not None and (not activity.time_limit_minutes
                                     or deadline < started + timedelta(minutes=activity.time_limit_minutes))


def ordered_questions(activity: Activity, attempt: ActivitySubmission | None) -> list[ActivityQuestion]:
    """The questions in the order this attempt shows them (a quiz may shuffle them, once)."""
    questions = list(activity.questions)
    order = list(attempt.question_order or []) if attempt is not None else []
    if order:
        by_id = {q.id: q for q in questions}
        shown = [by_id[i] for i in order if i in by_id]
        if activity.kind == QUIZ and activity.draw_count:  # the attempt asks what it drew, no more
            return shown
        return shown + [q for q in questions if q.id not in set(order)]
    return questions


def choice_order(question: ActivityQuestion, attempt: ActivitySubmission | None) -> list[int]:
    """The order a question's choices are shown in (shuffled per attempt when the quiz asks)."""
    indexes = list(range(len(question.choices)))
    if attempt is not None and attempt.question_order and question.activity.shuffle:
        random.Random(f"{attempt.id}:{question.id}").shuffle(indexes)
    return indexes


def start_attempt(activity_id: int, user) -> ActivitySubmission:
    """Start a quiz attempt: the one under way if there is one (a second tab or a replayed
    request adds none), else the next while attempts remain. The caller commits."""
    now = utcnow()
    member = _lock_member(user)
    activity = db.session.get(Activity, activity_id)
    if activity is None or activity.kind != QUIZ:
        raise NotFound(_("課題が見つかりません。"))
    place = place_of(activity, user)
    current = place.submission
    if current is not None and current.passed:
        raise Conflict(_("この確認テストには合格しています。"))
    if current is not None and current.status == DRAFT:
        if not _expired(activity, current, now):
            return current
        save(activity_id, user, {}, submit=True)  # time ran out: it is scored as saved
        place = place_of(activity, user)
        if place.submission is not None and (place.submission.passed or not place.is_open(now)):
            return place.submission  # (the learner sees the score)
    _check_window(place, now)
    if place.attempts >= activity.max_attempts:
        raise Conflict(ngettext("受験できる回数（%(n)d回）を使い切りました。", "受験できる回数（%(n)d回）を使い切りました。",
                                activity.max_attempts, n=activity.max_attempts))
    order = [q.id for q in activity.questions]
    scored = [q.id for q in scored_questions(activity)]
    if activity.draw_count and activity.draw_count < len(scored):
        # Draw among the scored questions; the others (a free comment, say) are always asked.
        drawn = set(random.SystemRandom().sample(scored, activity.draw_count))
        order = [q.id for q in activity.questions if q.kind != SECTION and (q.id in drawn or q.id not in scored)]
    attempt = ActivitySubmission(activity_id=activity.id, staff_member_id=member.id,
                                 municipality_id=member.municipality_id, session_id=place.session.id,
                                 attempt=place.attempts + 1, status=DRAFT, answers={}, started_at=now)
    db.session.add(attempt)
    db.session.flush()
    if activity.shuffle:
        random.Random(attempt.id).shuffle(order)
    attempt.question_order = order
    record_action(user, "activity.attempt", "activity", activity.id, member.municipality_id, attempt=attempt.attempt)
    return attempt


def is_rewrite(submission: ActivitySubmission | None) -> bool:
    """A returned report its writer is rewriting (a draft that has been reviewed)."""
    return (submission is not None and submission.status == DRAFT and submission.reviewed_at is not None
            and submission.activity.kind == REPORT)


def reopen_returned(activity_id: int, user) -> ActivitySubmission:
    """A returned report becomes the writer's draft again (its answers kept)."""
    _lock_member(user)
    activity = db.session.get(Activity, activity_id)
    if activity is None:
        raise NotFound(_("課題が見つかりません。"))
    place = place_of(activity, user)
    if place.submission is None or place.submission.status != RETURNED:
        # (only a report is ever returned: for a survey, a quiz or pre-work the words say so)
        raise Conflict(_("この報告は差し戻されていません。") if activity.kind == REPORT
                       else _("差し戻しがあるのは受講報告だけです。この課題は書き直せません。"))
    place.submission.status = DRAFT
    return place.submission


# ---------------------------------------------------------------- reports (受講報告)


CONFIRM, RETURN = "confirm", "return"


def review_report(submission_id: int, actor, decision: str, comment: str = "") -> ActivitySubmission:
    """確認 or 差し戻し of a submitted report (with the comment the writer is told; required
    when returning). The caller commits."""
    comment = (comment or "").strip()[:2000]
    begin_write()
    submission = db.session.scalar(select(ActivitySubmission).where(ActivitySubmission.id == submission_id)
                                   .with_for_update().execution_options(populate_existing=True))
    if submission is None or submission.activity.kind != REPORT:
        raise NotFound(_("報告が見つかりません。"))
    if is_own(actor, submission):
        raise NotAllowed(_("自分の受講報告は確認・差し戻しできません。ほかの研修担当に依頼してください。"))
    if not is_reviewer(actor, submission):
        raise NotFound(_("報告が見つかりません。"))
    if submission.status != SUBMITTED:
        raise Conflict(_("この報告は確認待ちではありません。"))
    if decision == RETURN and not comment:
        raise InvalidInput(_("差し戻す理由を入力してください。"), field="comment")
    if decision not in (CONFIRM, RETURN):
        raise InvalidInput(_("確認するか差し戻すかを選んでください。"))
    submission.status = CONFIRMED if decision == CONFIRM else RETURNED
    submission.review_comment = comment
    submission.reviewed_by_id = actor.id
    submission.reviewed_at = utcnow()
    db.session.flush()
    record_action(actor, "activity.report_confirm" if decision == CONFIRM else "activity.report_return",
                  "activity_submission", submission.id, submission.municipality_id, comment=comment)
    _changed(submission)
    if decision == RETURN:
        signals.report_returned.send(submission, comment=comment, actor=actor)
    return submission


def reports_to_review(actor, *, status: str = SUBMITTED, limit: int = 200, offset: int = 0) -> list[ActivitySubmission]:
    """The reports ``actor`` reviews, oldest first (``limit`` of them after the first
    ``offset``): their municipality's (training office), the prefecture's staff in their own
    courses (trainer), everyone's (platform admin); never their own. Each with its activity,
    the activity's course and questions (one statement more, however many activities)."""
    query = _reports_query(actor, status)
    if query is None:
        return []
    activity = contains_eager(ActivitySubmission.activity)  # (the query joins it already)
    return list(db.session.scalars(
        query.options(activity.joinedload(Activity.course), activity.selectinload(Activity.questions))
        .order_by(ActivitySubmission.submitted_at, ActivitySubmission.id).offset(offset).limit(limit)))


def count_reports_to_review(actor, *, status: str = SUBMITTED) -> int:
    """How many reports ``reports_to_review`` has in all (the page shows them a page at a time)."""
    query = _reports_query(actor, status)
    if query is None:
        return 0
    return db.session.scalar(select(func.count()).select_from(query.subquery())) or 0


def _reports_query(actor, status: str):
    own = select(StaffMember.id).where(StaffMember.user_id == actor.id)
    query = (select(ActivitySubmission).join(Activity, Activity.id == ActivitySubmission.activity_id)
             .where(Activity.kind == REPORT, ActivitySubmission.status == status,
                    ActivitySubmission.staff_member_id.not_in(own)))
    if actor.has_role(PLATFORM_ADMIN):
        return query
    scopes = []
    if actor.has_role(MUNICIPAL_ADMIN) and actor.municipality_id is not None:
        scopes.append(ActivitySubmission.municipality_id == actor.municipality_id)
    prefecture_ids = list(db.session.scalars(select(Municipality.id).where(Municipality.kind == "都道府県")))
    if prefecture_ids:
        scopes.append(ActivitySubmission.municipality_id.in_(prefecture_ids)
                      & Activity.course_id.in_(select(Course.id).where(Course.owner_id == actor.id)))
    if not scopes:
        return None
    return query.where(or_(*scopes))


# ---------------------------------------------------------------- completion


def _changed(submission: ActivitySubmission) -> None:
    """Completion follows a required activity's submission (an optional one changes nothing)."""
    if submission.activity.required:
        signals.activity_changed.send(None, staff_member_id=submission.staff_member_id,
                                      session_id=submission.session_id)


def unmet_required(staff_member_id: int, course_id: int, fiscal_year: int,
                   granted_at: datetime | None = None) -> tuple[list[Activity], datetime | None]:
    """The course's required (published) activities the staff member has not done for a
    session of ``fiscal_year``, and when the last of those done was done. Three statements.

    An activity that became a requirement after its window had closed for every one of the
    learner's places of the year does not count for them: they never saw it (a test added after
    the course ran takes no completion back). Nor does one that became a requirement after the
    learner's completion was first granted (``granted_at``): a certificate issued stands on
    what was asked when it was earned, whoever's completion is looked at again and when."""
    activities = list(db.session.scalars(select(Activity).where(
        Activity.course_id == course_id, Activity.required.is_(True), Activity.published.is_(True))))
    if not activities:
        return [], None
    start, end = fiscal_year_bounds(fiscal_year)
    places = [s for s in learner_sessions(course_id, staff_member_id) if start <= as_utc(s.starts_at) < end]
    activities = [a for a in activities if counts_for(a, places, granted_at)]
    if not activities:
        return [], None
    rows = list(db.session.scalars(
        select(ActivitySubmission).join(TrainingSession, TrainingSession.id == ActivitySubmission.session_id)
        .where(ActivitySubmission.staff_member_id == staff_member_id,
               ActivitySubmission.activity_id.in_([a.id for a in activities]),
               TrainingSession.starts_at >= start, TrainingSession.starts_at < end)))
    missing, last = [], None
    for activity in activities:
        done = [s for s in rows if s.activity_id == activity.id and is_done(activity, s)]
        if not done:
            missing.append(activity)
            continue
        when = min(as_utc(s.reviewed_at or s.submitted_at) or utcnow() for s in done)
        last = when if last is None or when > last else last
    return missing, last


def counts_for(activity: Activity, places: list[TrainingSession], granted_at: datetime | None) -> bool:
    """Whether an activity is a requirement of a learner's completion (the one rule of
    ``unmet_required``, for the learner's pages too): required and published, not made one
    after their completion was first granted, and open for one of their ``places`` of the year
    when it became one."""
    return (counts_toward_completion(activity) and not _required_after(activity, as_utc(granted_at))
            and _applies(activity, places))


def granted_moments(staff_member_id: int, course_ids: list[int]) -> dict[tuple[int, int], datetime]:
    """{(course_id, fiscal_year): when first granted} of the learner's completions (asked of
    the completion area, which sits above this one)."""
    moments: dict[tuple[int, int], datetime] = {}
    for _receiver, answer in signals.completion_granted_at.send(None, staff_member_id=staff_member_id,
                                                                 course_ids=course_ids):
        moments.update(answer or {})
    return moments


def required_for(activity: Activity, staff_member_id: int, session: TrainingSession) -> bool:
    """Whether the activity counts for the completion of the learner whose place is ``session``."""
    if not counts_toward_completion(activity):
        return False
    year = fiscal_year_of(session.starts_at)
    start, end = fiscal_year_bounds(year)
    places = [s for s in learner_sessions(activity.course_id, staff_member_id) if start <= as_utc(s.starts_at) < end]
    return counts_for(activity, places, granted_moments(staff_member_id, [activity.course_id]).get(
        (activity.course_id, year)))


def _required_after(activity: Activity, moment: datetime | None) -> bool:
    since = as_utc(activity.required_since)
    return since is not None and moment is not None and since > moment


def _applies(activity: Activity, places: list[TrainingSession]) -> bool:
    """Whether a required activity counts for a learner with these places: its window was open
    for one of them when it became a requirement (always, before that time was kept)."""
    since = as_utc(activity.required_since)
    if since is None or not places:
        return True
    return any(window(activity, place)[1] > since for place in places)


# ---------------------------------------------------------------- to-dos


@dataclass(frozen=True)
class Todo:
    activity: Activity
    session: TrainingSession
    opens: datetime
    closes: datetime
    status: str  # "", DRAFT, SUBMITTED, CONFIRMED, RETURNED; "passed"/"failed" for a quiz
    done: bool
    required: bool = False  # a requirement of this learner's completion (``counts_for``)


def todos(staff_member_id: int, course_id: int | None = None) -> list[Todo]:
    """The learner's activities (published) in the courses they hold a confirmed place in,
    soonest closing first, each saying whether it counts for their completion; three
    statements (four when one is required)."""
    places = db.session.execute(
        select(TrainingSession, Enrollment.id).join(Enrollment, Enrollment.session_id == TrainingSession.id)
        .where(Enrollment.staff_member_id == staff_member_id, Enrollment.status == PLACE_CONFIRMED,
               Enrollment.source != SERIES, TrainingSession.makeup_for_id.is_(None),
               *([TrainingSession.course_id == course_id] if course_id else []))
        .order_by(TrainingSession.starts_at.desc())).all()
    by_course: dict[int, list[TrainingSession]] = {}
    for session, _eid in places:
        by_course.setdefault(session.course_id, []).append(session)
    if not by_course:
        return []
    activities = list(db.session.scalars(select(Activity).where(
        Activity.course_id.in_(list(by_course)), Activity.published.is_(True))
        .order_by(Activity.course_id, Activity.position, Activity.id)))
    subs = list(db.session.scalars(select(ActivitySubmission).where(
        ActivitySubmission.staff_member_id == staff_member_id,
        ActivitySubmission.activity_id.in_([a.id for a in activities]))
        .order_by(ActivitySubmission.attempt))) if activities else []
    out = []
    now = utcnow()
    granted = granted_moments(staff_member_id, list(by_course)) if any(a.required for a in activities) else {}
    for activity in activities:
        own = [s for s in subs if s.activity_id == activity.id]
        session = choose_session(activity, by_course[activity.course_id], own, now)
        year = fiscal_year_of(session.starts_at)
        year_places = [s for s in by_course[activity.course_id] if fiscal_year_of(s.starts_at) == year]
        required = counts_for(activity, year_places, granted.get((activity.course_id, year)))
        mine = [s for s in own if s.session_id == session.id]
        best = next((s for s in mine if s.passed), mine[-1] if mine else None)
        opens, closes = window(activity, session)
        status = best.status if best is not None else ""
        if activity.kind == QUIZ and best is not None and best.status == SUBMITTED:
            status = "passed" if best.passed else "failed"
        out.append(Todo(activity, session, opens, closes, status, is_done(activity, best), required))
    return sorted(out, key=lambda t: (t.done, t.closes))


def reorder_anonymous_answers() -> bool:
    """Rewrite the anonymous answers' table in the order of its random keys (PostgreSQL's
    CLUSTER), so that where an answer lies on disk no longer follows when it came, and so
    which named submission it was. PostgreSQL appends a new row where there is room; SQLite
    keeps the table in key order already (WITHOUT ROWID) and is left alone. True if rewritten.

    CLUSTER holds the table for the moment of the rewrite: a submission waits for it, and the
    rewrite gives way (lock_timeout) rather than keep submissions waiting behind a long one."""
    if is_sqlite():
        return False
    db.session.execute(text("SET LOCAL lock_timeout = '10s'"))
    db.session.execute(text("CLUSTER activity_anonymous_answer USING pk_activity_anonymous_answer"))
    db.session.commit()
    return True
