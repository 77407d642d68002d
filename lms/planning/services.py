"""年間研修計画, 予定調査 and 割当: the rules (pages are in routes.py).

* A plan covers one fiscal year: every scheduled session of a published or draft course that
  starts in it. The platform admin publishes it with a survey deadline.
* Each municipality's training office answers the survey for its own municipality only, per
  course — or per session where the plan says so (``TrainingPlan.survey_unit``) — with
  requested seats, priority 1–5 and a comment, until the deadline; answering again replaces
  the earlier answer (idempotent). ``survey_items`` is what the survey asks about.
* An allocation divides each session's capacity (per course: the course's sessions'
  capacities together, then each municipality's seats among the sessions) by
  ``lms.planning.allocation`` and keeps the arithmetic per municipality; the platform admin
  may adjust a session's row with a reason; publishing
  writes the result as the session's 割当人数 through the courses service (same checks,
  locks and events as a session edit).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import delete, func, insert, select, text
from sqlalchemy.orm import contains_eager

from lms.audit.services import record_action
from lms.auth.models import PLATFORM_ADMIN
from lms.common import signals
from lms.common.database import for_update, is_sqlite, lock_fresh
from lms.common.errors import InvalidInput, NotAllowed, NotFound
from lms.common.forms import one_line, stripped
from lms.common.links import app_url
from lms.common.timeutil import as_utc, fiscal_year_bounds, fiscal_year_label, fiscal_year_of, to_tokyo, utcnow
from lms.courses.models import CANCELLED, SCHEDULED, Course, SessionQuota, TrainingSession, is_a_place
from lms.courses.services import lock_session, release_session_quotas, set_session_quotas
from lms.enrollment.models import CONFIRMED, WAITLISTED, Enrollment
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.planning.allocation import Demand, allocate, split_among_sessions
from lms.planning.models import (
    EXCHANGE_APPROVED,
    EXCHANGE_ASK,
    EXCHANGE_OFFER,
    EXCHANGE_PENDING,
    EXCHANGE_REJECTED,
    PLAN_DRAFT,
    PLAN_PUBLISHED,
    PRIORITIES,
    SURVEY_BY_SESSION,
    SURVEY_UNITS,
    PlanAllocation,
    PlanDemand,
    SeatExchange,
    TrainingPlan,
)


def _require_platform_admin(actor) -> None:
    if not actor.has_role(PLATFORM_ADMIN):
        raise NotAllowed(_("この操作は全体管理者のみ行えます。"))


# ------------------------------------------------------------------ plans


def create_plan(actor, fiscal_year: int, *, guaranteed_minimum: int = 1, note: str = "",
                survey_unit: str = SURVEY_UNITS[0]) -> TrainingPlan:
    """A draft plan; ``survey_unit``: the survey asks per course (the default) or per session."""
    _require_platform_admin(actor)
    if survey_unit not in SURVEY_UNITS:
        raise InvalidInput(_("回答の単位を選んでください。"), field="survey_unit")
    if not 2000 <= fiscal_year <= 2100:
        raise InvalidInput(_("年度は西暦で入力してください（例: 2027）。"), field="fiscal_year")
    if guaranteed_minimum < 0 or guaranteed_minimum > 50:
        raise InvalidInput(_("保障枠は0〜50人で入力してください。"), field="guaranteed_minimum")
    if plan_of_year(fiscal_year) is not None:
        raise InvalidInput(_("%(year)d年度の計画はすでにあります。", year=fiscal_year), field="fiscal_year")
    plan = TrainingPlan(fiscal_year=fiscal_year, status=PLAN_DRAFT, guaranteed_minimum=guaranteed_minimum,
                        note=note.strip(), survey_unit=survey_unit)
    db.session.add(plan)
    db.session.flush()
    record_action(actor, "plan.create", "training_plan", plan.id, None, fiscal_year=fiscal_year,
                  guaranteed_minimum=guaranteed_minimum, survey_unit=survey_unit)
    return plan


def publish_plan(actor, plan: TrainingPlan, survey_deadline: datetime) -> bool:
    """Open the survey to every training office until ``survey_deadline`` (aware UTC); on a
    published plan, move its deadline (earlier or later), the offices told of the change.
    Returns whether the plan was published now (False: its deadline moved, or nothing changed)."""
    _require_platform_admin(actor)
    deadline = as_utc(survey_deadline)
    if deadline is None or deadline <= utcnow():
        raise InvalidInput(_("回答期限は現在より後にしてください。"), field="survey_deadline")
    if not plan_sessions(plan):
        raise InvalidInput(_("この年度の研修回がまだありません。研修回を登録してから公開してください。"))
    lock_fresh(plan)
    if plan.status == PLAN_PUBLISHED and as_utc(plan.survey_deadline) == deadline:
        return False  # published so a moment ago (sent twice): nothing changes, nothing to record
    already = plan.status == PLAN_PUBLISHED
    earlier = _deadline_text(plan)
    before = (plan.status, plan.survey_deadline.isoformat() if plan.survey_deadline else None)
    plan.status = PLAN_PUBLISHED
    plan.survey_deadline = deadline
    plan.published_at = plan.published_at or utcnow()
    record_action(actor, "plan.publish", "training_plan", plan.id, None, fiscal_year=plan.fiscal_year,
                  before=before, survey_deadline=deadline.isoformat())
    everyone = list(db.session.scalars(select(Municipality.id)))
    year = fiscal_year_label(plan.fiscal_year)
    if already:  # the deadline moved: said as such (not a second announcement of the plan)
        signals.office_notice.send(
            None, municipality_ids=everyone, key=f"plan:{plan.id}:deadline:{deadline.isoformat()}",
            subject=f"【予定調査】{year} 研修計画の回答期限が変わりました（新しい期限 {_deadline_text(plan)}）",
            body=_survey_body(plan, f"{year}の研修計画の予定調査の回答期限を {earlier} から {_deadline_text(plan)} に変更しました。"),
        )
        return False
    signals.office_notice.send(
        None, municipality_ids=everyone, key=f"plan:{plan.id}:open:{deadline.isoformat()}",
        subject=f"【予定調査】{year} 研修計画の受講希望人数をご回答ください（期限 {_deadline_text(plan)}）",
        body=_survey_body(plan, f"{year}の研修計画を公開しました。{_unit_words(plan)}ごとに、受講させたい職員の人数と優先度をご回答ください。"),
    )
    return True


def _day(moment: datetime) -> str:
    """4月1日 (Tokyo), as the offices' mails write a date."""
    day = to_tokyo(moment)
    return f"{day.month}月{day.day}日"


