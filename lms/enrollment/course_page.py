"""The learner's part of the course page: their place in each session and whether (and why
not) they can enroll — with a fixed number of queries per page.

The course page belongs to the courses area, which knows nothing of enrollments; its
template calls ``learner_sessions`` (registered as a template global by this area's
blueprint) on the session figures the courses area computed."""

from __future__ import annotations

from datetime import datetime

from flask_babel import gettext as _

from lms.common.templating import format_datetime_jst
from lms.common.timeutil import as_utc, utcnow
from lms.courses.models import CANCELLED, PUBLISHED, Course, TrainingSession
from lms.courses.views import SessionView
from lms.enrollment import rules, series, services
from lms.enrollment.queries import MyStatus, MyStatusWords, my_course_statuses_of_user, my_statuses
from lms.roster.models import StaffMember
from lms.roster.services import staff_member_for


def enroll_refusal(session: TrainingSession, course: Course, municipality_id: int | None, now: datetime,
                   has_member: bool) -> str:
    """Why a learner cannot enroll in ``session`` now (plain Japanese), or "" if they can."""
    if session.status == CANCELLED:
        return _("この回は中止になりました。")
    if course.status != PUBLISHED:
        return _("この研修は公開されていないため、申し込めません。")
    if rules.has_started(session, now):
        return _("この回はすでに開始しているため、申し込めません。")
    if not has_member or municipality_id is None:
        return _("職員名簿に登録されていないため、申し込めません。所属の研修担当にご連絡ください。")
    if not course.is_open_to(municipality_id):
        return _("この研修はあなたの所属する自治体の職員を対象としていません。")
    if session.series_id is not None and session.series_id != session.id and session.makeup_for_id is None:
        return _("連続講座の一部です（最初の回に申し込むと、この回の受講も決まります）。")
    opens, closes = as_utc(session.enroll_opens_at), as_utc(session.enroll_closes_at)
    if opens is not None and now < opens:
        return _("申込受付は %(when)s に始まります。", when=format_datetime_jst(opens))
    if closes is not None and now > closes:
        return _("申込受付は締め切りました。")
    return ""


def learner_sessions(course: Course, views: list[SessionView], user) -> list[SessionView]:
    """``views`` with the signed-in learner's place and buttons filled in (the same list)."""
    now = utcnow()
    member = staff_member_for(user, create=False)
    municipality_id = member.municipality_id if member is not None else user.municipality_id
    mine = my_statuses(member.id, [v.session.id for v in views]) if member is not None else {}
    makeup_of = {v.session.series_id for v in views if v.session.makeup_for_id is not None and v.session.series_id}
    in_series = series.places_held(makeup_of, member.id) if member is not None else set()
    for view in views:
        _fill_mine(view, course, mine.get(view.session.id), member, municipality_id, user, now)
        if view.can_enroll and view.session.makeup_for_id is not None and view.session.series_id not in in_series:
            # A 補講 is for those with a place in the series (the service refuses the others).
            view.can_enroll, view.enroll_label = False, ""
            view.why_not = _("補講は、この連続講座の受講が決まっている人だけが申し込めます。")
        elif view.can_enroll and member is not None and (
                why := rules.departure_refusal(view.session.starts_at, member.left_on)):
            view.can_enroll, view.enroll_label, view.why_not = False, "", why
    return views


def _fill_mine(view: SessionView, course: Course, status: MyStatus | None, member: StaffMember | None,
               municipality_id: int | None, user, now: datetime) -> None:
    if status is not None:
        enrollment = status.enrollment
        view.my_enrollment = enrollment
        view.waitlist_position = status.waitlist_position
        view.my_status_text = services.status_message(enrollment, status.waitlist_position)
        view.can_cancel, view.why_not_cancel = services.can_cancel(enrollment, user, now)
        return
    view.why_not = enroll_refusal(view.session, course, municipality_id, now, member is not None)
    view.can_enroll = not view.why_not
    if view.can_enroll:
        if view.free_seats > 0:
            view.enroll_label = (_("補講に申し込む") if view.session.makeup_for_id is not None
                                 else _("申し込む（選考あり）") if course.selection
                                 else _("申し込む（承認制）") if course.requires_approval or course.supervisor_approval
                                 else _("申し込む"))
        else:
            view.enroll_label = _("キャンセル待ちに登録する")


def learner_course_statuses(course_ids: list[int], user) -> dict[int, MyStatusWords]:
    """The catalogue's cards: the signed-in learner's place in each course shown (one query)."""
    return my_course_statuses_of_user(user.id, list(course_ids))
