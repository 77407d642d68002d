"""Webhooks: endpoints registered by platform admins and training offices, events queued with
the change that caused them, deliveries signed per Standard Webhooks (verified with the
reference library), retried with back-off, never lost while the receiver is down, endpoints
disabled after days of failures, replay from the admin pages, and the outbound URL policy."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from standardwebhooks.webhooks import Webhook

from lms.api.webhooks import outbound, services, signing
from lms.api.webhooks.delivery import deliver_due
from lms.api.webhooks.models import (
    DELIVERED,
    FAILED,
    QUEUED,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from lms.common.timeutil import fiscal_year_of, utcnow
from lms.completion.services import complete_manually, revoke_completion
from lms.enrollment.services import cancel_enrollment, enroll
from lms.notifications.models import OutboxMail
from tests.factories import make_course, make_session, make_staff, make_user, municipality

A, B = "131016", "132012"
ALL = list(services.EVENT_TYPES)


def _endpoint(url: str, code: str | None, types=None, actor=None) -> WebhookEndpoint:
    from lms.extensions import db

    endpoint = services.register_endpoint(actor, municipality(code).id if code else None, url, "人事給与システム",
                                          types or ALL)
    db.session.commit()
    return endpoint


def _types_for(endpoint_id: int) -> list[str]:
    from lms.extensions import db

    return list(db.session.scalars(
        select(WebhookMessage.event_type).join(WebhookDelivery, WebhookDelivery.message_id == WebhookMessage.id)
        .where(WebhookDelivery.endpoint_id == endpoint_id).order_by(WebhookMessage.id)))


# ---------------------------------------------------------------- signatures


def test_signature_verifies_with_the_reference_library_and_both_secrets_during_a_rotation():
    new, old = signing.new_secret(), signing.new_secret()
    body = '{"type":"webhook.test","data":{"名前":"学び"}}'.encode()
    now = int(utcnow().timestamp())
    headers = signing.headers([new, old], "msg_1", now, body)
    assert headers["webhook-signature"].count("v1,") == 2
    for secret in (new, old):
        assert Webhook(secret).verify(body, headers)["data"] == {"名前": "学び"}
    with pytest.raises(Exception, match="signature"):
        Webhook(signing.new_secret()).verify(body, headers)
    with pytest.raises(Exception, match="signature"):
        Webhook(new).verify(body + b" ", headers)


# ---------------------------------------------------------------- events


def test_events_reach_the_endpoints_of_their_municipality_and_the_platform(app, db, receiver):
    own_a = _endpoint(receiver.url, A)
    own_b = _endpoint(receiver.url, B)
    platform = _endpoint(receiver.url, None, ["completion.granted", "completion.revoked"])
    trainer = make_user("trainer", A)
    course = make_course(owner_id=trainer.id)
    session = make_session(course, capacity=1)
    first, second = make_staff(A), make_staff(A)
    e1 = enroll(session.id, first.id, None)
    e2 = enroll(session.id, second.id, None)  # waitlisted
    db.session.commit()
    cancel_enrollment(e1.id, make_user("platform_admin", "130001", with_staff=False))  # second is promoted
    db.session.commit()
    assert _types_for(own_a.id) == ["enrollment.decided", "enrollment.decided", "enrollment.cancelled",
                                    "waitlist.promoted"]
    assert _types_for(own_b.id) == []  # another municipality's staff
    assert _types_for(platform.id) == []  # not subscribed to enrollments
    completion = complete_manually(second.id, course.id, fiscal_year_of(e2.session.starts_at), trainer,
                                   "会場で受講を確認")
    db.session.commit()
    revoke_completion(completion.id, trainer, "記録の誤り")
    db.session.commit()
    assert _types_for(own_a.id)[-2:] == ["completion.granted", "completion.revoked"]
    assert _types_for(platform.id) == ["completion.granted", "completion.revoked"]

    report = deliver_due()
    assert len(report.delivered) == 8 and not report.retried
    by_type = {}
    for r in receiver.received:
        by_type.setdefault(r["type"], []).append(r)
    promoted = by_type["waitlist.promoted"][0]["data"]
    assert promoted["employee_number"] == second.employee_number
    assert promoted["municipality_code"] == A and promoted["status"] == "confirmed"
    assert promoted["previous_status"] == "waitlisted" and promoted["course_id"] == course.id
    granted = by_type["completion.granted"][0]["data"]
    assert granted["verification_url"].endswith(f"/certificates/verify/{completion.certificate_serial}") or \
        completion.certificate_serial in granted["verification_url"]
    assert granted["status"] == "completed" and by_type["completion.revoked"][0]["data"]["status"] == "revoked"
    # The same event to two endpoints: one webhook-id (receivers de-duplicate by it).
    assert len(set(receiver.ids())) == 6
    assert receiver.unverified == 0


def test_no_endpoint_no_rows(app, db):
    session = make_session()
    enroll(session.id, make_staff(A).id, None)
    db.session.commit()
    assert db.session.scalar(select(func.count()).select_from(WebhookMessage)) == 0


def test_the_endpoints_read_before_the_session_lock_serve_that_enrollment_only(app, db, receiver):
    """An enrollment reads its event's endpoints before it locks the session (so the lock is
    held for less time); what it read is not carried into a later transaction: an endpoint
    registered after one enrollment gets the next one's event."""
    from sqlalchemy import event

    session = make_session(capacity=5)
    enroll(session.id, make_staff(A).id, None)
    db.session.commit()
    endpoint = _endpoint(receiver.url, A, ["enrollment.decided"])
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args):
        statements.append(" ".join(statement.split()).lower())

    engine = db.session.get_bind()
    event.listen(engine, "before_cursor_execute", seen)
    try:
        enroll(session.id, make_staff(A).id, None)
        db.session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert _types_for(endpoint.id) == ["enrollment.decided"]
    endpoints_read = [i for i, s in enumerate(statements) if s.startswith("select webhook_endpoint.id")]
    session_locked = [i for i, s in enumerate(statements) if "from training_session" in s and "for update" in s]
    assert len(endpoints_read) == 1
    if engine.dialect.name == "postgresql":  # (SQLite has no row locks: its write lock is the transaction's)
        assert endpoints_read[0] < session_locked[0]