def _when(moment: datetime | None) -> str:
    """2027年4月1日 09:30 (Tokyo)."""
    at = to_tokyo(moment)
    return f"{at.year}年{at.month}月{at.day}日 {at:%H:%M}" if at is not None else "—"


def _unit_words(plan: TrainingPlan) -> str:
    """The survey's unit as the offices' mail names it (the mails are in Japanese)."""
    return "研修回" if plan.survey_unit == SURVEY_BY_SESSION else "研修"


def _deadline_text(plan: TrainingPlan) -> str:
    return f"{_when(plan.survey_deadline)}" if plan.survey_deadline else "—"


def _survey_body(plan: TrainingPlan, lead: str) -> str:
    return "\n".join([
        "研修担当者様", "", lead, "",
        f"回答期限：{_deadline_text(plan)}",
        f"回答ページ：{app_url('planning.survey', f'/plans/{plan.id}/survey', plan_id=plan.id)}",
        "回答ページから Excel をダウンロードして記入し、アップロードすることもできます。", "",
        "このメールは Manabi から自動で送信しています。",
    ])


def remind_unanswered(actor, plan: TrainingPlan) -> int:
    """Remind the training offices that have not answered yet (once a day at most per
    office); returns how many municipalities were reminded."""
    _require_platform_admin(actor)
    if not survey_open(plan):
        raise InvalidInput(_("予定調査を受け付けている計画でのみ催促できます。"))
    answered = set(db.session.scalars(select(PlanDemand.municipality_id).where(PlanDemand.plan_id == plan.id)))
    waiting = [mid for mid in db.session.scalars(select(Municipality.id)) if mid not in answered]
    today = to_tokyo(utcnow()).date().isoformat()
    signals.office_notice.send(
        None, municipality_ids=waiting, key=f"plan:{plan.id}:remind:{today}",
        subject=f"【催促】{fiscal_year_label(plan.fiscal_year)} 研修計画の予定調査へのご回答のお願い（期限 {_deadline_text(plan)}）",
        body=_survey_body(plan, f"{fiscal_year_label(plan.fiscal_year)} 研修計画の予定調査に、まだご回答をいただいていません。回答期限までにご回答ください。"),
    )
    record_action(actor, "plan.remind", "training_plan", plan.id, None, municipalities=len(waiting))
    return len(waiting)


def plan_of_year(fiscal_year: int) -> TrainingPlan | None:
    return db.session.scalar(select(TrainingPlan).where(TrainingPlan.fiscal_year == fiscal_year))


def plan_or_404(plan_id: int) -> TrainingPlan:
    plan = db.session.get(TrainingPlan, plan_id)
    if plan is None:
        raise NotFound(_("計画が見つかりません。"))
    return plan


def visible_plan_or_404(actor, plan_id: int) -> TrainingPlan:
    """A draft plan is the platform admin's alone: for anyone else it does not exist."""
    plan = plan_or_404(plan_id)
    if plan.status == PLAN_DRAFT and not actor.has_role(PLATFORM_ADMIN):
        raise NotFound(_("計画が見つかりません。"))
    return plan


def plan_sessions(plan: TrainingPlan) -> list[TrainingSession]:
    """The plan's sessions: scheduled, of a course not cancelled, starting in its fiscal year.
    A 連続講座 is its first part (its seats are a place in every part; the later parts and
    make-ups are not asked for or allocated on their own)."""
    start, end = fiscal_year_bounds(plan.fiscal_year)
    return list(db.session.scalars(
        select(TrainingSession).join(Course, Course.id == TrainingSession.course_id)
        .options(contains_eager(TrainingSession.course))  # the rows carry their course: no lazy loads
        .where(TrainingSession.starts_at >= start, TrainingSession.starts_at < end,
               TrainingSession.status == SCHEDULED, Course.status != CANCELLED,
               is_a_place())
        .order_by(TrainingSession.starts_at, TrainingSession.id)
    ))


