"""The enrollment rules as pure functions: no database, no clock, no Flask request.

Each ``check_*`` raises the refusal a learner or an admin sees (user-facing Japanese);
``seat_free`` and ``arrival_status`` decide where a new arrival goes. The operations in
``lms.enrollment.services`` call them on rows they hold locked.

Quota (割当人数) semantics: a municipality that has a SessionQuota row can hold at most
``seats`` confirmed seats; municipalities without a row share the capacity without a cap
of their own; the total never exceeds ``capacity``.
"""

from __future__ import annotations

from datetime import date, datetime

from flask_babel import gettext as _

from lms.common.errors import Conflict, DomainError
from lms.common.templating import format_date_jst
from lms.common.timeutil import as_utc, to_tokyo
from lms.courses import audience
from lms.courses.models import PUBLISHED, SCHEDULED, Course, SessionQuota, TrainingSession
from lms.enrollment.models import CONFIRMED, OFFICE_STEP, PENDING, SELECTION_STEP, SELF, SUPERVISOR_STEP, WAITLISTED
from lms.roster.models import StaffMember

# ---------------------------------------------------------------- refusals


class EnrollmentError(DomainError):
    """Base of the enrollment rules' refusals (message is user-facing Japanese)."""


class EnrollmentClosed(EnrollmentError):
    """Outside the enrollment window, or the session/course is not open."""


class SessionStarted(EnrollmentError):
    """The session has already started (or ended)."""


class NotEligible(EnrollmentError):
    """The staff member's municipality may not take this course, or the staff member left."""


class MissingPrerequisite(NotEligible):
    """A course required first (受講要件) is not completed; ``courses``: [(id, title)] of the
    missing ones, for the page to link them."""

    def __init__(self, message: str, courses: list[tuple[int, str]]):
        super().__init__(message)
        self.courses = courses


class OverlapsConfirmed(EnrollmentError, Conflict):
    """The staff member is confirmed in another session at the same time."""


# ---------------------------------------------------------------- window


def utc(value: datetime) -> datetime:
    """A stored time as aware UTC (SQLite returns naive values)."""
    return as_utc(value) or value


def has_started(session: TrainingSession, now: datetime) -> bool:
    return now >= utc(session.starts_at)


def after_departure(starts_at: datetime, left_on: date) -> bool:
    """A session on a later day (in Tokyo) than a staff member's departure (退職・転出): their
    place in it is given up. On the day itself they are still staff."""
    return to_tokyo(starts_at).date() > left_on


def departure_refusal(starts_at: datetime, left_on: date | None) -> str:
    """Why a staff member leaving on ``left_on`` (a scheduled departure) cannot take a place
    in a session starting at ``starts_at``, or "" (the service refuses, the course page says it)."""
    if left_on is None or not after_departure(starts_at, left_on):
        return ""
    return _("%(date)s に退職・転出の予定のため、それより後の研修回には申し込めません。", date=format_date_jst(left_on))


def check_open(session: TrainingSession, course: Course, now: datetime) -> None:
    """The session takes enrollments now: scheduled, course published, not started, inside
    its enrollment window — and not a later part of a 連続講座 (requested on its first part)."""
    if session.series_id is not None and session.series_id != session.id and session.makeup_for_id is None:
        raise EnrollmentClosed(_("この回は連続講座の一部です。連続講座の最初の回から申し込んでください（すべての回にまとめて申し込みます）。"))
    if session.status != SCHEDULED or course.status != PUBLISHED:
        raise EnrollmentClosed(_("この研修回は申込を受け付けていません。"))
    if has_started(session, now):
        raise SessionStarted(_("この研修回はすでに開始しているため、申し込めません。"))
    opens, closes = as_utc(session.enroll_opens_at), as_utc(session.enroll_closes_at)
    if opens is not None and now < opens:
        raise EnrollmentClosed(_("申込受付はまだ始まっていません。"))
    if closes is not None and now > closes:
        raise EnrollmentClosed(_("申込受付は締め切りました。"))


# ---------------------------------------------------------------- eligibility


def check_eligible(course: Course, member: StaffMember) -> None:
    """The staff member is on the roster, the course is open to their municipality, and they
    are in its audience (職層, 職名, years of service, new hires: lms.courses.audience)."""
    if not member.is_active:
        raise NotEligible(_("在籍中の職員ではないため、申し込めません。"))
    if not course.is_open_to(member.municipality_id):
        raise NotEligible(_("この研修はあなたの所属する自治体の職員を対象としていません。"))
    if audience.has_rules(course):
        why = audience.refusal(course, audience.profile_of(member))
        if why:
            raise NotEligible(why)


# ---------------------------------------------------------------- overlap


def overlaps(a_starts: datetime, a_ends: datetime, b_starts: datetime, b_ends: datetime) -> bool:
    """Two periods share a moment (touching ends do not)."""
    return utc(a_starts) < utc(b_ends) and utc(b_starts) < utc(a_ends)


def overlap_refusal(course_title: str, session_title: str) -> OverlapsConfirmed:
    return OverlapsConfirmed(
        _("同じ時間帯に受講が確定している研修（%(title)s）があります。",
          title=f"{course_title} {session_title}".strip())
    )


# ---------------------------------------------------------------- quota and seat