def test_a_rolled_back_change_sends_nothing(app, db, receiver):
    endpoint = _endpoint(receiver.url, A)
    trainer = make_user("trainer", A)
    course = make_course(owner_id=trainer.id)
    complete_manually(make_staff(A).id, course.id, fiscal_year_of(utcnow()), trainer, "会場で受講を確認")
    assert _types_for(endpoint.id) == ["completion.granted"]  # queued in the change's transaction…
    db.session.rollback()
    assert _types_for(endpoint.id) == []  # …and gone with it


# ---------------------------------------------------------------- delivery


def test_a_receiver_down_for_a_while_gets_every_event_exactly_once_afterwards(app, db, receiver):
    endpoint = _endpoint(receiver.url, A)
    session = make_session(capacity=50)
    receiver.up = False
    members = [make_staff(A) for _ in range(5)]
    for member in members:
        enroll(session.id, member.id, None)
        db.session.commit()
    now = utcnow()
    report = deliver_due(now=now)
    assert len(report.retried) == 5 and not report.delivered
    rows = db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)).all()
    assert {r.status for r in rows} == {QUEUED} and {r.attempts for r in rows} == {1}
    assert all(r.last_status_code == 503 for r in rows)
    first_retry = app.config["LMS_WEBHOOK_BACKOFF_SECONDS"]
    assert deliver_due(now=now + timedelta(seconds=first_retry - 1)).delivered == []  # not due yet
    report = deliver_due(now=now + timedelta(seconds=first_retry))
    assert len(report.retried) == 5  # still down: the second attempt, the delay doubles
    db.session.expire_all()
    delivery = db.session.scalars(select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id)).first()
    assert delivery.attempts == 2
    assert abs((delivery.next_attempt_at.replace(tzinfo=None) - (now + timedelta(seconds=first_retry * 3))
                .replace(tzinfo=None)).total_seconds()) < 2
    receiver.up = True
    report = deliver_due(now=now + timedelta(hours=1))
    assert len(report.delivered) == 5
    assert deliver_due(now=now + timedelta(days=1)).delivered == []  # nothing twice
    assert len(receiver.ids()) == 5 == len(set(receiver.ids()))
    messages = set(db.session.scalars(select(WebhookMessage.msg_id)))
    assert set(receiver.ids()) == messages
    assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 15
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint.id).failing_since is None


