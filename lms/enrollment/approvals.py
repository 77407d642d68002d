"""Who approves a request at each step, and what each step answered (承認の経路).

A course's approval goes through the learner's 所属長 (``Course.supervisor_approval``), then
their municipality's training office (``Course.requires_approval``), or through either alone.
A pending enrollment's ``approval_step`` names the step it waits for. The 所属長 of a
learner are the roster entries of the same municipality and 所属 marked ``department_head``
or ``deputy_head`` (代理), other than the learner. Where a 所属 has none, the request goes
on to the training office with a note (never a request nobody can answer).
"""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import joinedload

from lms.common.timeutil import utcnow
from lms.courses.models import TrainingSession
from lms.enrollment import rules
from lms.enrollment.models import (
    APPROVED,
    OFFICE_STEP,
    PENDING,
    SKIPPED_NO_APPROVER,
    STEP_REJECTED,
    SUPERVISOR_STEP,
    Enrollment,
    EnrollmentApproval,
)
from lms.extensions import db
from lms.roster.models import ACTIVE, StaffMember

STEP_LABELS = {SUPERVISOR_STEP: _l("所属長"), OFFICE_STEP: _l("研修担当")}
DECISION_LABELS = {
    APPROVED: _l("承認"),
    STEP_REJECTED: _l("承認しない"),
    SKIPPED_NO_APPROVER: _l("所属長が登録されていないため、研修担当の承認に進みました"),
}


def _heads_of(municipality_id: int, department: str):
    return and_(
        StaffMember.municipality_id == municipality_id,
        StaffMember.department == department,
        StaffMember.status == ACTIVE,
        or_(StaffMember.department_head.is_(True), StaffMember.deputy_head.is_(True)),
    )


def supervisors_of(member: StaffMember) -> list[StaffMember]:
    """The 所属長 and deputies who approve ``member``'s requests (not the member themselves)."""
    if not (member.department or "").strip():
        return []
    return list(db.session.scalars(
        select(StaffMember).where(_heads_of(member.municipality_id, member.department), StaffMember.id != member.id)
        .order_by(StaffMember.deputy_head, StaffMember.id)
    ))


def departments_with_heads(municipality_id: int) -> set[str]:
    """The 所属 of a municipality that have a 所属長 or deputy (one query for a whole page)."""
    return set(db.session.scalars(
        select(StaffMember.department).where(
            StaffMember.municipality_id == municipality_id, StaffMember.status == ACTIVE,
            or_(StaffMember.department_head.is_(True), StaffMember.deputy_head.is_(True)),
        ).distinct()
    ))


def supervised_by(user) -> StaffMember | None:
    """The roster entry through which ``user`` approves as 所属長 or deputy (None: they do not)."""
    if user is None or not getattr(user, "is_authenticated", True):
        return None
    head = db.session.scalar(select(StaffMember).where(StaffMember.user_id == user.id))
    if head is None or head.status != ACTIVE or not (head.department_head or head.deputy_head):
        return None
    if not (head.department or "").strip():
        return None
    return head


def is_supervisor_of(user, member: StaffMember) -> bool:
    head = supervised_by(user)
    return (head is not None and head.id != member.id and head.municipality_id == member.municipality_id
            and head.department == member.department)


def start(enrollment: Enrollment, member: StaffMember, course) -> None:
    """A new pending request: the first step that has an approver (the caller flushes)."""
    steps = rules.approval_steps(course)
    step = steps[0] if steps else OFFICE_STEP
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


def waiting_for_supervisor(head: StaffMember) -> list[Enrollment]:
    """The requests of ``head``'s 所属 waiting for the 所属長, oldest first."""
    return list(db.session.scalars(
        select(Enrollment).join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
        .options(joinedload(Enrollment.staff_member), joinedload(Enrollment.session).joinedload(TrainingSession.course))
        .where(Enrollment.status == PENDING, Enrollment.approval_step == SUPERVISOR_STEP,
               StaffMember.municipality_id == head.municipality_id, StaffMember.department == head.department,
               StaffMember.id != head.id)
        .order_by(Enrollment.requested_at, Enrollment.id)
    ).unique())


def step_label(step: str | None) -> str:
    return str(STEP_LABELS.get(step or OFFICE_STEP, ""))


def waiting_message(enrollment: Enrollment) -> str:
    """"所属長の承認待ち" / "研修担当の承認待ち" for a pending request."""
    if enrollment.approval_step == SUPERVISOR_STEP:
        return _("所属長の承認待ち")
    return _("研修担当の承認待ち")