@dataclass(frozen=True)
class SurveyItem:
    """What the survey asks a number for: a course with its sessions in the plan (``id`` is
    the course's) or, in a plan surveyed per session, one session (``id`` is the session's)."""

    id: int
    course: Course
    sessions: tuple[TrainingSession, ...]
    per_session: bool

    @property
    def title(self) -> str:
        if self.per_session:
            return f"{self.course.title} {self.sessions[0].title}".strip()
        return self.course.title

    @property
    def capacity(self) -> int:
        return sum(s.capacity for s in self.sessions)

    @property
    def starts_at(self) -> datetime:
        return self.sessions[0].starts_at

    @property
    def last_starts_at(self) -> datetime:
        return self.sessions[-1].starts_at


def survey_items(plan: TrainingPlan, sessions: list[TrainingSession] | None = None) -> list[SurveyItem]:
    """The survey's rows in the order of their first session: the plan's courses (each with
    its sessions) or, per session, the sessions."""
    sessions = plan_sessions(plan) if sessions is None else sessions
    if plan.survey_unit == SURVEY_BY_SESSION:
        return [SurveyItem(s.id, s.course, (s,), True) for s in sessions]
    grouped: dict[int, list[TrainingSession]] = {}
    for session in sessions:
        grouped.setdefault(session.course_id, []).append(session)
    return [SurveyItem(cid, group[0].course, tuple(group), False) for cid, group in grouped.items()]


def _item_column(plan: TrainingPlan):
    """The PlanDemand column that names a survey item in this plan."""
    return PlanDemand.session_id if plan.survey_unit == SURVEY_BY_SESSION else PlanDemand.course_id


def survey_open(plan: TrainingPlan) -> bool:
    deadline = as_utc(plan.survey_deadline)
    return plan.status == PLAN_PUBLISHED and deadline is not None and utcnow() < deadline


# ------------------------------------------------------------------ survey (予定調査)


@dataclass(frozen=True)
class Answer:
    requested: int
    priority: int = 3
    comment: str = ""


def answer_survey(actor, plan: TrainingPlan, municipality_id: int, answers: dict[int, Answer]) -> int:
    """Store one municipality's answers ({survey item id: Answer}, see ``survey_items``);
    rows not named keep their answer. Returns how many rows changed. The caller has settled
    the municipality with ``municipality_scope`` (an office answers for its own municipality
    only)."""
    if not survey_open(plan):
        raise InvalidInput(_("この計画の予定調査は受け付けていません（回答期限を過ぎたか、まだ公開されていません）。"))
    valid = {item.id for item in survey_items(plan)}
    for item_id, answer in answers.items():
        if item_id not in valid:
            raise InvalidInput(_("この計画にない研修回が含まれています。") if plan.survey_unit == SURVEY_BY_SESSION
                               else _("この計画にない研修が含まれています。"), field="answers")
        if not 0 <= answer.requested <= 9999:
            raise InvalidInput(_("希望人数は0〜9999の整数で入力してください。"), field="answers")
        if answer.priority not in PRIORITIES:
            raise InvalidInput(_("優先度は1〜5で選んでください。"), field="answers")
        if len(answer.comment) > 500:
            raise InvalidInput(_("コメントは500文字以内で入力してください。"), field="answers")
    existing = demands_of(plan, municipality_id)
    column = _item_column(plan).key
    changed = 0
    for item_id, answer in answers.items():
        row = existing.get(item_id)
        comment = answer.comment.strip()
        if row is None:
            if answer.requested == 0 and not comment:
                continue
            db.session.add(PlanDemand(plan_id=plan.id, municipality_id=municipality_id, requested=answer.requested,
                                      priority=answer.priority, comment=comment, updated_by_id=actor.id,
                                      **{column: item_id}))
            changed += 1
        elif (row.requested, row.priority, row.comment) != (answer.requested, answer.priority, comment):
            row.requested, row.priority, row.comment = answer.requested, answer.priority, comment
            row.updated_by_id = actor.id
            changed += 1
    if changed:
        db.session.flush()
        record_action(actor, "plan.survey_answer", "training_plan", plan.id, municipality_id,
                      rows=changed, total=sum(a.requested for a in answers.values()))
    return changed


def demands_of(plan: TrainingPlan, municipality_id: int) -> dict[int, PlanDemand]:
    """One municipality's answers by survey item id."""
    column = _item_column(plan)
    return {getattr(row, column.key): row for row in db.session.scalars(
        select(PlanDemand).where(PlanDemand.plan_id == plan.id, PlanDemand.municipality_id == municipality_id,
                                 column.is_not(None))
    )}


@dataclass(frozen=True)
class ItemDemand:
    item: SurveyItem
    requested: int
    municipalities: int