def quota_has_room(quota: SessionQuota | None) -> bool:
    """A municipality without a quota row shares the capacity; with one, up to its seats."""
    return quota is None or quota.confirmed_count < quota.seats


def held_for_others(quotas: list[SessionQuota], municipality_id: int) -> int:
    """Seats of the session held (割当人数) and not yet filled by the other municipalities."""
    return sum(max(q.seats - q.confirmed_count, 0) for q in quotas if q.municipality_id != municipality_id)


# Why an arrival waits (the learner and the office are told which): the capacity is reached;
# the municipality's own 割当人数 is; or the seats left are held for other municipalities.
FULL, QUOTA_FULL, HELD = "full", "quota_full", "held"


def waitlist_reason(session: TrainingSession, quota: SessionQuota | None) -> str:
    """Why a request that found no free seat (``seat_free`` false) waits."""
    if session.confirmed_count >= session.capacity:
        return FULL
    if not quota_has_room(quota):
        return QUOTA_FULL
    return HELD


def seat_free(session: TrainingSession, quota: SessionQuota | None, held: int = 0,
              ahead: list[tuple[int, int]] | None = None, quota_ids: set[int] | None = None) -> bool:
    """A confirmed seat is free for a municipality: with a quota row, while the capacity and
    its quota have room (its held seats are inside the capacity); without one, only among the
    seats nobody holds — ``held``: the unfilled seats of the municipalities with quotas, which
    stay theirs until released (lms.courses.services.release_session_quotas).

    ``ahead``: (arrival_seq, municipality) of the requests that arrived earlier and are still
    with their approvers (``seats.pending_in_turn``, filtered to those before this one): seats
    are decided in the order requests arrived, so those keep a seat each from a later request
    decided first — in the capacity, and in their municipality's quota if it has one
    (``quota_ids``: the municipalities with a quota row; theirs are inside ``held`` already)."""
    ahead = ahead or []
    if quota is not None:
        same = sum(1 for _seq, mid in ahead if mid == quota.municipality_id)
        return session.confirmed_count + len(ahead) < session.capacity and quota.confirmed_count + same < quota.seats
    unheld = sum(1 for _seq, mid in ahead if mid not in (quota_ids or set()))
    return session.confirmed_count + held + unheld < session.capacity


def ahead_of(pending: list[tuple[int, int]], arrival_seq: int) -> list[tuple[int, int]]:
    """The pending requests (``seats.pending_in_turn``) that arrived before ``arrival_seq``."""
    return [(seq, mid) for seq, mid in pending if seq < arrival_seq]


def needs_approval(course: Course, source: str, makeup: bool = False) -> bool:
    """A learner's own request to a course with approval waits for its approvers (their 所属長,
    their training office, or both, then the organiser's 選考). A training office's nomination
    (推薦, by form or CSV) is the office's own decision and stands for the steps up to and
    including its own, but the organiser's 選考 stays theirs (``first_step``), as for a swap
    (``step_after_swap``). A request for a make-up part (補講) of a 連続講座 the learner was
    given a place in waits for nobody."""
    if makeup:
        return False
    if source == SELF:
        return bool(approval_steps(course))
    return bool(course.selection)


def first_step(course: Course, source: str) -> str:
    """The step a new request that ``needs_approval`` waits for first (before the 所属長 check:
    a 所属 without a head goes to its training office, lms.enrollment.approvals.start)."""
    if source != SELF:
        return SELECTION_STEP  # a nomination: only the organiser's 選考 is left
    steps = approval_steps(course)
    return steps[0] if steps else OFFICE_STEP


def approval_steps(course: Course) -> tuple[str, ...]:
    """The steps a learner's own request passes, in order."""
    steps: tuple[str, ...] = ()
    if course.supervisor_approval:
        steps += (SUPERVISOR_STEP,)
    if course.requires_approval:
        steps += (OFFICE_STEP,)
    if course.selection:
        steps += (SELECTION_STEP,)
    return steps


# The steps in the order they come (a course asks for some of them).
_STEP_ORDER = (SUPERVISOR_STEP, OFFICE_STEP, SELECTION_STEP)


def step_after(course: Course, step: str) -> str | None:
    """The step of the course that follows ``step`` (None: the request is decided). ``step``
    may be one the course does not ask for (the training office answering for a 所属 without
    a head): the course's next step after it still follows."""
    later = _STEP_ORDER[_STEP_ORDER.index(step) + 1:] if step in _STEP_ORDER else ()
    return next((s for s in approval_steps(course) if s in later), None)


def step_after_swap(course: Course, step: str | None) -> str | None:
    """The step a request swapped by the training office (差し替え) waits for: the swap is the
    office's own decision and, as its nomination does, stands for the steps up to and including
    its own (the 所属長's too, for the person it names); the organiser's 選考 stays theirs.
    None: no step is left, the request is decided."""
    if step == SELECTION_STEP:
        return SELECTION_STEP
    return step_after(course, OFFICE_STEP)


def arrival_status(course: Course, source: str, seat_is_free: bool, makeup: bool = False) -> str:
    """Where a new arrival goes: pending approval, a confirmed seat or the waitlist."""
    if needs_approval(course, source, makeup):
        return PENDING
    return CONFIRMED if seat_is_free else WAITLISTED
