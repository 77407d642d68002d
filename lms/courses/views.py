"""What the course page shows for each session: seats, waitlist, my place, and whether
(and why not) I can enroll — computed with a fixed number of queries per page."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _

from lms.common.templating import format_datetime_jst
from lms.common.timeutil import as_utc, utcnow
from lms.courses.models import CANCELLED, PUBLISHED, Course, TrainingSession


@dataclass
class SessionView:
    session: TrainingSession
    free_seats: int
    waitlist: int
    upcoming: bool
    my_enrollment: object | None = None  # lms.enrollment.models.Enrollment
    my_status_text: str = ""
    waitlist_position: int | None = None
    can_enroll: bool = False
    enroll_label: str = ""
    why_not: str = ""
    can_cancel: bool = False
    why_not_cancel: str = ""


def _enroll_refusal(session: TrainingSession, course: Course, municipality_id: int | None, now: datetime,
                    has_member: bool) -> str:
    """Why a learner cannot enroll in ``session`` now (plain Japanese), or "" if they can."""
    if session.status == CANCELLED:
        return _("この回は中止になりました。")
    if course.status != PUBLISHED:
        return _("この研修は公開されていないため、申し込めません。")
    if now >= as_utc(session.starts_at):
        return _("この回はすでに開始しているため、申し込めません。")
    if not has_member or municipality_id is None:
        return _("職員名簿に登録されていないため、申し込めません。所属の研修担当にご連絡ください。")
    if not course.is_open_to(municipality_id):
        return _("この研修はあなたの所属する自治体の職員を対象としていません。")
    opens, closes = as_utc(session.enroll_opens_at), as_utc(session.enroll_closes_at)
    if opens is not None and now < opens:
        return _("申込受付は %(when)s に始まります。", when=format_datetime_jst(opens))
    if closes is not None and now > closes:
        return _("申込受付は締め切りました。")
    return ""


def session_views(course: Course, user) -> list[SessionView]:
    """Upcoming sessions first (soonest first), then past and cancelled ones.

    ``user`` None gives the figures only (management pages)."""
    from lms.enrollment.queries import my_statuses, waitlist_lengths

    now = utcnow()
    sessions = list(course.sessions)
    ids = [s.id for s in sessions]
    waits = waitlist_lengths(ids)
    mine = {}
    member = None
    municipality_id = None
    if user is not None:
        from lms.roster.services import staff_member_for

        member = staff_member_for(user, create=False)
        municipality_id = member.municipality_id if member is not None else user.municipality_id
        if member is not None:
            mine = my_statuses(member.id, ids)
    views = []
    for s in sessions:
        upcoming = s.status != CANCELLED and as_utc(s.ends_at) > now
        view = SessionView(s, s.free_seats, waits.get(s.id, 0), upcoming)
        if user is not None:
            _fill_mine(view, course, mine.get(s.id), member, municipality_id, user, now)
        views.append(view)
    views.sort(key=lambda v: (not v.upcoming, as_utc(v.session.starts_at).timestamp() * (1 if v.upcoming else -1)))
    return views


def _fill_mine(view: SessionView, course: Course, status, member, municipality_id, user, now) -> None:
    session = view.session
    if status is not None:
        from lms.enrollment import services as enrollment_services

        enrollment = status.enrollment
        view.my_enrollment = enrollment
        view.waitlist_position = status.waitlist_position
        view.my_status_text = enrollment_services.status_message(enrollment, status.waitlist_position)
        view.can_cancel, view.why_not_cancel = enrollment_services.can_cancel(enrollment, user, now)
        return
    view.why_not = _enroll_refusal(session, course, municipality_id, now, member is not None)
    view.can_enroll = not view.why_not
    if view.can_enroll:
        if view.free_seats > 0:
            view.enroll_label = _("申し込む（承認制）") if course.requires_approval else _("申し込む")
        else:
            view.enroll_label = _("キャンセル待ちに登録する")
