"""研修負担金: what each municipality owes for a year's plan, and the statements it is billed by.

The charge, per enrollment of the municipality's staff in a session of the plan (the
municipality is the one the enrollment was made for, so a later transfer does not move it):

* a **participant** (confirmed) is charged the course's fee for the plan;
* a **no-show** — confirmed, the session over, no attendance recorded as attended — is
  charged only when the plan says so (``charge_no_show``); otherwise the line is dropped;
* a **late cancellation** (cancelled after the session's cancel deadline, as the enrollment
  recorded it) is charged only when the plan says so (``charge_late_cancellation``);
* anything else (waitlisted, pending, rejected, cancelled in time) costs nothing.

A 連続講座 (series) is one place: its first part's enrollment is charged, once; the later parts'
and make-ups' enrollments (which follow it) are not. It is a no-show when none of its parts was
attended once its last part is over.

An exemption (減免) reduces a line by a percentage: the most specific one applies (this
municipality in this course, else this course, else this municipality). Amounts are whole yen:
fee × (100 − percent) ÷ 100, rounded down.

A statement, once issued, never changes. Issuing again for the same municipality compares the
charges as they are now with everything already billed, per enrollment, and bills only the
difference, as correction lines (「訂正」) — a cancellation after billing gives a negative line.

A statement is the issuer's official document, in Japanese whatever language the admin who
issues it or the office that reads it uses the site in (like a 修了証): what it stores — a
correction line's note — is written in Japanese, not through gettext, as its sheet and PDF are.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import aliased

from lms.attendance.models import Attendance
from lms.audit.services import record_action
from lms.auth.models import PLATFORM_ADMIN
from lms.common.database import ensure_writer, for_update
from lms.common.errors import InvalidInput, NotAllowed
from lms.common.timeutil import as_utc, fiscal_year_bounds, utcnow
from lms.courses.models import CANCELLED as SESSION_CANCELLED
from lms.courses.models import Course, TrainingSession, is_a_place
from lms.enrollment.models import CANCELLED, CONFIRMED, Enrollment
from lms.extensions import db
from lms.planning.models import (
    LINE_CORRECTION,
    LINE_LATE_CANCELLATION,
    LINE_NO_SHOW,
    LINE_PARTICIPANT,
    FeeStatement,
    FeeStatementLine,
    PlanCourseFee,
    PlanFeeExemption,
    TrainingPlan,
)
from lms.roster.models import StaffMember

MAX_FEE_YEN = 10_000_000


@dataclass(frozen=True)
class Charge:
    enrollment_id: int
    kind: str
    course_id: int
    course_title: str
    session_starts_at: datetime
    staff_name: str
    employee_number: str
    fee_yen: int
    exemption_percent: int

    @property
    def amount_yen(self) -> int:
        return self.fee_yen * (100 - self.exemption_percent) // 100


def _require_platform_admin(actor) -> None:
    if not actor.has_role(PLATFORM_ADMIN):
        raise NotAllowed(_("この操作は全体管理者のみ行えます。"))


# ---------------------------------------------------------------- settings


def fees_of(plan: TrainingPlan) -> dict[int, int]:
    """{course id: fee in yen} of the plan (courses without a row cost nothing)."""
    return dict(db.session.execute(
        select(PlanCourseFee.course_id, PlanCourseFee.fee_yen).where(PlanCourseFee.plan_id == plan.id)
    ).all())


def set_fees(actor, plan: TrainingPlan, fees: dict[int, int], *, charge_late_cancellation: bool,
             charge_no_show: bool) -> int:
    """Set the fee of each course ({course id: yen}) and the plan's charging rules; returns
    how many fees changed. Statements already issued are not touched."""
    _require_platform_admin(actor)
    for fee in fees.values():
        if fee is None or not 0 <= fee <= MAX_FEE_YEN:
            raise InvalidInput(_("負担金は0〜10,000,000円の整数で入力してください。"), field="fees")
    known = set(db.session.scalars(select(Course.id).where(Course.id.in_(list(fees)))))
    if set(fees) - known:
        raise InvalidInput(_("研修が見つかりません。"), field="fees")
    current = {row.course_id: row for row in db.session.scalars(
        select(PlanCourseFee).where(PlanCourseFee.plan_id == plan.id))}
    changed: dict[str, tuple[int | None, int]] = {}
    for course_id, fee in fees.items():
        row = current.get(course_id)
        if row is None:
            db.session.add(PlanCourseFee(plan_id=plan.id, course_id=course_id, fee_yen=fee))
            changed[str(course_id)] = (None, fee)
        elif row.fee_yen != fee:
            changed[str(course_id)] = (row.fee_yen, fee)
            row.fee_yen = fee
    rules = (plan.charge_late_cancellation, plan.charge_no_show)
    plan.charge_late_cancellation, plan.charge_no_show = charge_late_cancellation, charge_no_show
    if changed or rules != (charge_late_cancellation, charge_no_show):
        record_action(actor, "plan.fees", "training_plan", plan.id, None, fees=changed,
                      charge_late_cancellation=charge_late_cancellation, charge_no_show=charge_no_show)
    return len(changed)


def add_exemption(actor, plan: TrainingPlan, *, municipality_id: int | None, course_id: int | None,
                  percent: int, reason: str) -> PlanFeeExemption:
    _require_platform_admin(actor)
    reason = (reason or "").strip()
    if municipality_id is None and course_id is None:
        raise InvalidInput(_("減免の対象（自治体または研修）を選んでください。"), field="municipality_id")
    if not 1 <= percent <= 100:
        raise InvalidInput(_("減免の割合は1〜100%で入力してください。"), field="percent")
    if not reason:
        raise InvalidInput(_("減免の理由を入力してください。"), field="reason")
    # Checked under the plan's lock: the same exemption sent twice at once is added once
    # (a unique index cannot say it: "every course" and "every municipality" are NULL).
    ensure_writer()
    db.session.execute(for_update(select(TrainingPlan.id).where(TrainingPlan.id == plan.id)))
    duplicate = db.session.scalar(select(PlanFeeExemption.id).where(
        PlanFeeExemption.plan_id == plan.id,
        PlanFeeExemption.municipality_id.is_(None) if municipality_id is None
        else PlanFeeExemption.municipality_id == municipality_id,
        PlanFeeExemption.course_id.is_(None) if course_id is None else PlanFeeExemption.course_id == course_id,
    ))
    if duplicate is not None:
        raise InvalidInput(_("同じ対象の減免がすでにあります。"), field="municipality_id")
    row = PlanFeeExemption(plan_id=plan.id, municipality_id=municipality_id, course_id=course_id, percent=percent,
                           reason=reason)
    db.session.add(row)
    db.session.flush()
    record_action(actor, "plan.exemption", "plan_fee_exemption", row.id, municipality_id, course_id=course_id,
                  percent=percent, reason=reason)
    return row


def exemptions_of(plan: TrainingPlan) -> list[PlanFeeExemption]:
    return list(db.session.scalars(select(PlanFeeExemption).where(PlanFeeExemption.plan_id == plan.id)
                                   .order_by(PlanFeeExemption.id)))


# ---------------------------------------------------------------- charges


def charges(plan: TrainingPlan, municipality_id: int, *, now: datetime | None = None) -> list[Charge]:
    """The municipality's charges for the plan as they stand now (see the module's rules)."""
    now = now or utcnow()
    start, end = fiscal_year_bounds(plan.fiscal_year)
    fees = fees_of(plan)
    exemptions = {(e.municipality_id, e.course_id): e.percent for e in exemptions_of(plan)}
    # A 連続講座 is one place, billed once: on its first part's enrollment (the later parts and
    # make-ups follow it), over when its last part is, attended when any part was.
    part = aliased(TrainingSession)
    series_parts = select(part.id).where(part.series_id == Enrollment.session_id)
    attended = and_(or_(Attendance.session_id == Enrollment.session_id, Attendance.session_id.in_(series_parts)),
                    Attendance.staff_member_id == Enrollment.staff_member_id, Attendance.attended.is_(True))
    series_end = select(func.max(part.ends_at)).where(part.series_id == TrainingSession.id).scalar_subquery()
    rows = db.session.execute(
        select(Enrollment.id, Enrollment.status, Enrollment.late_cancellation, TrainingSession.course_id,
               Course.title, TrainingSession.starts_at, func.coalesce(series_end, TrainingSession.ends_at),
               StaffMember.full_name, StaffMember.employee_number, select(Attendance.id).where(attended).exists())
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .join(Course, Course.id == TrainingSession.course_id)
        .join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
        .where(Enrollment.municipality_id == municipality_id, TrainingSession.starts_at >= start,
               TrainingSession.starts_at < end, TrainingSession.status != SESSION_CANCELLED,
               is_a_place(),
               Enrollment.status.in_((CONFIRMED, CANCELLED)))
        .order_by(TrainingSession.starts_at, Course.title, StaffMember.employee_number, Enrollment.id)
    ).all()
    result = []
    for (enrollment_id, status, late, course_id, title, starts_at, ends_at, name, number, was_there) in rows:
        if status == CANCELLED:
            if not (late and plan.charge_late_cancellation):
                continue
            kind = LINE_LATE_CANCELLATION
        elif as_utc(ends_at) <= now and not was_there:
            if not plan.charge_no_show:
                continue
            kind = LINE_NO_SHOW
        else:
            kind = LINE_PARTICIPANT
        percent = exemptions.get((municipality_id, course_id), exemptions.get((None, course_id),
                                 exemptions.get((municipality_id, None), 0)))
        result.append(Charge(enrollment_id, kind, course_id, title, as_utc(starts_at), name, number,
                             fees.get(course_id, 0), percent))
    return result


def totals(plan: TrainingPlan, municipality_ids: list[int]) -> dict[int, int]:
    """{municipality id: amount in yen as it stands now}."""
    return {mid: sum(c.amount_yen for c in charges(plan, mid)) for mid in municipality_ids}


# ---------------------------------------------------------------- statements


def statements_of(plan: TrainingPlan, municipality_id: int) -> list[FeeStatement]:
    return list(db.session.scalars(select(FeeStatement).where(
        FeeStatement.plan_id == plan.id, FeeStatement.municipality_id == municipality_id)
        .order_by(FeeStatement.version)))


def issue_statement(actor, plan: TrainingPlan, municipality_id: int) -> FeeStatement:
    """Bill what is not billed yet: the first statement carries every charge; a later one
    only the differences since (as correction lines). Refused when there is nothing new."""
    _require_platform_admin(actor)
    billed: dict[int, int] = defaultdict(int)
    for enrollment_id, amount in db.session.execute(
        select(FeeStatementLine.enrollment_id, func.sum(FeeStatementLine.amount_yen))
        .join(FeeStatement, FeeStatement.id == FeeStatementLine.statement_id)
        .where(FeeStatement.plan_id == plan.id, FeeStatement.municipality_id == municipality_id)
        .group_by(FeeStatementLine.enrollment_id)
    ):
        billed[enrollment_id] = int(amount or 0)
    first = not billed and not statements_of(plan, municipality_id)
    now_charges = {c.enrollment_id: c for c in charges(plan, municipality_id)}
    lines: list[FeeStatementLine] = []
    for enrollment_id, charge in now_charges.items():
        difference = charge.amount_yen - billed.pop(enrollment_id, 0)
        if difference == 0 and not (first and charge.amount_yen == 0):
            continue
        corrected = not first and difference != charge.amount_yen
        lines.append(FeeStatementLine(
            enrollment_id=enrollment_id, kind=LINE_CORRECTION if corrected else charge.kind,
            course_title=charge.course_title, session_starts_at=charge.session_starts_at,
            staff_name=charge.staff_name, employee_number=charge.employee_number, fee_yen=charge.fee_yen,
            exemption_percent=charge.exemption_percent, amount_yen=difference,
            note=f"訂正（前回までの請求 {charge.amount_yen - difference:,}円）" if corrected else "",
        ))
    # Billed before, no longer charged (cancelled in time, session cancelled): a negative line.
    gone = [eid for eid, amount in billed.items() if amount]
    if gone:
        details = {row.id: row for row in db.session.execute(
            select(Enrollment.id, Course.title, TrainingSession.starts_at, StaffMember.full_name,
                   StaffMember.employee_number)
            .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
            .join(Course, Course.id == TrainingSession.course_id)
            .join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
            .where(Enrollment.id.in_(gone)))}
        for eid in gone:
            row = details[eid]
            lines.append(FeeStatementLine(
                enrollment_id=eid, kind=LINE_CORRECTION, course_title=row.title, session_starts_at=as_utc(row.starts_at),
                staff_name=row.full_name, employee_number=row.employee_number, fee_yen=0, exemption_percent=0,
                amount_yen=-billed[eid],
                note=f"訂正（請求の取消し。前回までの請求 {billed[eid]:,}円）",
            ))
    if not lines:
        raise InvalidInput(_("前回の請求書から変わった負担金はありません。"))
    version = (db.session.scalar(select(func.max(FeeStatement.version)).where(
        FeeStatement.plan_id == plan.id, FeeStatement.municipality_id == municipality_id)) or 0) + 1
    statement = FeeStatement(plan_id=plan.id, municipality_id=municipality_id, version=version,
                             total_yen=sum(line.amount_yen for line in lines), issued_by_id=actor.id,
                             issued_at=utcnow())
    statement.lines = lines
    db.session.add(statement)
    db.session.flush()
    record_action(actor, "plan.statement", "fee_statement", statement.id, municipality_id, plan_id=plan.id,
                  version=version, total_yen=statement.total_yen, lines=len(lines))
    return statement
