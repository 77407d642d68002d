from __future__ import annotations

import email
from datetime import timedelta
from email import policy
from pathlib import Path

import pytest
from sqlalchemy import func, select

from lms.audit.models import AuditLog
from lms.common.timeutil import as_utc, utcnow
from lms.notifications.models import FAILED, QUEUED, SENDING, SENT, OutboxMail
from lms.notifications.services import claim_mail, deliver_due_mail, queue_enrollment_notice, retry_mail
from tests.notifications import failing_backend


def _mails(app):
    return sorted(Path(app.config["LMS_MAIL_DIR"]).glob("*.eml"))


def test_queue_is_idempotent_per_kind_and_suffix(app, db, make_enrollment):
    enrollment = make_enrollment()
    first = queue_enrollment_notice(enrollment, "confirmed")
    again = queue_enrollment_notice(enrollment, "confirmed")
    changed = queue_enrollment_notice(enrollment, "changed", dedupe_suffix="2")
    db.session.commit()
    assert first is again
    assert changed.id != first.id
    assert db.session.scalar(select(func.count()).select_from(OutboxMail)) == 2
    assert first.municipality_id == enrollment.staff_member.municipality_id
    with pytest.raises(ValueError):
        queue_enrollment_notice(enrollment, "nonsense")


def test_no_address_means_no_mail(app, db, make_staff, make_enrollment):
    member = make_staff(email="", sign_in_name="")
    assert queue_enrollment_notice(make_enrollment(member=member), "confirmed") is None


def test_delivery_writes_eml_with_calendar_part_once(app, db, make_enrollment):
    enrollment = make_enrollment()
    mail = queue_enrollment_notice(enrollment, "confirmed")
    db.session.commit()
    report = deliver_due_mail()
    assert report.sent == [mail.id]
    files = _mails(app)
    assert len(files) == 1
    message = email.message_from_bytes(files[0].read_bytes(), policy=policy.default)
    assert message["To"].addresses[0].addr_spec == enrollment.staff_member.email
    assert "受講が確定しました" in message["Subject"]
    parts = {part.get_content_type(): part for part in message.walk()}
    assert "予定表" in parts["text/plain"].get_content()
    assert parts["text/calendar"].get_param("method") == "REQUEST"
    db.session.refresh(mail)
    assert mail.status == SENT and mail.sent_at is not None and mail.attempts == 1
    assert mail.message_id == message["Message-ID"]
    # A second sweep sends nothing more.
    assert deliver_due_mail().sent == []
    assert len(_mails(app)) == 1


def test_failure_backs_off_exponentially_then_fails(app, db, make_enrollment):
    app.config.update(MAIL_BACKEND="tests.notifications.failing_backend:AlwaysFails", LMS_MAIL_MAX_ATTEMPTS=3)
    mail = queue_enrollment_notice(make_enrollment(), "confirmed")
    db.session.commit()
    start = utcnow()
    assert deliver_due_mail(now=start).retried == [mail.id]
    db.session.refresh(mail)
    assert mail.status == QUEUED and mail.attempts == 1 and "451" in mail.last_error
    assert as_utc(mail.next_attempt_at) - start == timedelta(seconds=60)
    # Not due yet: nothing happens.
    assert deliver_due_mail(now=start + timedelta(seconds=30)).retried == []
    assert deliver_due_mail(now=start + timedelta(minutes=2)).retried == [mail.id]
    db.session.refresh(mail)
    assert as_utc(mail.next_attempt_at) - (start + timedelta(minutes=2)) == timedelta(seconds=120)
    assert deliver_due_mail(now=start + timedelta(minutes=10)).failed == [mail.id]
    db.session.refresh(mail)
    assert mail.status == FAILED and mail.attempts == 3
    assert deliver_due_mail(now=start + timedelta(days=1)).failed == []


def test_permanent_failure_is_not_retried(app, db, make_enrollment):
    app.config["MAIL_BACKEND"] = "tests.notifications.failing_backend:RefusesRecipient"
    mail = queue_enrollment_notice(make_enrollment(), "confirmed")
    db.session.commit()
    assert deliver_due_mail().failed == [mail.id]


def test_claim_is_exclusive_and_a_stale_claim_is_taken_over(app, db, make_enrollment):
    mail = queue_enrollment_notice(make_enrollment(), "confirmed")
    db.session.commit()
    now = utcnow()
    assert claim_mail(mail.id, now) is not None
    assert claim_mail(mail.id, now) is None  # a second worker does not get it
    db.session.refresh(mail)
    assert mail.status == SENDING
    # The first worker died: a sweep soon after does nothing, after the stale delay takes over.
    assert deliver_due_mail(now=now + timedelta(minutes=1)).sent == []
    assert _mails(app) == []
    report = deliver_due_mail(now=now + timedelta(minutes=16))
    assert report.sent == [mail.id]
    db.session.refresh(mail)
    assert mail.status == SENT and mail.attempts == 2
    assert len(_mails(app)) == 1


