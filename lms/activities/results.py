"""An activity's results for its trainer: counts and charts per question, free text without
names, and the answers as Excel — per session or across sessions.

An anonymous survey shows a group only when it has at least ``MIN_GROUP`` answers: a session
with fewer is not shown on its own (across sessions its answers are counted under 「その他の回」
in the per-session table, and in the totals only when those are at least ``MIN_GROUP`` too).
Answers are read without any person and listed in an order that says nothing about who or
when (free text sorted, export rows in the order of their random keys)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import func, select

from lms.activities.models import (
    CONFIRMED,
    DATE,
    FILE,
    LONGTEXT,
    MULTIPLE,
    NUMBER,
    SCALE,
    SECTION,
    SINGLE,
    SUBMITTED,
    TEXT,
    Activity,
    ActivitySubmission,
    AnonymousAnswer,
)
from lms.common.xlsx import SheetColumn, xlsx_stream
from lms.courses.models import TrainingSession
from lms.extensions import db

MIN_GROUP = 5
# Free-text answers listed on the page: identical ones counted once, the most frequent first,
# at most this many different ones (all of them are in the Excel export).
SHOWN_TEXTS = 200


@dataclass
class QuestionResult:
    question_id: int
    kind: str
    prompt: str
    answered: int = 0
    counts: list[tuple[str, int]] = field(default_factory=list)  # choice/scale: (label, answers)
    texts: list[tuple[str, int]] = field(default_factory=list)  # (text, how many gave it), most given first
    more_texts: int = 0  # different texts not listed (beyond SHOWN_TEXTS)
    mean: float | None = None  # number, scale
    low: float | None = None
    high: float | None = None


@dataclass
class Results:
    total: int
    shown: bool  # false: fewer answers than an anonymous survey may show
    questions: list[QuestionResult]
    by_session: list[tuple[TrainingSession | None, int]]  # None: 「その他の回」 (small groups, merged)


def _answers(activity: Activity, session_id: int | None) -> list[dict]:
    if activity.anonymous:
        query = select(AnonymousAnswer.answers).where(AnonymousAnswer.activity_id == activity.id)
        if session_id is not None:
            query = query.where(AnonymousAnswer.session_id == session_id)
        return [a or {} for a in db.session.scalars(query.order_by(AnonymousAnswer.id))]
    # One answer per person and session: their latest submitted one (a quiz: its last attempt).
    latest = (select(func.max(ActivitySubmission.id))
              .where(ActivitySubmission.activity_id == activity.id,
                     ActivitySubmission.status.in_([SUBMITTED, CONFIRMED]))
              .group_by(ActivitySubmission.staff_member_id, ActivitySubmission.session_id))
    if session_id is not None:
        latest = latest.where(ActivitySubmission.session_id == session_id)
    return [a or {} for a in db.session.scalars(
        select(ActivitySubmission.answers).where(ActivitySubmission.id.in_(latest)).order_by(ActivitySubmission.id))]


def counts_by_session(activity: Activity) -> list[tuple[TrainingSession | None, int]]:
    if activity.anonymous:
        rows = db.session.execute(select(AnonymousAnswer.session_id, func.count()).where(
            AnonymousAnswer.activity_id == activity.id).group_by(AnonymousAnswer.session_id)).all()
    else:
        rows = db.session.execute(select(ActivitySubmission.session_id, func.count(func.distinct(
            ActivitySubmission.staff_member_id))).where(
            ActivitySubmission.activity_id == activity.id, ActivitySubmission.status.in_([SUBMITTED, CONFIRMED]))
            .group_by(ActivitySubmission.session_id)).all()
    sessions = {s.id: s for s in db.session.scalars(select(TrainingSession).where(
        TrainingSession.id.in_([sid for sid, _n in rows])))} if rows else {}
    out: list[tuple[TrainingSession | None, int]] = []
    merged = 0
    for sid, n in sorted(rows, key=lambda r: (sessions[r[0]].starts_at, r[0])):
        if activity.anonymous and n < MIN_GROUP:
            merged += n
        else:
            out.append((sessions[sid], int(n)))
    if merged >= MIN_GROUP:  # (a merged group still under the minimum is not shown at all)
        out.append((None, merged))
    return out


def results(activity: Activity, session_id: int | None = None) -> Results:
    answers = _answers(activity, session_id)
    total = len(answers)
    shown = not activity.anonymous or total >= MIN_GROUP
    questions = []
    for q in activity.questions:
        if q.kind == SECTION:
            continue
        result = QuestionResult(q.id, q.kind, q.prompt)
        values: list = [v for v in (a.get(str(q.id)) for a in answers) if v is not None]
        result.answered = len(values)
        if shown:
            if q.kind in (SINGLE, SCALE):
                tally = Counter(int(v) for v in values)
                offset = 1 if q.kind == SCALE else 0
                result.counts = [(label, tally.get(i + offset, 0)) for i, label in enumerate(q.choices)]
            elif q.kind == MULTIPLE:
                tally = Counter(int(i) for v in values for i in v)
                result.counts = [(label, tally.get(i, 0)) for i, label in enumerate(q.choices)]
            elif q.kind in (TEXT, LONGTEXT, DATE):
                ranked = sorted(Counter(str(v) for v in values).items(), key=lambda item: (-item[1], item[0]))
                result.texts, result.more_texts = ranked[:SHOWN_TEXTS], max(0, len(ranked) - SHOWN_TEXTS)
            if q.kind in (NUMBER, SCALE) and values:
                numbers = [float(v) for v in values]
                result.mean = round(sum(numbers) / len(numbers), 2)
                result.low, result.high = min(numbers), max(numbers)
        questions.append(result)
    return Results(total, shown, questions, counts_by_session(activity) if session_id is None else [])


def workbook(activity: Activity, session_id: int | None = None):
    """The answers as Excel: one row per answer, one column per question, no names."""
    questions = [q for q in activity.questions if q.kind != SECTION]
    answers = _answers(activity, session_id)
    if activity.anonymous and len(answers) < MIN_GROUP:
        answers = []  # too few to show without pointing at someone

    def cell(q, value):
        if value is None:
            return ""
        if q.kind == SINGLE:
            return q.choices[int(value)] if 0 <= int(value) < len(q.choices) else ""
        if q.kind == MULTIPLE:
            return "、".join(q.choices[int(i)] for i in value if 0 <= int(i) < len(q.choices))
        if q.kind == SCALE:
            return int(value)
        if q.kind == FILE:
            return value.get("name", "") if isinstance(value, dict) else ""
        return value

    rows = ([cell(q, a.get(str(q.id))) for q in questions] for a in answers)
    title = [f"{activity.course.title}：{activity.title}",
             _("回答 %(n)d 件（回答者の氏名は含みません）", n=len(answers))]
    return xlsx_stream(_("回答"), [SheetColumn(q.prompt[:60], 24) for q in questions], rows, title_lines=title)
