"""Who approves a request at each step, and what each step answered (承認の経路).

A course's approval goes through the learner's 所属長 (``Course.supervisor_approval``), then
their municipality's training office (``Course.requires_approval``), or through either alone.
A pending enrollment's ``approval_step`` names the step it waits for. The 所属長 of a
learner are the roster entries of the same municipality and 所属 marked ``department_head``
or ``deputy_head`` (代理), other than the learner. Where a 所属 has none, the request goes
on to the training office with a note (never a request nobody can answer).
"""

from __future__ import annotations

from datetime import date, timedelta

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import joinedload

from lms.audit.services import record_action
from lms.common.database import begin_write
from lms.common.errors import InvalidInput, NotAllowed, NotFound
from lms.common.timeutil import today_tokyo, utcnow
from lms.courses.models import TrainingSession
from lms.enrollment import rules
from lms.enrollment.models import (
    APPROVED,
    NOT_SELECTED,
    OFFICE_STEP,
    PENDING,
    RESERVED,
    RESUBMITTED,
    RETURNED,
    RETURNED_STEP,
    SELECTED,
    SELECTION_STEP,
    SKIPPED_NO_APPROVER,
    STEP_REJECTED,
    SUPERVISOR_STEP,
    ApprovalDelegation,
    Enrollment,
    EnrollmentApproval,
)
from lms.extensions import db
from lms.roster.models import ACTIVE, StaffMember

STEP_LABELS = {SUPERVISOR_STEP: _l("所属長"), OFFICE_STEP: _l("研修担当"), SELECTION_STEP: _l("選考"),
               RETURNED_STEP: _l("申込者")}
DECISION_LABELS = {
    APPROVED: _l("承認"),
    STEP_REJECTED: _l("承認しない"),
    SKIPPED_NO_APPROVER: _l("所属長が登録されていないため、研修担当の承認に進みました"),
    RETURNED: _l("差し戻し"),
    RESUBMITTED: _l("申し込み直し"),
    SELECTED: _l("受講決定"),
    RESERVED: _l("補欠（キャンセル待ち）"),
    NOT_SELECTED: _l("見送り"),
}


def _heads_of(municipality_id: int, department: str):
    return and_(
        StaffMember.municipality_id == municipality_id,
        StaffMember.department == department,
        StaffMember.status == ACTIVE,
        or_(StaffMember.department_head.is_(True), StaffMember.deputy_head.is_(True)),
    )


def _delegations_now(**where):
    today = today_tokyo()
    return select(ApprovalDelegation).where(ApprovalDelegation.starts_on <= today, ApprovalDelegation.ends_on >= today,
                                            *(getattr(ApprovalDelegation, k) == v for k, v in where.items()))


def supervisors_of(member: StaffMember) -> list[StaffMember]:
    """Who approves ``member``'s requests as 所属長: the head and deputies of their 所属, and
    whoever stands in for one of them today (a delegation), never the member themselves."""
    if not (member.department or "").strip():
        return []
    heads = list(db.session.scalars(
        select(StaffMember).where(_heads_of(member.municipality_id, member.department))
        .order_by(StaffMember.deputy_head, StaffMember.id)
    ))
    out = [head for head in heads if head.id != member.id]
    if heads:
        today = today_tokyo()
        delegates = db.session.scalars(
            select(StaffMember).join(ApprovalDelegation, ApprovalDelegation.delegate_id == StaffMember.id)
            .where(ApprovalDelegation.delegator_id.in_([h.id for h in heads]), StaffMember.status == ACTIVE,
                   ApprovalDelegation.starts_on <= today, ApprovalDelegation.ends_on >= today)
        ).all()
        for delegate in delegates:  # one row per delegation: someone named twice comes twice
            if delegate.id != member.id and delegate not in out:
                out.append(delegate)
    return out