def test_admin_retries_a_failed_mail(app, db, make_enrollment, make_user):
    app.config.update(MAIL_BACKEND="tests.notifications.failing_backend:RefusesRecipient")
    mail = queue_enrollment_notice(make_enrollment(), "confirmed")
    db.session.commit()
    deliver_due_mail()
    admin = make_user("platform_admin")
    app.config["MAIL_BACKEND"] = "file"
    retry_mail(mail.id, admin)
    db.session.commit()
    assert deliver_due_mail().sent == [mail.id]
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "notifications.retry")) is not None


def test_mail_is_delivered_promptly_after_the_commit(app, db, make_enrollment):
    app.config.update(LMS_OUTBOX_DELIVER_INLINE=True, MAIL_BACKEND="tests.notifications.failing_backend:Recording")
    failing_backend.SENT.clear()
    enrollment = make_enrollment()
    queue_enrollment_notice(enrollment, "confirmed")
    assert failing_backend.SENT == []  # nothing leaves before the commit
    db.session.commit()
    assert len(failing_backend.SENT) == 1
    queue_enrollment_notice(enrollment, "reminder", dedupe_suffix="x")
    db.session.rollback()  # rolled back: nothing queued, nothing sent
    db.session.commit()
    assert len(failing_backend.SENT) == 1


def test_prompt_delivery_jobs_are_coalesced_under_a_rush(app, monkeypatch):
    import time

    from lms.notifications import services

    fired = []
    monkeypatch.setattr(services, "_enqueue_now", lambda: fired.append(time.monotonic()))
    monkeypatch.setitem(services._throttle_state, "last", float("-inf"))
    monkeypatch.setitem(services._throttle_state, "trailing", False)
    for _ in range(50):
        services._enqueue_throttled()
    assert len(fired) == 1  # the first at once
    time.sleep(services._THROTTLE_SECONDS + 0.3)
    assert len(fired) == 2  # one trailing job for everything committed meanwhile
    assert fired[1] - fired[0] >= services._THROTTLE_SECONDS - 0.05


def test_two_workers_at_once_send_each_mail_exactly_once(app, db, make_session, make_enrollment):
    import threading

    app.config["MAIL_BACKEND"] = "tests.notifications.failing_backend:Recording"
    failing_backend.SENT.clear()
    session = make_session(capacity=50)
    mails = [queue_enrollment_notice(make_enrollment(session=session), "confirmed") for _ in range(30)]
    db.session.commit()
    reports, errors = [], []

    def worker():
        try:
            with app.app_context():
                reports.append(deliver_due_mail())
        except Exception as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    sent_ids = sorted(i for r in reports for i in r.sent)
    assert sent_ids == sorted(m.id for m in mails)
    assert len(failing_backend.SENT) == 30
    assert len({m["Message-ID"] for m in failing_backend.SENT}) == 30
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(OutboxMail).where(OutboxMail.status == SENT)) == 30


def test_a_mail_that_kills_every_worker_ends_failed(app, db, make_enrollment):
    app.config["LMS_MAIL_MAX_ATTEMPTS"] = 2
    mail = queue_enrollment_notice(make_enrollment(), "confirmed")
    db.session.commit()
    now = utcnow()
    assert claim_mail(mail.id, now)  # worker 1 dies
    assert claim_mail(mail.id, now + timedelta(minutes=16))  # worker 2 takes over and dies too
    report = deliver_due_mail(now=now + timedelta(minutes=40))
    assert report.failed == [mail.id] and report.sent == []
    db.session.refresh(mail)
    assert mail.status == FAILED and "worker stopped" in mail.last_error


def test_a_reminder_for_a_cancelled_enrollment_is_not_sent(app, db, make_enrollment):
    from lms.enrollment.models import CANCELLED
    from lms.notifications.models import SKIPPED

    enrollment = make_enrollment()
    mail = queue_enrollment_notice(enrollment, "reminder", dedupe_suffix="d")
    db.session.commit()
    enrollment.status = CANCELLED
    db.session.commit()
    report = deliver_due_mail()
    assert report.not_applicable == [mail.id] and report.sent == []
    db.session.refresh(mail)
    assert mail.status == SKIPPED
    assert _mails(app) == []