def survey_totals(plan: TrainingPlan) -> tuple[list[ItemDemand], list[tuple[Municipality, int]]]:
    """(per survey item: total requested and how many municipalities asked; per
    municipality: how many items it answered — 0 means it has not answered)."""
    column = _item_column(plan)
    rows = db.session.execute(
        select(column, func.sum(PlanDemand.requested), func.count())
        .where(PlanDemand.plan_id == plan.id, PlanDemand.requested > 0, column.is_not(None))
        .group_by(column)
    ).all()
    by_item = {item_id: (int(total or 0), int(n)) for item_id, total, n in rows}
    per_item = [ItemDemand(item, *by_item.get(item.id, (0, 0))) for item in survey_items(plan)]
    answered = dict(db.session.execute(
        select(PlanDemand.municipality_id, func.count()).where(PlanDemand.plan_id == plan.id)
        .group_by(PlanDemand.municipality_id)
    ).all())
    municipalities = db.session.scalars(select(Municipality).order_by(Municipality.code)).all()
    return per_item, [(m, int(answered.get(m.id, 0))) for m in municipalities]


# ------------------------------------------------------------------ allocation (割当)


def run_allocation(actor, plan: TrainingPlan, session_ids: list[int] | None = None) -> int:
    """(Re)compute the allocation of the plan's sessions (all, or ``session_ids``; in a plan
    surveyed per course, every session of their courses) from the survey. Unpublished
    adjustments of those sessions are replaced; returns the number of sessions allocated."""
    _require_platform_admin(actor)
    if plan.status != PLAN_PUBLISHED:
        raise InvalidInput(_("公開した計画でのみ割当を計算できます。"))
    now = utcnow()
    planned = plan_sessions(plan)
    # Seats go only to sessions still to come: one that has started can take nobody more.
    sessions = {s.id: s for s in planned if as_utc(s.starts_at) > now}
    if session_ids is not None and any(s.id in session_ids and s.id not in sessions for s in planned):
        raise InvalidInput(_("開始済みの研修回には割当を計算できません。"))
    targets = list(sessions) if session_ids is None else [sid for sid in session_ids if sid in sessions]
    if session_ids is not None and len(targets) != len(set(session_ids)):
        raise InvalidInput(_("この計画にない研修回が含まれています。"))
    wanted = set(targets)
    items = [item for item in survey_items(plan, list(sessions.values()))
             if any(s.id in wanted for s in item.sessions)]
    targets = [s.id for item in items for s in item.sessions]
    codes = dict(db.session.execute(select(Municipality.id, Municipality.code)).all())
    column = _item_column(plan)
    demands: dict[int, list[Demand]] = defaultdict(list)
    for item_id, mid, requested, priority in db.session.execute(
        select(column, PlanDemand.municipality_id, PlanDemand.requested, PlanDemand.priority)
        .where(PlanDemand.plan_id == plan.id, column.in_([item.id for item in items]), PlanDemand.requested > 0)
    ):
        demands[item_id].append(Demand(mid, codes.get(mid, ""), requested, priority))
    # A whole plan is ~40,000 rows (tuples of the _VARYING columns): they are replaced with
    # Core statements.
    rows: list[tuple] = []
    for item in items:
        priorities = {d.municipality_id: d.priority for d in demands.get(item.id, [])}
        shares = allocate(item.capacity, demands.get(item.id, []), minimum=plan.guaranteed_minimum)
        if item.per_session:
            parts = {item.id: {mid: share.seats for mid, share in shares.items()}}
        else:  # the course's seats of each municipality, divided among its sessions
            parts = split_among_sessions(
                [Demand(mid, codes.get(mid, ""), share.seats, priorities[mid]) for mid, share in shares.items()],
                [(s.id, s.capacity) for s in item.sessions])
        for session in item.sessions:
            rows.extend((session.id, mid, share.requested, priorities[mid], share.guaranteed, share.exact.numerator,
                         share.exact.denominator, share.proportional, share.remainder_bonus,
                         None if item.per_session else share.seats, parts[session.id].get(mid, 0))
                        for mid, share in shares.items())
    db.session.flush()
    table = PlanAllocation.__table__
    for chunk in range(0, len(targets), 2000):
        db.session.execute(delete(table).where(table.c.plan_id == plan.id,
                                               table.c.session_id.in_(targets[chunk:chunk + 2000])))
    _insert_allocations(plan.id, rows, utcnow())
    for obj in list(db.session.identity_map.values()):  # loaded rows now differ from the database
        if isinstance(obj, PlanAllocation):
            db.session.expire(obj)
    db.session.flush()
    record_action(actor, "plan.allocate", "training_plan", plan.id, None, sessions=len(targets))
    return len(targets)


# The columns that differ from row to row (all integers); the rest are the same in every row
# of one computation (the plan, no adjustment yet, the time of computing, unpublished).
_VARYING = ("session_id", "municipality_id", "requested", "priority", "guaranteed", "share_numerator",
            "share_denominator", "proportional", "remainder_bonus", "course_seats", "seats")


def _int_array(values: tuple) -> str:
    """An integer[] in PostgreSQL's text form ({1,2,NULL}): built by str.join, it costs a
    fraction of the driver's adaptation of a list element by element."""
    if any(v is None for v in values):
        return "{" + ",".join("NULL" if v is None else str(v) for v in values) + "}"
    return "{" + ",".join(map(str, values)) + "}"


