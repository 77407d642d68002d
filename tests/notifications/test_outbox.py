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
    first_delay = as_utc(mail.next_attempt_at) - start
    assert timedelta(seconds=55) <= first_delay <= timedelta(seconds=70)
    # Not due yet: nothing happens.
    assert deliver_due_mail(now=start + timedelta(seconds=30)).retried == []
    assert deliver_due_mail(now=start + timedelta(minutes=2)).retried == [mail.id]
    db.session.refresh(mail)
    second_delay = as_utc(mail.next_attempt_at) - utcnow()
    assert timedelta(seconds=110) <= second_delay <= timedelta(seconds=125)
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
