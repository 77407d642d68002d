from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
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


def test_cancel_carries_a_cancel_ics_with_the_same_uid_only_after_an_invitation(app, make_session, make_enrollment):
    """A confirmed place cancelled: METHOD:CANCEL for the entry its invitation made. A request
    refused, or a waitlisted place given up, was never sent an invitation: nothing to take back
    (no calendar, and no sentence about one)."""
    from lms.common.timeutil import utcnow

    session = _session_at(make_session, revision=2)
    enrollment = make_enrollment(session=session)
    confirmed = compose_enrollment_notice(enrollment, "confirmed")
    enrollment.status, enrollment.reason, enrollment.cancelled_at = "cancelled", "業務都合", utcnow()
    cancelled = compose_enrollment_notice(enrollment, "cancelled")
    cal, event = _event(cancelled.ics)
    assert str(cal["METHOD"]) == "CANCEL" and str(event["STATUS"]) == "CANCELLED"
    assert str(event["UID"]) == str(_event(confirmed.ics)[1]["UID"])
    assert int(event["SEQUENCE"]) == 2 and "カレンダーの予定を取り消す" in cancelled.body
    rejected = compose_enrollment_notice(make_enrollment(session=session, status=REJECTED, reason="定員調整のため"),
                                         "rejected")
    given_up = compose_enrollment_notice(make_enrollment(session=session, status="cancelled"), "cancelled")
    assert "理由：定員調整のため" in rejected.body
    for mail in (rejected, given_up):  # (given up: a waitlisted place, never confirmed)
        assert mail.ics == "" and ".ics" not in mail.body


def test_a_cancelled_sessions_mail_and_calendar_offer_no_join_link(app, db, make_session, make_enrollment):
    """Found by QA: a cancelled session's mail still listed the Teams join link under 「■ 場所」."""
    from lms.common.timeutil import utcnow

    session = _session_at(make_session, revision=2, delivery="hybrid", location="区役所 第1会議室")
    enrollment = make_enrollment(session=session)
    link = session.meeting_link
    assert link and link in compose_enrollment_notice(enrollment, "confirmed").body
    session.status, session.cancelled_at = "cancelled", utcnow()
    enrollment.status, enrollment.reason, enrollment.cancelled_at = "cancelled", "研修回の中止", utcnow()
    mail = compose_enrollment_notice(enrollment, "cancelled")
    place = mail.body.split("■ 場所\n", 1)[1].split("\n\n", 1)[0]
    assert place == "会場：区役所 第1会議室\nオンライン（Teams）"
    assert link not in mail.body and "参加リンク" not in mail.body
    assert link not in mail.ics.replace("\r\n ", "")

def test_a_place_not_decided_gets_the_join_link_only_once_confirmed(app, db, make_session, make_enrollment):
    """Waiting for a seat or an approval, a learner was mailed the Teams join link (a seat
    nobody gave them): their mail says it comes with the confirmation, also when it changes."""
    from lms.enrollment.models import CONFIRMED, PENDING

    session = _session_at(make_session, capacity=1)
    make_enrollment(session=session)
    waiting = make_enrollment(session=session, status=WAITLISTED)
    link = session.meeting_link
    later = "Teams 会議への参加リンク：受講が確定したときにお知らせします"
    for kind in ("waitlisted", "pending", "changed"):
        mail = compose_enrollment_notice(waiting, kind, changes={"join_url": ("https://old.example/meet", link)})
        assert link not in mail.body and later in mail.body, kind
        assert "old.example" not in mail.body
    assert "Teams 会議の参加リンク：変更しました（受講が確定したときにお知らせします）" in compose_enrollment_notice(
        waiting, "changed", changes={"join_url": ("https://old.example/meet", link)}).body
    waiting.status = PENDING
    assert link not in compose_enrollment_notice(waiting, "pending").body
    waiting.status = CONFIRMED  # promoted: the link comes with it, and with every change after
    assert link in compose_enrollment_notice(waiting, "promoted").body
    changed = compose_enrollment_notice(waiting, "changed", changes={"join_url": ("https://old.example/meet", link)})
    assert link in changed.body and later not in changed.body


def test_an_invitation_after_a_cancellation_is_a_newer_version_of_the_entry(app, db, make_session, make_enrollment):
    """Found by a QA pass: enrolled, cancelled, enrolled again — the new invitation had the
    cancelled entry's UID and SEQUENCE, and a calendar client keeps the entry cancelled. Each
    later place in the same session is a newer SEQUENCE of the same UID (and a change of the
    session, a new revision, newer still)."""
    from lms.common.timeutil import utcnow

    session = _session_at(make_session, revision=2)
    first = make_enrollment(session=session)
    first_ics = _event(compose_enrollment_notice(first, "confirmed").ics)[1]
    first.status, first.cancelled_at = "cancelled", utcnow()
    db.session.commit()
    cancel_ics = _event(compose_enrollment_notice(first, "cancelled").ics)[1]
    again = make_enrollment(session=session, member=first.staff_member)
    again_ics = _event(compose_enrollment_notice(again, "confirmed").ics)[1]
    assert str(again_ics["UID"]) == str(first_ics["UID"]) == str(cancel_ics["UID"])
    assert int(first_ics["SEQUENCE"]) == int(cancel_ics["SEQUENCE"]) == 2
    assert int(again_ics["SEQUENCE"]) == 3
    session.revision = 3  # (moved: every active enrollee is told)
    assert int(_event(compose_enrollment_notice(again, "changed").ics)[1]["SEQUENCE"]) == 4


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


