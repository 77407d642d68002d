"""The webhook pages (/admin/webhooks) as a training office and as a platform admin."""

from __future__ import annotations

import re

from sqlalchemy import func, select

from lms.api.webhooks.delivery import deliver_due
from lms.api.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from lms.audit.models import AuditLog
from tests.factories import make_user, municipality, sign_in

A, B = "131016", "132012"


def _register(client, url, events=("enrollment.decided",), **extra):
    return client.post("/admin/webhooks", data={"url": url, "description": "人事給与システム",
                                                 "event_types": list(events), **extra})


def test_an_office_registers_for_its_own_municipality_and_manages_the_endpoint(app, db, client, receiver):
    office = make_user("municipal_admin", A, with_staff=False)
    sign_in(client, office)
    page = client.get("/admin/webhooks").get_data(as_text=True)
    assert "送信先を登録する" in page and "対象の団体" not in page  # no municipality to choose
    response = _register(client, receiver.url, municipality_id=str(municipality(B).id))  # ignored: its own
    assert response.status_code == 302
    endpoint = db.session.scalar(select(WebhookEndpoint))
    assert endpoint.municipality_id == municipality(A).id and endpoint.types == ["enrollment.decided"]
    receiver.secrets.append(endpoint.secret)
    detail = client.get(f"/admin/webhooks/{endpoint.id}").get_data(as_text=True)
    assert endpoint.secret in detail  # behind the "show" disclosure

    # A test event, delivered and shown with its attempt.
    assert client.post(f"/admin/webhooks/{endpoint.id}/test").status_code == 302
    assert len(deliver_due().delivered) == 1
    assert receiver.received[0]["type"] == "webhook.test"
    delivery = db.session.scalar(select(WebhookDelivery))
    page = client.get(f"/admin/webhooks/{endpoint.id}/deliveries/{delivery.id}").get_data(as_text=True)
    assert delivery.message.msg_id in page and "HTTP 204" in page and "配信済み" in page
    # Sent again with the same webhook-id.
    assert client.post(f"/admin/webhooks/{endpoint.id}/deliveries/{delivery.id}/replay").status_code == 302
    deliver_due()
    assert receiver.ids() == [delivery.message.msg_id] * 2
    assert db.session.scalar(select(func.count()).select_from(WebhookAttempt)) == 2

    # Change the events.
    response = client.post(f"/admin/webhooks/{endpoint.id}", data={
        "url": receiver.url, "description": "変更後", "event_types": ["completion.granted", "enrollment.cancelled"]})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint.id).types == ["enrollment.cancelled", "completion.granted"]

    # Rotate: the confirmation page, then a new secret.
    old = endpoint.secret
    assert "24時間" in client.get(f"/admin/webhooks/{endpoint.id}/rotate").get_data(as_text=True)
    client.post(f"/admin/webhooks/{endpoint.id}/rotate")
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint.id).secret != old

    # Disable, enable.
    client.post(f"/admin/webhooks/{endpoint.id}/disable")
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint.id).disabled_at is not None
    assert "停止中" in client.get(f"/admin/webhooks/{endpoint.id}").get_data(as_text=True)
    client.post(f"/admin/webhooks/{endpoint.id}/enable")
    db.session.expire_all()
    assert db.session.get(WebhookEndpoint, endpoint.id).disabled_at is None

    # Delete: asks first, then removes the endpoint and its deliveries.
    assert "元に戻せません" in client.get(f"/admin/webhooks/{endpoint.id}/delete").get_data(as_text=True)
    assert client.post(f"/admin/webhooks/{endpoint.id}/delete").headers["Location"].endswith("/admin/webhooks")
    assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0
    assert db.session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0
    actions = set(db.session.scalars(select(AuditLog.action).where(AuditLog.action.like("webhook.%"))))
    assert {"webhook.register", "webhook.test", "webhook.replay", "webhook.update", "webhook.rotate_secret",
            "webhook.disable", "webhook.enable", "webhook.delete"} <= actions


