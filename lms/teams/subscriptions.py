"""Change notifications for new recordings and transcripts (optional; the nightly catch-up is the safety net).

Graph validates the notification URL with a ``validationToken`` that must be echoed as
text/plain within 10 seconds (we answer at once); every notification carries our
``clientState``, checked before anything is done, and the work runs in the background.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import timedelta

from flask import current_app, url_for
from sqlalchemy import select

from lms.common.timeutil import as_utc, utcnow
from lms.courses.models import TrainingSession
from lms.extensions import db
from lms.teams import operations as ops
from lms.teams.graph import GraphClient, GraphNotFound, client_from_app, user_path
from lms.teams.models import GraphSubscription

# Subscriptions on meeting recordings/transcripts live at most about three days.
LIFETIME = timedelta(days=2)
RENEW_BEFORE = timedelta(hours=12)
_MEETING_IN_RESOURCE = re.compile(r"onlineMeetings\('([^']+)'\)", re.IGNORECASE)


def notification_url() -> str:
    configured = current_app.config.get("GRAPH_NOTIFICATION_URL")
    if configured:
        return configured
    base = current_app.config.get("LMS_BASE_URL", "").rstrip("/")
    with current_app.test_request_context():
        path = url_for("teams.graph_notifications")
    return base + path


def subscribe_with(client: GraphClient, organizer: str, kind: str = "getAllRecordings") -> GraphSubscription:
    """Subscribe to new recordings (or transcripts) of an organizer's meetings."""
    resource = f"{user_path(organizer).lstrip('/')}/onlineMeetings/{kind}"
    client_state = secrets.token_urlsafe(32)
    expires = utcnow() + LIFETIME
    created = client.post("/subscriptions", {
        "changeType": "created",
        "notificationUrl": notification_url(),
        "resource": resource,
        "expirationDateTime": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "clientState": client_state,
        "latestSupportedTlsVersion": "v1_2",
    })
    sub = GraphSubscription(
        subscription_id=created["id"], resource=resource, client_state=client_state,
        expires_at=expires,
    )
    db.session.add(sub)
    db.session.commit()
    return sub


def renew_subscriptions(client: GraphClient | None = None) -> int:
    client = client or client_from_app()
    now = utcnow()
    renewed = 0
    for sub in db.session.scalars(select(GraphSubscription)).all():
        if as_utc(sub.expires_at) <= now:
            db.session.delete(sub)
            continue
        if as_utc(sub.expires_at) - now > RENEW_BEFORE:
            continue
        expires = now + LIFETIME
        try:
            client.patch(f"/subscriptions/{sub.subscription_id}",
                         {"expirationDateTime": expires.strftime("%Y-%m-%dT%H:%M:%SZ")})
        except GraphNotFound:
            db.session.delete(sub)
            continue
        sub.expires_at = expires
        renewed += 1
    db.session.commit()
    return renewed


def authentic(notifications: list[dict]) -> list[dict]:
    """Only notifications of our subscriptions carrying the right clientState."""
    states = {s.subscription_id: s.client_state for s in db.session.scalars(select(GraphSubscription))}
    out = []
    for item in notifications:
        if not isinstance(item, dict):
            continue
        expected = states.get(str(item.get("subscriptionId", "")))
        given = str(item.get("clientState", ""))
        if expected and hmac.compare_digest(expected, given):
            out.append(item)
    return out


def process_notifications(notifications: list[dict]) -> list[int]:
    """Queue a recording import for each session a notification points at."""
    meeting_ids = set()
    for item in notifications:
        match = _MEETING_IN_RESOURCE.search(str(item.get("resource", "")))
        if match:
            meeting_ids.add(match.group(1))
    if not meeting_ids:
        return []
    sessions = db.session.scalars(
        select(TrainingSession).where(TrainingSession.graph_online_meeting_id.in_(meeting_ids))
    ).all()
    queued = []
    for session in sessions:
        ops.queue_operation(session.id, ops.IMPORT_RECORDING, reason="notification")
        queued.append(session.id)
    db.session.commit()
    return queued