def _insert_allocations(plan_id: int, rows: list[tuple], computed_at: datetime) -> None:
    """Insert one computation's allocation rows (``rows``: tuples of the _VARYING columns; the
    rest are the same in every row: the plan, no adjustment, the time, unpublished). On
    PostgreSQL in one statement: each column travels as one array literal and ``unnest``
    turns them back into rows (tens of thousands of rows, one round trip); elsewhere as an
    executemany."""
    if not rows:
        return
    if is_sqlite():
        fixed = {"plan_id": plan_id, "adjusted_seats": None, "adjust_reason": "", "computed_at": computed_at,
                 "published_at": None}
        db.session.execute(insert(PlanAllocation.__table__),
                           [dict(zip(_VARYING, row, strict=True), **fixed) for row in rows])
        return
    columns = dict(zip(_VARYING, zip(*rows, strict=True), strict=True))
    arrays = ", ".join(f"CAST(:{name} AS integer[])" for name in _VARYING)
    db.session.execute(
        text(f"INSERT INTO plan_allocation (plan_id, {', '.join(_VARYING)}, adjusted_seats, adjust_reason, "  # noqa: S608 - constant names
             f"computed_at, published_at) SELECT CAST(:plan_id AS integer), u.*, NULL, '', "
             f"CAST(:computed_at AS timestamptz), NULL FROM unnest({arrays}) AS u"),
        {"plan_id": plan_id, "computed_at": computed_at, **{name: _int_array(columns[name]) for name in _VARYING}},
    )


def allocations_of(plan: TrainingPlan, *, municipality_id: int | None = None,
                   session_id: int | None = None) -> list[PlanAllocation]:
    query = select(PlanAllocation).where(PlanAllocation.plan_id == plan.id)
    if municipality_id is not None:
        query = query.where(PlanAllocation.municipality_id == municipality_id)
    if session_id is not None:
        query = query.where(PlanAllocation.session_id == session_id)
    return list(db.session.scalars(query.order_by(PlanAllocation.session_id, PlanAllocation.municipality_id)))


def _reason(text: str | None) -> str:
    """A reason as typed in a one-line box: control characters as spaces, and the spaces and
    invisible characters around it gone (a reason of a zero-width space alone is no reason)."""
    return stripped(one_line(text or "")) or ""


def adjust_allocation(actor, plan: TrainingPlan, allocation_id: int, seats: int, reason: str) -> None:
    """Change one municipality's seats by hand, with a reason; the session's total stays
    within its capacity."""
    _require_platform_admin(actor)
    row = db.session.get(PlanAllocation, allocation_id)
    if row is None or row.plan_id != plan.id:
        raise NotFound(_("割当が見つかりません。"))
    lock_fresh(row)
    reason = _reason(reason)
    if not reason:
        raise InvalidInput(_("調整の理由を入力してください。"), field="reason")
    if seats < 0 or seats > 9999:
        raise InvalidInput(_("人数は0以上の整数で入力してください。"), field="seats")
    others = sum(r.final_seats for r in allocations_of(plan, session_id=row.session_id) if r.id != row.id)
    capacity = row.session.capacity
    if others + seats > capacity:
        raise InvalidInput(_("この回の割当の合計が定員（%(capacity)d人）を超えます（ほかの自治体で%(others)d人）。",
                             capacity=capacity, others=others), field="seats")
    before = row.final_seats
    if row.adjusted_seats == seats and row.adjust_reason == reason:
        return  # the same adjustment again (sent twice): nothing changes, nothing to record
    row.adjusted_seats = seats
    row.adjust_reason = reason
    record_action(actor, "plan.adjust", "plan_allocation", row.id, row.municipality_id,
                  session_id=row.session_id, before=before, after=seats, reason=reason)


def publish_allocation(actor, plan: TrainingPlan, session_id: int) -> dict:
    """Write one session's allocation as its 割当人数 (inside ``run_in_transaction``)."""
    _require_platform_admin(actor)
    rows = allocations_of(plan, session_id=session_id)
    if not rows:
        raise InvalidInput(_("この回の割当はまだ計算されていません。"))
    # The seats approved exchanges moved since stay moved: a publication again (a row adjusted,
    # the allocation run again) starts from the allocation and moves them once more.
    quotas = {row.municipality_id: row.final_seats for row in rows}
    for moved in db.session.scalars(select(SeatExchange).where(
            SeatExchange.plan_id == plan.id, SeatExchange.session_id == session_id,
            SeatExchange.status == EXCHANGE_APPROVED).order_by(SeatExchange.decided_at, SeatExchange.id)):
        _move_seats(quotas, moved)
    quotas = {mid: n for mid, n in quotas.items() if n > 0}
    held = {q.municipality_id: q.seats for q in db.session.scalars(
        select(SessionQuota).where(SessionQuota.session_id == session_id))}
    # Told again only where the number changed (a second click, a publication repeated: no new mail).
    told = [row for row in rows
            if row.published_at is None or held.get(row.municipality_id, 0) != quotas.get(row.municipality_id, 0)]
    changes = set_session_quotas(actor, session_id, quotas)
    now = utcnow()
    for row in rows:
        row.published_at = now
    record_action(actor, "plan.publish_allocation", "training_session", session_id, None, plan_id=plan.id,
                  quotas={str(k): v for k, v in quotas.items()})
    session = db.session.get_one(TrainingSession, session_id)
    name = f"{session.course.title} {session.title}".strip()
    for row in told:  # each office hears its own number
        signals.office_notice.send(
            None, municipality_ids=[row.municipality_id],
            key=f"plan:{plan.id}:quota:{session_id}:{quotas.get(row.municipality_id, 0)}:{now.isoformat()}",
            subject=f"【割当】{name}（{_day(session.starts_at)}）の割当人数が決まりました",
            body="\n".join([
                "研修担当者様", "",
                f"{fiscal_year_label(plan.fiscal_year)} 研修計画の割当人数をお知らせします。", "",
                f"研修回：{name}", f"開始：{_when(session.starts_at)}",
                *([f"希望人数：{row.requested}人"] if row.course_seats is None else
                  [f"希望人数（研修全体）：{row.requested}人", f"割当（研修全体）：{row.course_seats}人"]),
                f"割当人数：{quotas.get(row.municipality_id, 0)}人" if row.course_seats is None
                else f"この回の割当人数：{quotas.get(row.municipality_id, 0)}人",
                *([f"調整の理由：{row.adjust_reason}"] if row.adjusted_seats is not None else []),
                *(["（承認済みの割当の譲渡・追加を含みます）"]
                  if quotas.get(row.municipality_id, 0) != row.final_seats else []), "",
                "割当人数の範囲で職員を推薦してください。",
                f"推薦ページ：{app_url('enrollment.admin_home', '/')}", "",
                "このメールは Manabi から自動で送信しています。",
            ]),
        )
    return changes