def test_another_office_finds_nothing_and_the_platform_sees_all(app, db, client, receiver):
    sign_in(client, make_user("municipal_admin", A, with_staff=False))
    _register(client, receiver.url)
    endpoint = db.session.scalar(select(WebhookEndpoint))
    other = app.test_client()
    sign_in(other, make_user("municipal_admin", B, with_staff=False))
    assert other.get(f"/admin/webhooks/{endpoint.id}").status_code == 404
    assert other.post(f"/admin/webhooks/{endpoint.id}/test").status_code == 404
    assert receiver.url not in other.get("/admin/webhooks").get_data(as_text=True)
    platform = app.test_client()
    sign_in(platform, make_user("platform_admin", "130001", with_staff=False))
    assert receiver.url in platform.get("/admin/webhooks").get_data(as_text=True)
    assert _register(platform, receiver.url + "/all", ("completion.granted",), municipality_id="0").status_code == 302
    assert db.session.scalar(select(WebhookEndpoint).where(WebhookEndpoint.url.like("%/all"))).municipality_id is None
    # An office cannot open the platform's endpoint either.
    platform_endpoint = db.session.scalar(select(WebhookEndpoint.id).where(WebhookEndpoint.municipality_id.is_(None)))
    assert client.get(f"/admin/webhooks/{platform_endpoint}").status_code == 404
    assert other.get("/admin/webhooks/999999/deliveries/1").status_code == 404


def test_bad_input_is_refused_in_japanese_and_nothing_is_saved(app, db, client):
    sign_in(client, make_user("municipal_admin", A, with_staff=False))
    cases = [
        ({"url": "", "event_types": ["enrollment.decided"]}, "送信先の URL を入力してください"),
        ({"url": "https://evil.test/hook", "event_types": ["enrollment.decided"]}, "許可されていません"),
        ({"url": "ftp://127.0.0.1/x", "event_types": ["enrollment.decided"]}, "https://"),
        ({"url": "http://127.0.0.1:9/x"}, "通知するイベントを1つ以上選んでください"),
        ({"url": "http://127.0.0.1:9/x", "event_types": ["user.deleted"]}, "通知するイベントを1つ以上選んでください"),
        ({"url": "http://127.0.0.1:9/x", "event_types": ["enrollment.decided"], "description": "あ" * 201}, "200"),
        ({"url": "http://127.0.0.1:9/" + "x" * 2100, "event_types": ["enrollment.decided"]}, "2000"),
    ]
    for data, message in cases:
        response = client.post("/admin/webhooks", data=data)
        assert response.status_code == 400, data
        page = response.get_data(as_text=True)
        assert message in page, (data, re.findall(r'class="error-message"[^>]*>([^<]*)', page))
    assert db.session.scalar(select(func.count()).select_from(WebhookEndpoint)) == 0


def test_no_allowed_hosts_no_registration(app, db, client):
    app.config["LMS_WEBHOOK_ALLOWED_HOSTS"] = ()
    sign_in(client, make_user("platform_admin", "130001", with_staff=False))
    response = _register(client, "https://hr.example.lg.jp/hooks", municipality_id="0")
    assert response.status_code == 400
    assert "LMS_WEBHOOK_ALLOWED_HOSTS" in response.get_data(as_text=True)


def test_the_pages_in_english(app, db, client, receiver):
    sign_in(client, make_user("municipal_admin", A, with_staff=False))
    client.post("/lang", data={"lang": "en", "next": "/"})
    page = client.get("/admin/webhooks").get_data(as_text=True)
    assert "Register an endpoint" in page and "Events to send" in page and "Choose at least one event" not in page


def test_delivery_states_are_in_english_too(app, db, client, receiver):
    sign_in(client, make_user("municipal_admin", A, with_staff=False))
    assert _register(client, receiver.url).status_code == 302
    endpoint = db.session.scalar(select(WebhookEndpoint))
    receiver.secrets.append(endpoint.secret)
    assert client.post(f"/admin/webhooks/{endpoint.id}/test").status_code == 302
    assert len(deliver_due().delivered) == 1
    delivery = db.session.scalar(select(WebhookDelivery))
    client.post("/lang", data={"lang": "en", "next": "/"})
    for url in ("/admin/webhooks", f"/admin/webhooks/{endpoint.id}",
                f"/admin/webhooks/{endpoint.id}/deliveries/{delivery.id}"):
        page = client.get(url).get_data(as_text=True)
        assert "Delivered" in page and "配信済み" not in page, url
    detail = client.get(f"/admin/webhooks/{endpoint.id}").get_data(as_text=True)
    assert "Queued" in detail and "送信待ち" not in detail and "失敗" not in detail
