"""The enrollment area's reactions to the courses and roster areas' events (in the sender's
transaction)."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import func, select

from lms.common import signals
from lms.common.errors import InvalidInput
from lms.common.i18n import join_list
from lms.common.jobs import hand_over_after_commit
from lms.common.signals import (
    course_unpublishing,
    quotas_added,
    session_cancelled,
    session_created,
    session_moving,
    session_updated,
    staff_member_left,
    staff_member_transferred,
)
from lms.courses.models import Course, TrainingSession
from lms.enrollment import approvals, seats
from lms.enrollment.models import (
    ACTIVE_STATUSES,
    OFFICE_STEP,
    PENDING,
    SKIPPED_NO_APPROVER,
    SUPERVISOR_STEP,
    Enrollment,
)
from lms.enrollment.services import cancel_all_enrollments, follow_new_part, promote_waitlist
from lms.enrollment.tasks import withdraw_departed_soon
from lms.extensions import db


@session_updated.connect
def _promote_into_new_seats(session: TrainingSession, actor=None, changes=None, **_kw) -> None:
    """Seats added (capacity up, a quota changed or removed) go to the waitlist at once."""
    changes = changes or {}
    more = False
    if "capacity" in changes:
        old, new = changes["capacity"]
        more = new > old
    if "quotas" in changes:
        # Any change of the quotas can free seats: more for a municipality, or fewer held
        # for one (seats nobody holds go to whoever waits first).
        before, after = changes["quotas"]
        more = more or before != after
    if more:
        promote_waitlist(session, actor)


@quotas_added.connect
def _count_holders_of_new_quotas(session: TrainingSession, quotas=(), **_kw) -> None:
    """A new 割当 holds the municipality's people already confirmed in the session."""
    if quotas:
        seats.count_quota_holders(session, list(quotas))


@session_moving.connect
def _refuse_double_booking(session: TrainingSession, starts_at=None, ends_at=None, accept_clashes=False,
                           **_kw) -> None:
    """A session moved onto the time of another in which some of its confirmed enrollees
    also hold a place: refused unless the organiser confirms it (after talking to them)."""
    if accept_clashes or starts_at is None or ends_at is None:
        return
    clashing = seats.confirmed_clashing_at(session.id, starts_at, ends_at)
    if not clashing:
        return
    names = join_list(clashing[:5]) + (_("ほか %(n)d 人", n=len(clashing) - 5) if len(clashing) > 5 else "")
    raise InvalidInput(_("この日時に変えると、受講が決まっている %(n)d 人（%(names)s）がほかの研修回と時間が重なります。日時を見直すか、受講者と調整したうえで「時間が重なる受講者がいることを確認のうえ変更する」にチェックして保存してください。",
                         n=len(clashing), names=names), field="accept_clashes")


@session_created.connect
def _places_in_a_new_part(session: TrainingSession, actor=None, **_kw) -> None:
    """A part added to a 連続講座: whoever has a place in the series has one in it too."""
    if session.series_id is not None and session.series_id != session.id and session.makeup_for_id is None:
        follow_new_part(session, actor)


@session_cancelled.connect
def _cancel_enrollments(session: TrainingSession, actor=None, reason: str = "", **_kw) -> None:
    """Everyone in a cancelled session is cancelled (and told), counters back to zero."""
    cancel_all_enrollments(session, actor, reason or _("研修回の中止"))


@course_unpublishing.connect
def _refuse_while_places_are_held(course: Course, **_kw) -> None:
    held = db.session.scalar(
        select(func.count())
        .select_from(Enrollment)
        .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
        .where(TrainingSession.course_id == course.id, Enrollment.status.in_(ACTIVE_STATUSES))
    )
    if held:
        raise InvalidInput(_("申込者がいるため非公開にできません。研修を中止するか、各回を中止してください。"))


@staff_member_transferred.connect
def _reroute_waiting_requests(_sender, staff_member_id: int, from_department: str = "", to_department: str = "",
                              actor=None, **_kw) -> None:
    """A learner moved to another 所属: their requests waiting for a 所属長 now wait for the new
    所属's (or, where it has none, for the training office); the approvers are told."""
    waiting = db.session.scalars(select(Enrollment).where(
        Enrollment.staff_member_id == staff_member_id, Enrollment.status == PENDING,
        Enrollment.approval_step == SUPERVISOR_STEP)).all()
    for enrollment in waiting:
        if not approvals.supervisors_of(enrollment.staff_member):
            approvals.record(enrollment, SUPERVISOR_STEP, SKIPPED_NO_APPROVER, None)
            enrollment.approval_step = OFFICE_STEP
            db.session.flush()
        signals.approval_step_reached.send(enrollment, step=enrollment.approval_step, actor=actor,
                                           moved_from=from_department)


@staff_member_left.connect
def _give_up_later_places(_sender, staff_member_id: int, **_kw) -> None:
    """A learner recorded as 退職・転出: once that is committed, the worker cancels their places
    in sessions after their departure day (lms.enrollment.services.withdraw_departed_staff),
    each seat going to the waitlist. Not in the roster's transaction: a CSV import of a
    hundred departures does not hold a hundred sessions' locks."""
    # (inline runs, the tests, call lms.enrollment.services.withdraw_departed_staff themselves)
    hand_over_after_commit(withdraw_departed_soon, key="withdraw-departed", inline=False,
                           what="the withdrawal of departed staff")