def test_an_endpoint_failing_for_days_is_disabled_with_a_notice_and_loses_nothing(app, db, receiver):
    office = make_user("municipal_admin", A, with_staff=False)
    endpoint = _endpoint(receiver.url, A)
    receiver.up = False
    session = make_session()
    enroll(session.id, make_staff(A).id, None)
    db.session.commit()
    start = utcnow()
    deliver_due(now=start)
    hours = app.config["LMS_WEBHOOK_DISABLE_AFTER_HOURS"]
    report = deliver_due(now=start + timedelta(hours=hours - 1))
    assert report.retried and not report.disabled
    report = deliver_due(now=start + timedelta(hours=hours, minutes=1))
    assert report.disabled == [endpoint.id]
    db.session.expire_all()
    endpoint = db.session.get(WebhookEndpoint, endpoint.id)
    assert endpoint.disabled_at is not None
    notice = db.session.scalar(select(OutboxMail).where(OutboxMail.to_address == office.email))
    assert notice is not None and "停止" in notice.subject and endpoint.url in notice.body_text
    # While disabled: new events are kept, nothing is attempted.
    enroll(session.id, make_staff(A).id, None)
    db.session.commit()
    receiver.up = True
    assert deliver_due(now=start + timedelta(days=30)).delivered == []
    services.enable_endpoint(office, endpoint)
    db.session.commit()
    report = deliver_due()
    assert len(report.delivered) == 2 and len(set(receiver.ids())) == 2


def test_a_delivery_given_up_is_replayed_with_the_same_id(app, db, receiver):
    app.config["LMS_WEBHOOK_MAX_ATTEMPTS"] = 2
    endpoint = _endpoint(receiver.url, A)
    receiver.status = 500
    session = make_session()
    enroll(session.id, make_staff(A).id, None)
    db.session.commit()
    now = utcnow()
    deliver_due(now=now)
    report = deliver_due(now=now + timedelta(hours=1))
    assert len(report.failed) == 1
    delivery = db.session.get(WebhookDelivery, report.failed[0])
    assert delivery.status == FAILED and delivery.last_status_code == 500
    attempts = db.session.scalars(select(WebhookAttempt).where(WebhookAttempt.delivery_id == delivery.id)).all()
    assert [a.response_excerpt for a in attempts] == ["nope", "nope"]
    receiver.status = 200
    assert services.replay_failed(None, endpoint) == 1
    db.session.commit()
    assert len(deliver_due().delivered) == 1
    db.session.expire_all()
    assert db.session.get(WebhookDelivery, delivery.id).status == DELIVERED
    assert receiver.ids() == [delivery.message.msg_id]


def test_a_redirect_is_not_followed(app, db, receiver):
    _endpoint(receiver.url, A)
    receiver.status = 302
    session = make_session()
    enroll(session.id, make_staff(A).id, None)
    db.session.commit()
    report = deliver_due()
    assert report.retried and not report.delivered


def test_two_workers_never_send_one_delivery_twice(app, db, receiver):
    import threading

    _endpoint(receiver.url, A)
    session = make_session(capacity=30)
    for _ in range(12):
        enroll(session.id, make_staff(A).id, None)
        db.session.commit()
    results = []

    def work():
        with app.app_context():
            results.append(deliver_due())

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(r.delivered) for r in results) == 12
    assert len(receiver.ids()) == 12 == len(set(receiver.ids()))


def test_rotation_signs_with_both_secrets_for_a_day(app, db, receiver):
    endpoint = _endpoint(receiver.url, A)
    old = endpoint.secret
    services.rotate_secret(None, endpoint)
    db.session.commit()
    assert endpoint.secret != old
    receiver.secrets = [old]  # the receiver has not switched yet
    services.send_test_event(None, endpoint)
    db.session.commit()
    assert len(deliver_due().delivered) == 1
    assert receiver.received[0]["headers"]["webhook-signature"].count("v1,") == 2
    assert services.secrets_in_force(endpoint, utcnow() + timedelta(hours=25)) == [endpoint.secret]


def test_rotating_twice_at_once_rotates_once_and_the_old_secret_keeps_its_day(app, db, receiver):
    """The rotate button pressed in two tabs: one rotation; the secret in force before still
    signs for a day (a second rotation would have made the first new secret the 'previous'
    one and cut the receiver off at once)."""
    from lms.common.errors import Conflict

    endpoint = _endpoint(receiver.url, A)
    old = endpoint.secret
    db.session.commit()
    services.rotate_secret(None, endpoint)
    db.session.commit()
    new = endpoint.secret
    with pytest.raises(Conflict):
        services.rotate_secret(None, endpoint)
    db.session.rollback()
    db.session.refresh(endpoint)
    assert (endpoint.secret, endpoint.previous_secret) == (new, old)
    assert services.secrets_in_force(endpoint, utcnow() + timedelta(hours=23)) == [new, old]