def departments_with_heads(municipality_id: int) -> set[str]:
    """The 所属 of a municipality that have a 所属長 or deputy (one query for a whole page)."""
    return set(db.session.scalars(
        select(StaffMember.department).where(
            StaffMember.municipality_id == municipality_id, StaffMember.status == ACTIVE,
            or_(StaffMember.department_head.is_(True), StaffMember.deputy_head.is_(True)),
        ).distinct()
    ))


def acting_for(user) -> tuple[StaffMember | None, list[tuple[int, str]]]:
    """The roster entry of ``user`` and the 所属 (municipality, 所属) whose requests they approve
    today: their own as 所属長 or deputy, and those of the heads they stand in for."""
    if user is None or not getattr(user, "is_authenticated", True):
        return None, []
    me = db.session.scalar(select(StaffMember).where(StaffMember.user_id == user.id))
    if me is None or me.status != ACTIVE:
        return me, []
    departments: list[tuple[int, str]] = []
    if (me.department_head or me.deputy_head) and (me.department or "").strip():
        departments.append((me.municipality_id, me.department))
    for delegation in db.session.scalars(_delegations_now(delegate_id=me.id)):
        head = delegation.delegator
        heads_one = head.status == ACTIVE and (head.department_head or head.deputy_head) and (head.department or "").strip()
        if heads_one and (head.municipality_id, head.department) not in departments:
            departments.append((head.municipality_id, head.department))
    return me, departments


def supervised_by(user) -> StaffMember | None:
    """The roster entry through which ``user`` approves as 所属長, deputy or stand-in (None: they do not)."""
    me, departments = acting_for(user)
    return me if departments else None


def is_supervisor_of(user, member: StaffMember) -> bool:
    me, departments = acting_for(user)
    return me is not None and me.id != member.id and (member.municipality_id, member.department) in departments


def start(enrollment: Enrollment, member: StaffMember, course) -> None:
    """A new pending request: the first step that has an approver (the caller flushes)."""
    step = rules.first_step(course, enrollment.source)
    if step == SUPERVISOR_STEP and not supervisors_of(member):
        db.session.add(EnrollmentApproval(enrollment_id=enrollment.id, step=SUPERVISOR_STEP,
                                          decision=SKIPPED_NO_APPROVER, decided_at=utcnow()))
        step = OFFICE_STEP  # the office answers, whether or not the course asks for it
    enrollment.approval_step = step


def record(enrollment: Enrollment, step: str, decision: str, actor, comment: str = "") -> None:
    db.session.add(EnrollmentApproval(enrollment_id=enrollment.id, step=step, decision=decision,
                                      actor_id=getattr(actor, "id", None), comment=comment, decided_at=utcnow()))


def history(enrollment_ids: list[int]) -> dict[int, list[EnrollmentApproval]]:
    """Each enrollment's answered steps, in order (for the learner's and the office's pages)."""
    out: dict[int, list[EnrollmentApproval]] = {}
    if not enrollment_ids:
        return out
    for row in db.session.scalars(select(EnrollmentApproval).where(EnrollmentApproval.enrollment_id.in_(enrollment_ids))
                                  .order_by(EnrollmentApproval.decided_at, EnrollmentApproval.id)):
        out.setdefault(row.enrollment_id, []).append(row)
    return out


def waiting_for_supervisor(me: StaffMember, departments: list[tuple[int, str]]) -> list[Enrollment]:
    """The requests of ``departments`` waiting for their 所属長 (not ``me``'s own), oldest first."""
    if not departments:
        return []
    return list(db.session.scalars(
        select(Enrollment).join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
        .options(joinedload(Enrollment.staff_member), joinedload(Enrollment.session).joinedload(TrainingSession.course))
        .where(Enrollment.status == PENDING, Enrollment.approval_step == SUPERVISOR_STEP, StaffMember.id != me.id,
               or_(*(and_(StaffMember.municipality_id == mid, StaffMember.department == department)
                     for mid, department in departments)))
        .order_by(Enrollment.requested_at, Enrollment.id)
    ).unique())


