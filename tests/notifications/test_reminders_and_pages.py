from __future__ import annotations

from datetime import datetime, timedelta

from icalendar import Calendar
from sqlalchemy import func, select

from lms.audit.models import AuditLog
from lms.common.timeutil import TOKYO
from lms.enrollment.models import CANCELLED, WAITLISTED
from lms.notifications.models import FAILED, OutboxMail
from lms.notifications.services import queue_enrollment_notice, queue_session_reminders


def _count(db, **where):
    stmt = select(func.count()).select_from(OutboxMail)
    for key, value in where.items():
        stmt = stmt.where(getattr(OutboxMail, key) == value)
    return db.session.scalar(stmt)


def test_reminders_go_to_confirmed_enrollees_of_tomorrow_once(app, db, make_session, make_enrollment):
    now = datetime(2030, 6, 2, 9, 0, tzinfo=TOKYO)
    tomorrow = make_session(starts_at=datetime(2030, 6, 3, 10, 0, tzinfo=TOKYO), ends_at=datetime(2030, 6, 3, 12, 0, tzinfo=TOKYO))
    later = make_session(starts_at=datetime(2030, 6, 5, 10, 0, tzinfo=TOKYO), ends_at=datetime(2030, 6, 5, 12, 0, tzinfo=TOKYO))
    confirmed = make_enrollment(session=tomorrow)
    make_enrollment(session=tomorrow, status=WAITLISTED)
    make_enrollment(session=tomorrow, status=CANCELLED)
    make_enrollment(session=later)
    assert queue_session_reminders(now) == 1
    db.session.commit()
    assert queue_session_reminders(now + timedelta(hours=1)) == 0
    db.session.commit()
    assert _count(db, kind="reminder") == 1
    mail = db.session.scalar(select(OutboxMail).where(OutboxMail.kind == "reminder"))
    assert mail.enrollment_id == confirmed.id
    assert mail.dedupe_key.endswith(":2030-06-03")
    db.session.refresh(tomorrow)
    assert tomorrow.reminder_sent_at is not None


def test_calendar_download_for_enrolled_learner(app, db, client, login_as, make_enrollment, make_user):
    learner = make_user()
    enrollment = make_enrollment(member=learner.staff_member)
    login_as(user=learner)
    response = client.get(f"/sessions/{enrollment.session_id}/calendar.ics")
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    cal = Calendar.from_ical(response.data)
    event = next(c for c in cal.walk() if c.name == "VEVENT")
    assert str(event["UID"]).startswith(f"manabi-session-{enrollment.session_id}-staff-{learner.staff_member.id}@")


def test_the_download_after_a_re_enrollment_is_as_new_as_the_mailed_invitation(app, db, client, login_as,
                                                                               make_enrollment, make_user):
    """Enrolled, cancelled, enrolled again, then the session moved: the mail said SEQUENCE 3,
    and the file saved from the site said 2 (the session's revision) — an outdated copy."""
    from lms.common.timeutil import utcnow
    from lms.notifications.compose import compose_enrollment_notice

    learner = make_user()
    first = make_enrollment(member=learner.staff_member)
    first.status, first.cancelled_at = "cancelled", utcnow()
    db.session.commit()
    again = make_enrollment(session=first.session, member=learner.staff_member)
    again.session.revision = 2
    db.session.commit()
    mailed = next(c for c in Calendar.from_ical(compose_enrollment_notice(again, "changed").ics).walk()
                  if c.name == "VEVENT")
    login_as(user=learner)
    response = client.get(f"/sessions/{again.session_id}/calendar.ics")
    event = next(c for c in Calendar.from_ical(response.data).walk() if c.name == "VEVENT")
    assert str(event["UID"]) == str(mailed["UID"])
    assert int(event["SEQUENCE"]) == int(mailed["SEQUENCE"]) == 3


def test_a_place_not_yet_decided_gets_a_tentative_event_without_the_teams_link(app, db, client, login_as,
                                                                               make_enrollment, make_user):
    """Waitlisted (or awaiting approval): the file holds the time, marked TENTATIVE, and not the
    join link that /me gives only with a confirmed place."""
    learner = make_user()
    enrollment = make_enrollment(member=learner.staff_member, status=WAITLISTED)
    enrollment.session.join_url = "https://teams.microsoft.com/l/meetup-join/secret-link"
    db.session.commit()
    login_as(user=learner)
    response = client.get(f"/sessions/{enrollment.session_id}/calendar.ics")
    assert response.status_code == 200
    event = next(c for c in Calendar.from_ical(response.data).walk() if c.name == "VEVENT")
    assert str(event["STATUS"]) == "TENTATIVE"
    assert b"secret-link" not in response.data and "まだ確定していません" in str(event["DESCRIPTION"])
    enrollment.status = "confirmed"
    db.session.commit()
    confirmed = client.get(f"/sessions/{enrollment.session_id}/calendar.ics")
    event = next(c for c in Calendar.from_ical(confirmed.data).walk() if c.name == "VEVENT")
    assert str(event["STATUS"]) == "CONFIRMED" and "secret-link" in str(event["DESCRIPTION"])