# ---------------------------------------------------------------- release (割当の解放)


def _release_notice(session: TrainingSession, before: dict, after: dict, early_by: int | None) -> None:
    freed = {mid: seats - after.get(mid, 0) for mid, seats in before.items()}
    freed = {mid: n for mid, n in freed.items() if n > 0}
    name = f"{session.course.title} {session.title}".strip()
    when = f"{_when(session.starts_at)}"
    for mid in before:
        own = freed.get(mid, 0)
        if early_by is not None and mid != early_by:
            continue
        lead = (f"推薦の締切を過ぎたため、{name}（{when}）の割当人数を解放しました。"
                if early_by is None else f"{name}（{when}）の割当人数のうち未使用の席を解放しました。")
        signals.office_notice.send(
            None, municipality_ids=[mid], key=f"release:{session.id}:{mid}:{early_by or 'deadline'}:{sum(after.values())}",
            subject=f"【割当の解放】{name}（{_day(session.starts_at)}）",
            body="\n".join([
                "研修担当者様", "", lead,
                f"解放した席：{own}席（確定済みの職員の席はそのままです）。",
                "解放した席は、キャンセル待ちの職員に申込順で割り当てられます。", "",
                "このメールは Manabi から自動で送信しています。",
            ]),
        )


def release_early(actor, session_id: int, municipality_id: int) -> int:
    """A training office lets its unfilled seats of a session go before the deadline (the
    caller has settled the municipality with ``municipality_scope``). Returns the seats freed.
    Run it through ``run_in_transaction``."""
    changes = release_session_quotas(session_id, municipality_id=municipality_id, actor=actor)
    if not changes:
        raise InvalidInput(_("解放できる席（未使用の割当）はありません。"))
    before, after = changes["quotas"]
    _release_notice(db.session.get_one(TrainingSession, session_id), before, after, municipality_id)
    return before.get(municipality_id, 0) - after.get(municipality_id, 0)


def sessions_due_for_release(now: datetime | None = None) -> list[int]:
    """Scheduled sessions whose nomination deadline (申込締切) has passed, not yet started,
    that still hold seats for municipalities."""
    now = now or utcnow()
    return list(db.session.scalars(
        select(TrainingSession.id).where(
            TrainingSession.status == SCHEDULED, TrainingSession.enroll_closes_at.is_not(None),
            TrainingSession.enroll_closes_at <= now, TrainingSession.starts_at > now,
            select(SessionQuota.id).where(SessionQuota.session_id == TrainingSession.id).exists())
        .order_by(TrainingSession.enroll_closes_at, TrainingSession.id)
    ))


def release_at_deadline(session_id: int, now: datetime | None = None) -> dict:
    """Release every quota of a session whose deadline has passed (the worker, no actor);
    the waitlist takes the freed seats in order of arrival. Run it in ``run_in_transaction``."""
    now = now or utcnow()
    session = db.session.get(TrainingSession, session_id)
    if session is None or session.enroll_closes_at is None or as_utc(session.enroll_closes_at) > now:
        return {}
    held = _held(session_id)
    if not held:
        return {}
    # Municipalities whose request was not met take the freed seats first (their waiting
    # staff are promoted into them at once); everything else is shared, in order of arrival.
    first = _first_claims(session, held)
    changes = release_session_quotas(session_id, keep=first)
    before = {mid: q.seats for mid, q in held.items()}
    _release_notice(session, before, {}, None)
    return changes