def approved_earlier(answered: list[EnrollmentApproval], user) -> str | None:
    """The step of this round of a request (since it was last sent again) that ``user``
    approved, if any: the same person never approves two steps of one request (a 所属長's
    stand-in who is also a 研修担当, say), so nobody answers alone for two. ``answered``:
    the request's ``history``, in order."""
    user_id = getattr(user, "id", None)
    earlier = None
    for row in answered:
        if row.decision == RESUBMITTED:
            earlier = None
        elif row.decision == APPROVED and user_id is not None and row.actor_id == user_id:
            earlier = row.step
    return earlier


def approved_earlier_message(earlier: str, step: str | None) -> str:
    """Why the approver of an earlier step does not answer this one (the refusal and the office's page)."""
    return _("この申込の%(earlier)sの承認をしたため、%(step)sはほかの方が行います。",
             earlier=step_label(earlier), step=awaited(step))


def step_label(step: str | None) -> str:
    return str(STEP_LABELS.get(step or OFFICE_STEP, ""))


def decision_labels() -> dict[str, str]:
    return {key: str(label) for key, label in DECISION_LABELS.items()}


# What a request waiting at each step waits for: the one source of these words (the learner's
# answer and acknowledgement mail, マイページ, the approver's answer).
STEP_AWAITED = {SUPERVISOR_STEP: _l("所属長の承認"), OFFICE_STEP: _l("研修担当の承認"), SELECTION_STEP: _l("主催者の選考")}


def awaited(step: str | None) -> str:
    """What a request at ``step`` waits for: 「所属長の承認」, 「研修担当の承認」, 「主催者の選考」."""
    return str(STEP_AWAITED.get(step or OFFICE_STEP, STEP_AWAITED[OFFICE_STEP]))


def _returned_message() -> str:
    return _("差し戻されました。内容を確かめ、補足を書いて申し込み直すか、申込を取り消してください。")


def waiting_message(enrollment: Enrollment) -> str:
    """"所属長の承認待ち" / "研修担当の承認待ち" / "差し戻し" for a pending request."""
    if enrollment.approval_step == RETURNED_STEP:
        return _returned_message()
    if enrollment.approval_step == SELECTION_STEP:
        return _("%(step)s待ち（結果はメールでお知らせします）", step=awaited(SELECTION_STEP))
    return _("%(step)s待ち", step=awaited(enrollment.approval_step))


def received_message(step: str | None) -> str:
    """The learner's pending request in one sentence, naming the step it waits for (the answer
    to their request and its acknowledgement mail say the same)."""
    if step == RETURNED_STEP:
        return _returned_message()
    return _("受講申込を受け付けました。%(step)sをお待ちください。", step=awaited(step))


def next_step_message(step: str | None) -> str:
    """What an approver is told after approving at one step: the step the request goes on to."""
    return _("%(step)sに進みます。", step=awaited(step))


# ---------------------------------------------------------------- stand-ins while a head is away

MAX_DELEGATION_DAYS = 366


def delegations_of(me: StaffMember) -> list[ApprovalDelegation]:
    """``me``'s stand-ins that have not ended yet, soonest first."""
    return list(db.session.scalars(
        select(ApprovalDelegation).options(joinedload(ApprovalDelegation.delegate))
        .where(ApprovalDelegation.delegator_id == me.id, ApprovalDelegation.ends_on >= today_tokyo())
        .order_by(ApprovalDelegation.starts_on, ApprovalDelegation.id)
    ))


# What naming a stand-in did (``delegate_approvals``): a new delegation, an existing one (or
# several that now touch) made one longer, or nothing, the days being covered already.
NAMED, EXTENDED, COVERED = "named", "extended", "covered"


