"""Mail through Graph (sendMail) and change notifications (handshake, clientState, background work)."""

from __future__ import annotations

import base64
import time
from datetime import timedelta
from email.message import EmailMessage

import pytest
import requests
from sqlalchemy import func, select

from lms.archives.models import Archive
from lms.common.signals import session_created
from lms.common.timeutil import as_utc
from lms.teams.mail import send_via_graph
from lms.teams.models import GraphOperation, GraphSubscription
from tests.teams.conftest import ORGANIZER

ICS = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\nUID:x@manabi\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"


def test_send_via_graph_posts_the_message_with_its_calendar_attachment(graph_app, graph_server):
    message = EmailMessage()
    message["Subject"] = "【Manabi】受講が確定しました"
    message["From"] = "manabi@example.lg.jp"
    message["To"] = "青木 一郎 <aoki@131016.example.lg.jp>, inoue@131024.example.lg.jp"
    message["Cc"] = "kenshu@metro.example.lg.jp"
    message.set_content("受講が確定しました。")
    message.add_alternative("<p>受講が確定しました。</p>", subtype="html")
    message.add_attachment(ICS.encode(), maintype="text", subtype="calendar", filename="invite.ics")
    send_via_graph(message)

    call = graph_server.calls("POST", "/sendMail")[0]
    assert call.path == f"/users/{ORGANIZER}/sendMail"
    sent = call.body
    assert sent["saveToSentItems"] is False
    msg = sent["message"]
    assert msg["subject"] == "【Manabi】受講が確定しました"
    assert msg["body"]["contentType"] == "html" and "受講が確定しました" in msg["body"]["content"]
    assert msg["toRecipients"] == [
        {"emailAddress": {"address": "aoki@131016.example.lg.jp", "name": "青木 一郎"}},
        {"emailAddress": {"address": "inoue@131024.example.lg.jp"}},
    ]
    assert msg["ccRecipients"] == [{"emailAddress": {"address": "kenshu@metro.example.lg.jp"}}]
    [attachment] = msg["attachments"]
    assert attachment["@odata.type"] == "#microsoft.graph.fileAttachment"
    assert attachment["name"] == "invite.ics" and attachment["contentType"] == "text/calendar"
    assert base64.b64decode(attachment["contentBytes"]).decode() == ICS


def test_send_via_graph_uses_mail_from_without_an_organizer_and_raises_on_failure(graph_app, graph_server):
    from lms.teams.graph import GraphAuthError

    graph_app.config["GRAPH_ORGANIZER"] = None
    message = EmailMessage()
    message["Subject"] = "件名"
    message["To"] = "a@example.lg.jp"
    message.set_content("本文")
    send_via_graph(message)
    assert graph_server.calls("POST", "/sendMail")[0].path == f"/users/{graph_app.config['MAIL_FROM']}/sendMail"
    assert graph_server.sent_mail[0]["message"]["body"] == {"contentType": "text", "content": "本文\n"}
    graph_server.fail("/sendMail", 403, times=1)
    with pytest.raises(GraphAuthError):
        send_via_graph(message)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}  # the webhook must work with CSRF protection on


def test_validation_handshake_answers_plain_text_at_once_without_sign_in(graph_app, client):
    started = time.monotonic()
    response = client.post("/teams/graph/notifications?validationToken=Validation%3A+Testing+client+%26+more")
    assert time.monotonic() - started < 3
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert response.get_data(as_text=True) == "Validation: Testing client & more"


def test_subscription_handshake_then_only_authentic_notifications_trigger_an_import(
        graph_app, graph_server, live_server, db, make_course, make_session):
    from lms.teams.graph import client_from_app
    from lms.teams.subscriptions import subscribe_with

    graph_app.config["GRAPH_NOTIFICATION_URL"] = live_server.url + "/teams/graph/notifications"
    sub = subscribe_with(client_from_app(), ORGANIZER)
    created = graph_server.calls("POST", "/subscriptions")[0].body
    assert created["changeType"] == "created"
    assert created["resource"] == f"users/{ORGANIZER}/onlineMeetings/getAllRecordings"
    assert created["clientState"] == sub.client_state
    assert db.session.scalar(select(func.count()).select_from(GraphSubscription)) == 1

    session = make_session(make_course(), starts_in=-timedelta(hours=3), minutes=60, join_url="")
    session_created.send(session, actor=None, changes={})
    db.session.commit()
    rec = graph_server.add_recording(session.graph_online_meeting_id, "oid", 1024 * 1024, as_utc(session.ends_at))
    resource = f"communications/onlineMeetings('{session.graph_online_meeting_id}')/recordings('{rec['id']}')"
    notification = {"value": [{
        "subscriptionId": sub.subscription_id, "changeType": "created", "clientState": "forged",
        "resource": resource, "tenantId": "t", "subscriptionExpirationDateTime": "2026-12-01T00:00:00Z",
        "resourceData": {"@odata.type": "#Microsoft.Graph.callRecording", "@odata.id": resource, "id": rec["id"]},
    }]}
    url = live_server.url + "/teams/graph/notifications"
    answer = requests.post(url, json=notification, timeout=5)
    assert answer.status_code == 202
    assert db.session.scalar(select(func.count()).select_from(GraphOperation).where(
        GraphOperation.kind == "import_recording")) == 0

    notification["value"][0]["clientState"] = sub.client_state
    answer = requests.post(url, json=notification, timeout=10)
    assert answer.status_code == 202
    db.session.rollback()  # end the test's read snapshot
    op = db.session.scalar(select(GraphOperation).where(GraphOperation.kind == "import_recording"))
    assert op is not None and op.status == "done", op and op.last_error
    assert db.session.scalar(select(Archive).where(Archive.graph_recording_id == rec["id"])) is not None
    assert requests.post(url, data="not json", timeout=5).status_code == 400


def test_subscriptions_are_renewed_before_they_expire(graph_app, graph_server, live_server, db):
    from lms.common.timeutil import utcnow
    from lms.teams.graph import client_from_app
    from lms.teams.subscriptions import renew_subscriptions, subscribe_with

    graph_app.config["GRAPH_NOTIFICATION_URL"] = live_server.url + "/teams/graph/notifications"
    sub = subscribe_with(client_from_app(), ORGANIZER)
    sub.expires_at = utcnow() + timedelta(hours=2)
    db.session.commit()
    assert renew_subscriptions() == 1
    db.session.refresh(sub)
    assert as_utc(sub.expires_at) > utcnow() + timedelta(days=1)
    assert graph_server.calls("PATCH", "/subscriptions/")[0].body.keys() == {"expirationDateTime"}


def test_cli_subscribes_to_recordings_and_transcripts(graph_app, graph_server, live_server, runner, db):
    graph_app.config["GRAPH_NOTIFICATION_URL"] = live_server.url + "/teams/graph/notifications"
    result = runner.invoke(args=["lms", "graph-subscribe-recordings", ORGANIZER])
    assert result.exit_code == 0, result.output
    resources = sorted(s.resource for s in db.session.scalars(select(GraphSubscription)))
    assert resources == [f"users/{ORGANIZER}/onlineMeetings/getAllRecordings",
                         f"users/{ORGANIZER}/onlineMeetings/getAllTranscripts"]