def _first_claims(session: TrainingSession, held: dict[int, SessionQuota]) -> dict[int, int]:
    """At the deadline, the seats left unused are offered first to the municipalities whose
    survey request for this session was not met, as far as they have staff waiting: divided by
    the allocation method (no guarantee, proportional to what each still lacks). Returns the
    quotas they keep ({municipality id: seats}); the rest of the seats become shared."""
    freed = sum(max(q.seats - q.confirmed_count, 0) for q in held.values())
    if freed <= 0:
        return {}
    requests = {mid: int(n) for mid, n in db.session.execute(
        select(PlanDemand.municipality_id, func.max(PlanDemand.requested))
        .join(TrainingPlan, TrainingPlan.id == PlanDemand.plan_id)
        .where(PlanDemand.session_id == session.id, TrainingPlan.status == PLAN_PUBLISHED)
        .group_by(PlanDemand.municipality_id))}
    for mid, lacking in _course_requests(session).items():
        requests[mid] = max(requests.get(mid, 0), lacking)
    if not requests:
        return {}
    # Each municipality's people waiting and confirmed (those on the shared seats too: a
    # municipality without a quota row has them, and its kept quota holds them as well).
    waiting: dict[int, int] = {}
    confirmed: dict[int, int] = {}
    for mid, status, n in db.session.execute(
            select(Enrollment.municipality_id, Enrollment.status, func.count()).where(
                Enrollment.session_id == session.id, Enrollment.status.in_((WAITLISTED, CONFIRMED)))
            .group_by(Enrollment.municipality_id, Enrollment.status)):
        (waiting if status == WAITLISTED else confirmed)[mid] = int(n)
    codes = dict(db.session.execute(select(Municipality.id, Municipality.code)).all())
    demands = []
    for mid, requested in requests.items():
        lacking = min(requested - confirmed.get(mid, 0), waiting.get(mid, 0))
        if lacking > 0:
            demands.append(Demand(mid, codes.get(mid, ""), lacking))
    shares = allocate(freed, demands, minimum=0)
    return {mid: confirmed.get(mid, 0) + share.seats for mid, share in shares.items() if share.seats > 0}


def _course_requests(session: TrainingSession) -> dict[int, int]:
    """Where the year's published plan was surveyed per course: what each municipality asked
    for the course, less its people confirmed in the course's other sessions of that year —
    its request for this session at the deadline."""
    year = fiscal_year_of(session.starts_at)
    asked = dict(db.session.execute(
        select(PlanDemand.municipality_id, PlanDemand.requested)
        .join(TrainingPlan, TrainingPlan.id == PlanDemand.plan_id)
        .where(PlanDemand.course_id == session.course_id, PlanDemand.requested > 0,
               TrainingPlan.status == PLAN_PUBLISHED, TrainingPlan.fiscal_year == year)).all())
    if not asked:
        return {}
    start, end = fiscal_year_bounds(year)
    elsewhere = dict(db.session.execute(
        select(Enrollment.municipality_id, func.count())
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .where(TrainingSession.course_id == session.course_id, TrainingSession.id != session.id,
               TrainingSession.starts_at >= start, TrainingSession.starts_at < end, Enrollment.status == CONFIRMED,
               Enrollment.municipality_id.in_(list(asked)))
        .group_by(Enrollment.municipality_id)).all())
    return {mid: int(n) - int(elsewhere.get(mid, 0)) for mid, n in asked.items()}


# ---------------------------------------------------------------- exchange (譲渡・追加希望)


def _held(session_id: int) -> dict[int, SessionQuota]:
    return {q.municipality_id: q for q in db.session.scalars(
        select(SessionQuota).where(SessionQuota.session_id == session_id).execution_options(populate_existing=True))}


def _check_offer(held: dict[int, SessionQuota], municipality_id: int, seats: int) -> None:
    """An office may give away only its unused seats (never its confirmed people's): checked
    when it offers, and again when the offer is approved, since offers approved before it may
    have taken those seats already."""
    own = held.get(municipality_id)
    unused = own.seats - own.confirmed_count if own else 0
    if seats > unused:
        name = db.session.get_one(Municipality, municipality_id).name
        raise InvalidInput(_("%(name)s が譲れるのは未使用の割当（%(n)d席）までです。確定済みの人数の席は譲れません。",
                             name=name, n=unused), field="seats")


def request_exchange(actor, plan: TrainingPlan, session_id: int, municipality_id: int, *, kind: str, seats: int,
                     to_municipality_id: int | None = None, reason: str = "") -> SeatExchange:
    """A training office offers ``seats`` of its quota to another municipality, or asks for
    ``seats`` more (the caller has settled ``municipality_id`` with ``municipality_scope``).
    Nothing changes until the platform admin approves."""
    session = next((s for s in plan_sessions(plan) if s.id == session_id), None)
    if session is None:
        raise NotFound(_("研修回が見つかりません。"))
    if as_utc(session.starts_at) <= utcnow():
        raise InvalidInput(_("開始した研修回の割当は変更できません。"))
    if not 1 <= seats <= 9999:
        raise InvalidInput(_("人数は1から9999までの整数で入力してください。"), field="seats")
    reason = _reason(reason)
    if len(reason) > 500:
        raise InvalidInput(_("理由は500文字以内で入力してください。"), field="reason")
    if kind == EXCHANGE_OFFER:
        _check_offer(_held(session_id), municipality_id, seats)
        if to_municipality_id is None or to_municipality_id == municipality_id \
                or db.session.get(Municipality, to_municipality_id) is None:
            raise InvalidInput(_("譲る先の自治体を選んでください。"), field="to_municipality_id")
    elif kind == EXCHANGE_ASK:
        to_municipality_id = None
        if not reason:
            raise InvalidInput(_("追加を希望する理由を入力してください。"), field="reason")
    else:
        raise InvalidInput(_("申請の種類が正しくありません。"))
    row = SeatExchange(plan_id=plan.id, session_id=session_id, kind=kind, municipality_id=municipality_id,
                       to_municipality_id=to_municipality_id, seats=seats, reason=reason, requested_by_id=actor.id)
    db.session.add(row)
    db.session.flush()
    record_action(actor, f"plan.exchange_{kind}", "seat_exchange", row.id, municipality_id, session_id=session_id,
                  seats=seats, to_municipality_id=to_municipality_id, reason=reason)
    return row