def delegate_approvals(user, employee_number: str, starts_on: date,
                       ends_on: date) -> tuple[ApprovalDelegation, str]:
    """A 所属長 (or deputy) names who approves in their place from ``starts_on`` to ``ends_on``:
    someone of their municipality on the roster, by 職員番号. Naming the same person again for
    days that overlap or touch (by a day) their stand-ins joins all of them into one (a head
    extending an absence names them again; two delegations would make them an approver
    twice), within the one-year limit; days one of them covers already change nothing. A
    refusal names the form field it concerns (``field=``). Returns the delegation and what
    was done (``NAMED``, ``EXTENDED``, ``COVERED``). The caller commits."""
    begin_write()
    me = db.session.scalar(select(StaffMember).where(StaffMember.user_id == user.id))
    if me is None or me.status != ACTIVE or not (me.department_head or me.deputy_head):
        raise NotAllowed(_("代理を指名できるのは、所属長とその代理だけです。"))
    number = (employee_number or "").strip()
    delegate = db.session.scalar(select(StaffMember).where(
        StaffMember.municipality_id == me.municipality_id, StaffMember.employee_number == number))
    if delegate is None or delegate.status != ACTIVE:
        raise InvalidInput(_("職員番号 %(number)s の職員が、名簿（在職）に見つかりません。", number=number or "—"),
                           field="employee_number")
    if delegate.id == me.id:
        raise InvalidInput(_("自分自身は代理に指名できません。"), field="employee_number")
    if ends_on < starts_on:
        raise InvalidInput(_("終了日は開始日以降の日付にしてください。"), field="ends_on")
    if ends_on < today_tokyo():
        raise InvalidInput(_("終了日が過ぎています。今日以降の日付にしてください。"), field="ends_on")
    joined = list(db.session.scalars(
        select(ApprovalDelegation).where(ApprovalDelegation.delegator_id == me.id,
                                         ApprovalDelegation.delegate_id == delegate.id,
                                         ApprovalDelegation.starts_on <= ends_on + timedelta(days=1),
                                         ApprovalDelegation.ends_on >= starts_on - timedelta(days=1))
        .order_by(ApprovalDelegation.starts_on, ApprovalDelegation.id)))
    covering = next((d for d in joined if d.starts_on <= starts_on and d.ends_on >= ends_on), None)
    if covering is not None:
        return covering, COVERED
    if joined:
        starts_on = min(starts_on, *(d.starts_on for d in joined))
        ends_on = max(ends_on, *(d.ends_on for d in joined))
    if (ends_on - starts_on).days >= MAX_DELEGATION_DAYS:
        raise InvalidInput(_("代理の期間は 1 年以内にしてください。"), field="ends_on")
    if joined:
        delegation, *merged = joined
        delegation.starts_on, delegation.ends_on = starts_on, ends_on
        for other in merged:
            db.session.delete(other)
    else:
        delegation = ApprovalDelegation(delegator_id=me.id, delegate_id=delegate.id, starts_on=starts_on,
                                        ends_on=ends_on, created_by_id=user.id)
        db.session.add(delegation)
    db.session.flush()
    record_action(user, "enrollment.delegate", "staff_member", delegate.id, me.municipality_id,
                  starts_on=starts_on.isoformat(), ends_on=ends_on.isoformat(), extended=bool(joined))
    return delegation, EXTENDED if joined else NAMED


def delegation_of(user, delegation_id: int) -> ApprovalDelegation:
    """One of ``user``'s own stand-ins (anyone else's is missing). Raises NotFound."""
    me = db.session.scalar(select(StaffMember).where(StaffMember.user_id == user.id))
    delegation = db.session.get(ApprovalDelegation, delegation_id)
    if me is None or delegation is None or delegation.delegator_id != me.id:
        raise NotFound(_("代理の指名が見つかりません。"))
    return delegation


def end_delegation(user, delegation_id: int) -> None:
    """Withdraw one of ``user``'s stand-ins. The caller commits."""
    begin_write()
    delegation = delegation_of(user, delegation_id)
    record_action(user, "enrollment.delegate_end", "staff_member", delegation.delegate_id,
                  delegation.delegator.municipality_id)
    db.session.delete(delegation)