def test_calendar_refused_to_a_learner_not_enrolled(app, client, login_as, make_enrollment):
    enrollment = make_enrollment()
    login_as("learner")
    # The same answer as for a session that does not exist.
    assert client.get(f"/sessions/{enrollment.session_id}/calendar.ics").status_code == 404
    assert client.get("/sessions/999999/calendar.ics").status_code == 404


def test_calendar_for_trainer(app, client, login_as, make_session, make_course):
    trainer = login_as("trainer")
    session = make_session(make_course(owner=trainer))
    response = client.get(f"/sessions/{session.id}/calendar.ics")
    assert response.status_code == 200 and b"BEGIN:VEVENT" in response.data


def test_outbox_viewer_scoped_to_the_admins_municipality(app, db, client, login_as, make_staff, make_enrollment):
    ours = queue_enrollment_notice(make_enrollment(member=make_staff("131016", full_name="千代田 花子")), "confirmed")
    theirs = queue_enrollment_notice(make_enrollment(member=make_staff("131024", full_name="中央 次郎")), "confirmed")
    theirs.status = FAILED
    db.session.commit()
    login_as("municipal_admin", "131016")
    page = client.get("/admin/mail").get_data(as_text=True)
    assert "千代田 花子" in page and "中央 次郎" not in page
    assert client.get(f"/admin/mail/{ours.id}").status_code == 200
    assert client.get(f"/admin/mail/{theirs.id}").status_code == 404  # as if there were none
    assert client.post(f"/admin/mail/{theirs.id}/retry").status_code == 404
    assert client.get("/admin/mail/2147483647").status_code == 404
    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "access.denied")) == 2


def test_platform_admin_sees_all_and_retries(app, db, client, login_as, make_staff, make_enrollment):
    mail = queue_enrollment_notice(make_enrollment(member=make_staff("131024", full_name="中央 次郎")), "confirmed")
    mail.status = FAILED
    mail.last_error = "SMTP 550"
    db.session.commit()
    login_as("platform_admin")
    assert "中央 次郎" in client.get("/admin/mail?status=failed").get_data(as_text=True)
    detail = client.get(f"/admin/mail/{mail.id}").get_data(as_text=True)
    assert "SMTP 550" in detail and "BEGIN:VCALENDAR" in detail
    response = client.post(f"/admin/mail/{mail.id}/retry")
    assert response.status_code == 302
    db.session.refresh(mail)
    assert mail.status == "queued"
    # Retrying a mail that is not failed is refused with a message, not an error page.
    assert client.post(f"/admin/mail/{mail.id}/retry").status_code == 302
    assert "再送できるのは送信に失敗したメールだけです。" in client.get(f"/admin/mail/{mail.id}").get_data(as_text=True)


def test_learner_cannot_open_the_mail_viewer(app, client, login_as):
    login_as("learner")
    assert client.get("/admin/mail").status_code == 403


def test_the_periodic_reminder_task_queues_tomorrows_reminders_once(app, db, make_session, make_enrollment):
    from lms.common.timeutil import utcnow
    from lms.notifications.tasks import queue_reminders_periodically

    tomorrow = utcnow().astimezone(TOKYO).date() + timedelta(days=1)
    start = datetime(tomorrow.year, tomorrow.month, tomorrow.day, 10, 0, tzinfo=TOKYO)
    session = make_session(starts_at=start, ends_at=start + timedelta(hours=2), cancel_deadline=start - timedelta(days=2),
                           enroll_closes_at=start - timedelta(days=2))
    make_enrollment(session=session)
    queue_reminders_periodically()
    queue_reminders_periodically()
    db.session.rollback()
    assert _count(db, kind="reminder") == 1


def test_outbox_page_warns_when_mail_is_not_leaving(app, db, client, login_as, make_enrollment):
    from lms.common.timeutil import utcnow

    mail = queue_enrollment_notice(make_enrollment(), "confirmed")
    db.session.commit()
    login_as("platform_admin")
    assert "動いているか" not in client.get("/admin/mail").get_data(as_text=True)
    mail.next_attempt_at = utcnow() - timedelta(minutes=30)
    db.session.commit()
    assert "送信されていないメールが 1 通あります" in client.get("/admin/mail").get_data(as_text=True)


def test_outbox_search_takes_percent_and_underscore_literally(app, db, client, login_as, make_staff, make_enrollment):
    """「%」 or 「_」 in the outbox's search are characters, not wildcards: they do not list every mail."""
    plain = queue_enrollment_notice(make_enrollment(member=make_staff("131016", full_name="千代田 花子")), "confirmed")
    marked = queue_enrollment_notice(make_enrollment(member=make_staff("131016", full_name="達成率100%_担当")),
                                     "confirmed")
    db.session.commit()
    login_as("platform_admin")
    for q in ("%", "_", "100%_"):
        page = client.get("/admin/mail", query_string={"q": q}).get_data(as_text=True)
        assert "達成率100%_担当" in page and "千代田 花子" not in page, q
    assert "千代田 花子" in client.get("/admin/mail", query_string={"q": "花子"}).get_data(as_text=True)
    assert plain.id != marked.id