def pending_exchanges(plan: TrainingPlan, municipality_id: int | None = None) -> list[SeatExchange]:
    query = select(SeatExchange).where(SeatExchange.plan_id == plan.id)
    if municipality_id is not None:
        query = query.where((SeatExchange.municipality_id == municipality_id)
                            | (SeatExchange.to_municipality_id == municipality_id))
    else:
        query = query.where(SeatExchange.status == EXCHANGE_PENDING)
    return list(db.session.scalars(query.order_by(SeatExchange.created_at.desc(), SeatExchange.id.desc())))


def _move_seats(quotas: dict[int, int], exchange: SeatExchange) -> None:
    """Move the seats of an approved exchange in ``quotas`` ({municipality id: seats}): an offer
    from its municipality to the other (never more than the giver holds there), an ask to its
    municipality."""
    if exchange.kind == EXCHANGE_OFFER and exchange.to_municipality_id is not None:
        given = min(exchange.seats, quotas.get(exchange.municipality_id, 0))
        quotas[exchange.municipality_id] = quotas.get(exchange.municipality_id, 0) - given
        quotas[exchange.to_municipality_id] = quotas.get(exchange.to_municipality_id, 0) + given
    elif exchange.kind == EXCHANGE_ASK:
        quotas[exchange.municipality_id] = quotas.get(exchange.municipality_id, 0) + exchange.seats


def decide_exchange(actor, plan: TrainingPlan, exchange_id: int, *, approve: bool, reason: str = "") -> SeatExchange:
    """The platform admin approves (the quotas change through the session edit's checks: never
    below a municipality's confirmed people, never above capacity) or rejects with a reason.
    Run it through ``run_in_transaction``."""
    _require_platform_admin(actor)
    row = db.session.get(SeatExchange, exchange_id)
    if row is None or row.plan_id != plan.id:
        raise NotFound(_("申請が見つかりません。"))
    # Under the session's lock, the request and the quotas read fresh: two requests of one
    # session approved at once each move their seats (one after the other), and a request
    # decided twice at once is decided once.
    lock_session(row.session_id)
    row = db.session.scalars(for_update(select(SeatExchange).where(SeatExchange.id == exchange_id))
                             .execution_options(populate_existing=True)).one()
    if row.status != EXCHANGE_PENDING:
        raise InvalidInput(_("この申請はすでに処理されています。"))
    reason = _reason(reason)
    if not approve and not reason:
        raise InvalidInput(_("見送る理由を入力してください。"), field="reason")
    if len(reason) > 500:
        raise InvalidInput(_("理由は500文字以内で入力してください。"), field="reason")
    if approve:
        held = _held(row.session_id)
        quotas = {mid: q.seats for mid, q in held.items()}
        if row.kind == EXCHANGE_OFFER:
            _check_offer(held, row.municipality_id, row.seats)
        _move_seats(quotas, row)
        # No quota goes below its confirmed people (the giver by _check_offer, the others by
        # the session edit's checks, with the capacity); a quota left at 0 seats holds no one.
        set_session_quotas(actor, row.session_id, {mid: n for mid, n in quotas.items() if n > 0})
    row.status = EXCHANGE_APPROVED if approve else EXCHANGE_REJECTED
    row.decision_reason = reason
    row.decided_by_id = actor.id
    row.decided_at = utcnow()
    record_action(actor, "plan.exchange_decide", "seat_exchange", row.id, row.municipality_id,
                  approved=approve, reason=reason, kind=row.kind, seats=row.seats)
    session = row.session
    name = f"{session.course.title} {session.title}".strip()
    told = [row.municipality_id] + ([row.to_municipality_id] if approve and row.to_municipality_id else [])
    verdict = "承認" if approve else "見送り"
    what = (f"{row.municipality.name}から{row.to_municipality.name}へ{row.seats}席の譲渡" if row.kind == EXCHANGE_OFFER
            else f"{row.municipality.name}の{row.seats}席の追加")
    signals.office_notice.send(
        None, municipality_ids=told, key=f"exchange:{row.id}:{row.status}",
        subject=f"【割当の変更】{name}：{what}（{verdict}）",
        body="\n".join(["研修担当者様", "", f"{name}（{_when(session.starts_at)}）について、{what}を{verdict}しました。",
                        *([f"理由：{reason}"] if reason else []), "", "このメールは Manabi から自動で送信しています。"]),
    )
    return row
