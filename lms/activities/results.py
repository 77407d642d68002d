"""An activity's results for its trainer: counts and charts per question, free text without
names, the files attached to answers (with who attached them; never on an anonymous survey,
which cannot ask for files), a quiz's takers, pass rate and scores, and the answers as Excel —
per session or across sessions.

Each person counts once per session: their latest submitted answer, or for a quiz the attempt
that decides (a passed attempt stands, as in ``services._latest``; else the latest one).

An anonymous survey shows a group only when it has at least ``MIN_GROUP`` answers: a session
with fewer is not shown on its own, and across sessions its answers count (in the per-session
table under 「その他の回」, in the totals, the charts, the free text and the export) only when
the small sessions' answers together are at least ``MIN_GROUP`` too — otherwise the totals minus
the sessions shown would be that small group's answers.
Answers are read without any person and listed in an order that says nothing about who or
when (free text sorted, export rows in the order of their random keys)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy import case, func, select

from lms.activities.models import (
    CONFIRMED,
    DATE,
    FILE,
    LONGTEXT,
    MULTIPLE,
    NUMBER,
    QUIZ,
    SCALE,
    SECTION,
    SINGLE,
    SUBMITTED,
    TEXT,
    Activity,
    ActivitySubmission,
    AnonymousAnswer,
)
from lms.common.i18n import page_language
from lms.common.xlsx import SheetColumn, xlsx_stream
from lms.courses.models import TrainingSession
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.roster.models import StaffMember

MIN_GROUP = 5
# Free-text answers listed on the page: identical ones counted once, the most frequent first,
# at most this many different ones (all of them are in the Excel export).
SHOWN_TEXTS = 200
# Attached files listed on the page per question (all of them, with their links, are in the export).
SHOWN_FILES = 200
# A quiz's score distribution: bands of this many points (the last one, 90–100, holds 100).
BAND = 10


@dataclass(frozen=True)
class AttachedFile:
    file_id: int
    name: str
    size: int
    person: str
    municipality: str


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
    files: list[AttachedFile] = field(default_factory=list)  # file: by municipality, then name
    more_files: int = 0  # files not listed (beyond SHOWN_FILES)


@dataclass
class QuizResult:
    takers: int  # people (per session) with a submitted attempt
    passed: int
    mean: float | None  # of the deciding attempts' scores (%)
    bands: list[tuple[str, int]]  # ("0〜9", people), … ("90〜100", people)

    @property
    def pass_rate(self) -> float | None:
        return round(self.passed * 100 / self.takers, 1) if self.takers else None


@dataclass
class Results:
    total: int
    shown: bool  # false: fewer answers than an anonymous survey may show
    questions: list[QuestionResult]
    by_session: list[tuple[TrainingSession | None, int]]  # None: 「その他の回」 (small groups, merged)
    quiz: QuizResult | None = None


@dataclass(frozen=True)
class Answer:
    """One person's counted answer for a session (an anonymous survey's: the answers only)."""

    answers: dict
    attempt: int | None = None
    score_pct: int | None = None
    passed: bool | None = None
    person: str = ""  # (only when asked for: ``people=True``)
    municipality: str = ""


def _answers(activity: Activity, session_id: int | None, *, people: bool = False,
             among: set[int] | None = None) -> list[Answer]:
    """The counted answers in one statement: per person and session their latest submitted
    answer, for a quiz the deciding attempt (the latest passed one, else the latest one).
    ``among``: across sessions, an anonymous survey's sessions whose answers may count."""
    if activity.anonymous:
        query = select(AnonymousAnswer.answers).where(AnonymousAnswer.activity_id == activity.id)
        if session_id is not None:
            query = query.where(AnonymousAnswer.session_id == session_id)
        elif among is not None:
            query = query.where(AnonymousAnswer.session_id.in_(sorted(among)))
        return [Answer(a or {}) for a in db.session.scalars(query.order_by(AnonymousAnswer.id))]
    sub = ActivitySubmission
    deciding = (select(func.coalesce(func.max(case((sub.passed.is_(True), sub.id))), func.max(sub.id)))
                .where(sub.activity_id == activity.id, sub.status.in_([SUBMITTED, CONFIRMED]))
                .group_by(sub.staff_member_id, sub.session_id))
    if session_id is not None:
        deciding = deciding.where(sub.session_id == session_id)
    if not people:
        rows = db.session.execute(select(sub.answers, sub.attempt, sub.score_pct, sub.passed)
                                  .where(sub.id.in_(deciding)).order_by(sub.id))
        return [Answer(a or {}, attempt, score, passed) for a, attempt, score, passed in rows]
    rows = db.session.execute(
        select(sub.answers, sub.attempt, sub.score_pct, sub.passed, StaffMember.full_name, Municipality.name)
        .join(StaffMember, StaffMember.id == sub.staff_member_id)
        .join(Municipality, Municipality.id == StaffMember.municipality_id)
        .where(sub.id.in_(deciding))
        .order_by(Municipality.code, StaffMember.full_name_kana, StaffMember.full_name, sub.id))
    return [Answer(a or {}, attempt, score, passed, name, town) for a, attempt, score, passed, name, town in rows]


