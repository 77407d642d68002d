from __future__ import annotations

from datetime import datetime, timedelta

from icalendar import Calendar

from lms.common.timeutil import TOKYO
from lms.enrollment.models import REJECTED, WAITLISTED
from lms.notifications.compose import compose_enrollment_notice, describe_changes


def _session_at(make_session, **kw):
    start = datetime(2030, 6, 3, 14, 0, tzinfo=TOKYO)
    return make_session(
        starts_at=start,
        ends_at=start + timedelta(minutes=90),
        cancel_deadline=start - timedelta(days=1),
        enroll_closes_at=start - timedelta(hours=1),
        **kw,
    )


def _event(ics: str):
    cal = Calendar.from_ical(ics)
    events = [c for c in cal.walk() if c.name == "VEVENT"]
    assert len(events) == 1
    return cal, events[0]


def test_confirmed_notice_is_japanese_with_tokyo_time_and_request_ics(app, make_session, make_enrollment):
    session = _session_at(make_session, revision=3)
    enrollment = make_enrollment(session=session)
    mail = compose_enrollment_notice(enrollment, "confirmed")
    assert "受講が確定しました" in mail.subject
    assert session.course.title in mail.subject
    assert "2030年6月3日(月) 14:00〜15:30" in mail.body
    assert "Teams 会議への参加リンク：https://teams.microsoft.com/" in mail.body
    assert "■ キャンセル期限" in mail.body and "2030年6月2日(日) 14:00" in mail.body
    assert "http://127.0.0.1:5000/" in mail.body
    assert f"{enrollment.staff_member.full_name} 様" in mail.body

    cal, event = _event(mail.ics)
    assert str(cal["METHOD"]) == "REQUEST"
    start = event.decoded("DTSTART")
    assert start.utcoffset() == timedelta(hours=9)
    assert (start.hour, start.minute) == (14, 0)
    assert event["DTSTART"].params["TZID"] == "Asia/Tokyo"
    assert any(c.name == "VTIMEZONE" and str(c["TZID"]) == "Asia/Tokyo" for c in cal.walk())
    assert str(event["UID"]) == f"manabi-session-{session.id}-staff-{enrollment.staff_member.id}@127.0.0.1"
    assert int(event["SEQUENCE"]) == 3
    assert str(event["ATTENDEE"]).lower() == f"mailto:{enrollment.staff_member.email}".lower()
    assert str(event["ORGANIZER"]).startswith("mailto:")


def test_cancel_and_reject_carry_a_cancel_ics_with_the_same_uid(app, make_session, make_enrollment):
    session = _session_at(make_session, revision=2)
    enrollment = make_enrollment(session=session, status=REJECTED, reason="定員調整のため")
    rejected = compose_enrollment_notice(enrollment, "rejected")
    assert "理由：定員調整のため" in rejected.body
    confirmed = compose_enrollment_notice(enrollment, "confirmed")
    cancelled = compose_enrollment_notice(enrollment, "cancelled")
    for mail in (rejected, cancelled):
        cal, event = _event(mail.ics)
        assert str(cal["METHOD"]) == "CANCEL"
        assert str(event["STATUS"]) == "CANCELLED"
        assert str(event["UID"]) == str(_event(confirmed.ics)[1]["UID"])
        assert int(event["SEQUENCE"]) == 2


def test_waitlisted_notice_gives_position_and_no_ics(app, make_session, make_enrollment):
    session = _session_at(make_session, capacity=1)
    make_enrollment(session=session)
    make_enrollment(session=session, status=WAITLISTED)
    second = make_enrollment(session=session, status=WAITLISTED)
    mail = compose_enrollment_notice(second, "waitlisted")
    assert "キャンセル待ち" in mail.subject
    assert "2 番目" in mail.body
    assert mail.ics == ""
    assert compose_enrollment_notice(second, "pending").ics == ""


def test_changed_notice_says_what_changed(app, make_session, make_enrollment):
    session = _session_at(make_session, delivery="onsite", location="都庁第一本庁舎 32階 研修室")
    enrollment = make_enrollment(session=session)
    old = datetime(2030, 6, 2, 14, 0, tzinfo=TOKYO)
    mail = compose_enrollment_notice(
        enrollment, "changed", changes={"starts_at": (old, session.starts_at), "location": ("旧会場", session.location)}
    )
    assert "開始日時：2030年6月2日(日) 14:00 → 2030年6月3日(月) 14:00" in mail.body
    assert "会場：旧会場 → 都庁第一本庁舎 32階 研修室" in mail.body
    _cal, event = _event(mail.ics)
    assert str(event["LOCATION"]) == "都庁第一本庁舎 32階 研修室"
    assert describe_changes({"unknown": (1, 2)}) == []


def test_reminder_and_promoted_are_requests(app, make_session, make_enrollment):
    enrollment = make_enrollment(session=_session_at(make_session))
    for kind, words in (("reminder", "明日"), ("promoted", "キャンセル待ちから受講確定")):
        mail = compose_enrollment_notice(enrollment, kind)
        assert words in mail.subject
        assert str(Calendar.from_ical(mail.ics)["METHOD"]) == "REQUEST"