@pytest.fixture(autouse=True)
def _receiver_secret(receiver, monkeypatch):
    """The receiver knows the secret of every endpoint registered."""
    real = services.register_endpoint

    def register(*args, **kwargs):
        endpoint = real(*args, **kwargs)
        receiver.secrets.append(endpoint.secret)
        return endpoint

    monkeypatch.setattr(services, "register_endpoint", register)


# ---------------------------------------------------------------- the outbound policy


@pytest.mark.parametrize(("url", "allowed", "private", "refused"), [
    ("https://hr.city.example.lg.jp/hooks", ("*.example.lg.jp",), False, ""),
    ("https://example.lg.jp.evil.test/hooks", ("*.example.lg.jp",), False, "許可されていません"),
    ("https://evil-example.lg.jp/hooks", ("*.example.lg.jp",), False, "許可されていません"),
    ("http://hr.city.example.lg.jp/hooks", ("*.example.lg.jp",), False, "https://"),
    ("https://user:pw@hr.city.example.lg.jp/", ("*",), False, "パスワード"),
    ("https://169.254.169.254/latest/meta-data", ("*",), False, "内部ネットワーク"),
    ("https://10.0.0.5/hooks", ("*",), False, "内部ネットワーク"),
    ("https://[::1]/hooks", ("*",), False, "内部ネットワーク"),
    ("https://hr.example.jp/hooks", (), False, "LMS_WEBHOOK_ALLOWED_HOSTS"),
    ("javascript:alert(1)", ("*",), False, "https://"),
    ("https://hr.example.jp:99999/", ("*",), False, "形式"),
    ("http://127.0.0.1:8080/hooks", ("127.0.0.1",), True, ""),
    # (a pasted line break: the form makes it a space; a header would follow it)
    ("https://hr.example.lg.jp/ X: y", ("*",), False, "空白や改行"),
    ("https://hr.example.lg.jp/\r\nX: y", ("*",), False, "空白や改行"),
    ("https://hr.example.lg.jp/a\tb", ("*",), False, "空白や改行"),
])
def test_url_policy(app, url, allowed, private, refused):
    with app.test_request_context():
        if refused:
            with pytest.raises(outbound.Refused, match=refused):
                outbound.check_url(url, allowed, private)
        else:
            assert outbound.check_url(url, allowed, private) == url


def test_a_name_resolving_to_a_private_address_is_refused_when_sending():
    with pytest.raises(outbound.Refused, match="内部ネットワーク"):
        outbound.check_destination("https://localhost/hooks", allow_private=False)
    outbound.check_destination("https://localhost/hooks", allow_private=True)


def test_a_refusal_when_sending_is_kept_as_a_code_and_read_in_the_readers_language(app, db, receiver, monkeypatch):
    """The worker's refusal (a name resolving inward, or not at all) is stored as a code and its
    parameters, and the delivery page words it for its reader: no raw English on a Japanese page."""
    from flask_babel import force_locale

    _endpoint(receiver.url, A)
    monkeypatch.setitem(app.config, "LMS_WEBHOOK_ALLOW_PRIVATE", False)
    monkeypatch.setattr(outbound.socket, "getaddrinfo", lambda *a, **k: [(2, 1, 6, "", ("10.0.0.5", 443))])
    enroll(make_session().id, make_staff(A).id, None)
    db.session.commit()
    assert deliver_due().retried
    attempt = db.session.scalar(select(WebhookAttempt))
    assert (attempt.error_code, attempt.error_params["address"]) == (outbound.PRIVATE_ADDRESS, "10.0.0.5")
    with app.test_request_context():
        japanese = outbound.attempt_error(attempt)
        with force_locale("en"):
            english = outbound.attempt_error(attempt)
    assert "内部ネットワーク" in japanese and "10.0.0.5" in japanese and "refused:" not in japanese
    assert "10.0.0.5" in english and not any("\u3040" <= ch <= "\u30ff" for ch in english)