def _file_value(value) -> dict | None:
    """An answer's attached file ({"file": id, "name", "size"}), or None."""
    return value if isinstance(value, dict) and isinstance(value.get("file"), int) else None


def quiz_result(answers: list[Answer]) -> QuizResult:
    scores = [a.score_pct for a in answers if a.score_pct is not None]
    tally = Counter(min(score // BAND, 100 // BAND - 1) for score in scores)
    top = 100 // BAND - 1
    to = "〜" if page_language() == "ja" else "–"  # (a range of numbers: 0〜9, 0–9)
    bands = [(f"{n * BAND}{to}{n * BAND + BAND - 1 if n < top else 100}", tally.get(n, 0)) for n in range(top + 1)]
    return QuizResult(takers=len(answers), passed=sum(1 for a in answers if a.passed),
                      mean=round(sum(scores) / len(scores), 1) if scores else None, bands=bands)


def counts_by_session(activity: Activity) -> list[tuple[TrainingSession | None, int]]:
    return _groups(activity)[0]


def _groups(activity: Activity) -> tuple[list[tuple[TrainingSession | None, int]], set[int] | None]:
    """(answers per session as the page shows them, the sessions whose answers count across
    sessions: an anonymous survey's groups of at least MIN_GROUP; None for every session)."""
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
    counted: set[int] = set()
    small: set[int] = set()
    for sid, n in sorted(rows, key=lambda r: (sessions[r[0]].starts_at, r[0])):
        if activity.anonymous and n < MIN_GROUP:
            merged += n
            small.add(sid)
        else:
            out.append((sessions[sid], int(n)))
            counted.add(sid)
    if merged >= MIN_GROUP:  # (a merged group still under the minimum is not shown at all)
        out.append((None, merged))
        counted |= small
    return out, (counted if activity.anonymous else None)


def results(activity: Activity, session_id: int | None = None) -> Results:
    # (an anonymous survey cannot ask for files: there is nobody to list them under)
    with_files = not activity.anonymous and any(q.kind == FILE for q in activity.questions)
    by_session, among = _groups(activity) if session_id is None else ([], None)
    answers = _answers(activity, session_id, people=with_files, among=among)
    total = len(answers)
    shown = not activity.anonymous or total >= MIN_GROUP
    given = [a.answers for a in answers]
    questions = []
    for q in activity.questions:
        if q.kind == SECTION:
            continue
        # (thousands of answers per question: the key is made once, the values taken in one pass)
        key = str(q.id)
        result = QuestionResult(q.id, q.kind, q.prompt)
        values: list = [v for answer in given if (v := answer.get(key)) is not None]
        result.answered = len(values)
        if q.kind == FILE and with_files:
            attached = [(a, f) for a in answers if (f := _file_value(a.answers.get(key))) is not None]
            result.files = [AttachedFile(f["file"], str(f.get("name", "")), int(f.get("size") or 0),
                                         a.person, a.municipality) for a, f in attached[:SHOWN_FILES]]
            result.more_files = max(0, len(attached) - SHOWN_FILES)
        if shown:
            if q.kind in (SINGLE, SCALE):
                tally: Counter[int] = Counter()
                for value, n in Counter(values).items():  # (counted as given, then read as numbers)
                    tally[int(value)] += n
                offset = 1 if q.kind == SCALE else 0
                result.counts = [(label, tally.get(i + offset, 0)) for i, label in enumerate(q.shown_choices)]
            elif q.kind == MULTIPLE:
                tally = Counter(int(i) for v in values for i in v)
                result.counts = [(label, tally.get(i, 0)) for i, label in enumerate(q.choices)]
            elif q.kind in (TEXT, LONGTEXT, DATE):
                ranked = sorted(Counter(map(str, values)).items(), key=lambda item: (-item[1], item[0]))
                result.texts, result.more_texts = ranked[:SHOWN_TEXTS], max(0, len(ranked) - SHOWN_TEXTS)
            if q.kind in (NUMBER, SCALE) and values:
                numbers = list(map(float, values))
                result.mean = round(sum(numbers) / len(numbers), 2)
                result.low, result.high = min(numbers), max(numbers)
        questions.append(result)
    return Results(total, shown, questions, by_session, quiz_result(answers) if activity.kind == QUIZ else None)


def workbook(activity: Activity, session_id: int | None = None, *, file_url: Callable[[int], str] | None = None):
    """The answers as Excel: one row per answer, one column per question, no names; a quiz's
    rows begin with the deciding attempt's number, score and result, and a file question's
    column is followed by the file's download address (``file_url``: an attachment id's
    absolute URL, asked for while the request is still there — the rows are written later)."""
    questions = [q for q in activity.questions if q.kind != SECTION]
    among = _groups(activity)[1] if activity.anonymous and session_id is None else None
    answers = _answers(activity, session_id, among=among)
    held_back = activity.anonymous and len(answers) < MIN_GROUP
    if held_back:
        answers = []  # too few to show without pointing at someone (the title says so, as the page does)
    quiz = activity.kind == QUIZ
    links = not activity.anonymous and file_url is not None
    urls: dict[int, str] = {}
    if links and file_url is not None:
        for a in answers:
            for q in questions:
                if q.kind == FILE and (f := _file_value(a.answers.get(str(q.id)))) is not None:
                    urls[f["file"]] = file_url(f["file"])
    passed_label, failed_label = _("合格"), _("不合格")

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

    def row(a: Answer) -> list:
        out: list = []
        if quiz:
            out += [a.attempt, a.score_pct, "" if a.passed is None else passed_label if a.passed else failed_label]
        for q in questions:
            value = a.answers.get(str(q.id))
            out.append(cell(q, value))
            if q.kind == FILE and links:
                f = _file_value(value)
                out.append(urls.get(f["file"], "") if f is not None else "")
        return out

    columns = [SheetColumn(_("受験回"), 8), SheetColumn(_("得点（%）"), 10), SheetColumn(_("合否"), 8)] if quiz else []
    for q in questions:
        columns.append(SheetColumn(q.prompt[:60], 24))
        if q.kind == FILE and links:
            columns.append(SheetColumn(_("%(q)s（ダウンロード URL）", q=q.prompt[:40]), 40))
    title = [f"{activity.course.title}：{activity.title}",
             _("回答が%(n)d件未満のため、結果は表示しません。", n=MIN_GROUP) if held_back
             else _("回答 %(n)d 件（回答者の氏名は含みません）", n=len(answers))]
    return xlsx_stream(_("回答"), columns, (row(a) for a in answers), title_lines=title)