def test_a_changed_delivery_is_named_as_on_the_session_form(app):
    assert describe_changes({"delivery": ("teams", "onsite")}) == ["実施方法：オンライン（Teams） → 会場（集合）"]
    assert describe_changes({"join_url": ("https://teams.microsoft.com/l/x", "")}) == [
        "Teams 会議の参加リンク：https://teams.microsoft.com/l/x → （なし）"]


def test_reminder_and_promoted_are_requests(app, make_session, make_enrollment):
    enrollment = make_enrollment(session=_session_at(make_session))
    for kind, words in (("reminder", "明日"), ("promoted", "キャンセル待ちから受講確定")):
        mail = compose_enrollment_notice(enrollment, kind)
        assert words in mail.subject
        assert str(Calendar.from_ical(mail.ics)["METHOD"]) == "REQUEST"
    # A seat frees up by a cancellation, a larger capacity or a released 割当人数: the mail
    # says what is true of each, not that someone cancelled.
    promoted = compose_enrollment_notice(enrollment, "promoted").body
    assert "席が空いたため、キャンセル待ちから受講確定になりました。" in promoted and "キャンセルが出た" not in promoted


def test_changed_notices_queued_before_the_signal_say_what_changed(app, db, make_session, make_enrollment):
    from lms.common.signals import session_updated
    from lms.notifications.services import queue_enrollment_notice

    session = _session_at(make_session, delivery="onsite", location="新会場")
    enrollment = make_enrollment(session=session)
    session.revision = 2
    mail = queue_enrollment_notice(enrollment, "changed", dedupe_suffix="rev2")
    assert "→" not in mail.body_text
    session_updated.send(session, actor=None, changes={"location": ("旧会場", "新会場"), "capacity": (10, 20)})
    db.session.commit()
    db.session.refresh(mail)
    assert "会場：旧会場 → 新会場" in mail.body_text
    assert "SEQUENCE:2" in mail.ics


def test_editing_a_session_tells_enrollees_the_new_time(app, db, make_user, make_session, make_enrollment):
    from sqlalchemy import select

    from lms.common.database import run_in_transaction
    from lms.courses.services import SessionInput, update_session
    from lms.notifications.models import OutboxMail

    trainer = make_user("platform_admin")
    session = _session_at(make_session)
    enrollment = make_enrollment(session=session)
    later = session.starts_at + timedelta(hours=2)
    data = SessionInput(
        starts_at=later, ends_at=later + timedelta(minutes=90), title=session.title, delivery=session.delivery,
        location=session.location, join_url=session.join_url, capacity=session.capacity,
        enroll_opens_at=session.enroll_opens_at, enroll_closes_at=session.enroll_closes_at,
        cancel_deadline=session.cancel_deadline,
    )
    db.session.commit()
    run_in_transaction(update_session, trainer, session.id, data)
    mail = db.session.scalar(select(OutboxMail).where(OutboxMail.enrollment_id == enrollment.id, OutboxMail.kind == "changed"))
    assert "開始日時：2030年6月3日(月) 14:00 → 2030年6月3日(月) 16:00" in mail.body_text
    _cal, event = _event(mail.ics)
    assert event.decoded("DTSTART").hour == 16 and int(event["SEQUENCE"]) == 2


def test_each_enrollee_gets_the_notice_in_their_own_language(app, db, make_session, make_enrollment, make_user,
                                                               make_staff):
    """The parts shared by a session's notices are composed once per language and content:
    an English reader and a Japanese one of the same session, in either order, each get
    their own language, their own name and their own calendar entry."""
    session = _session_at(make_session)
    english_user = make_user("learner", with_staff=False, locale="en")
    english = make_enrollment(session=session, member=make_staff(user=english_user))
    japanese = make_enrollment(session=session)
    for first, second in ((japanese, english), (english, japanese)):
        one, other = (compose_enrollment_notice(e, "confirmed") for e in (first, second))
        for enrollment, mail in ((first, one), (second, other)):
            in_english = enrollment is english
            assert ("Your place is confirmed" in mail.subject) is in_english
            assert ("受講が確定しました" in mail.subject) is not in_english
            assert ("■ Session" in mail.body) is in_english
            assert ("■ 研修" in mail.body) is not in_english
            # Dates in the reader's language too.
            assert ("2030-06-03 (Mon) 14:00 – 15:30" in mail.body) is in_english
            assert ("2030年6月3日(月) 14:00〜15:30" in mail.body) is not in_english
            assert enrollment.staff_member.full_name in mail.body
            _cal, event = _event(mail.ics)
            assert f"staff-{enrollment.staff_member.id}@" in str(event["UID"])
            # The organiser is the configured issuing body, in any language.
            assert str(event["ORGANIZER"].params.get("CN", "")) == current_app.config["LMS_ISSUER_NAME"]
    # Editing the session changes the shared part of the next notice.
    session.location, session.delivery = "都庁第二本庁舎 10階", "hybrid"
    db.session.commit()
    assert "会場：都庁第二本庁舎 10階" in compose_enrollment_notice(japanese, "confirmed").body
