"""Webhook endpoints (registered, changed, rotated, disabled, deleted — each audited) and the
events queued for them.

An event is queued in the transaction of the change that caused it (``publish``, called by
the receivers): a message row with the body as it will be sent, and one delivery row per
endpoint that wants it — so it is committed with the change or not at all, and never lost
after. Endpoints that are disabled get their deliveries too; they go out once the endpoint is
enabled again."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, cast

from flask import current_app
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import CursorResult, delete, func, or_, select, update
from sqlalchemy.orm import joinedload

from lms.api.webhooks import outbound, signing
from lms.api.webhooks.models import (
    FAILED,
    QUEUED,
    SENDING,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from lms.audit.services import record_action
from lms.common.database import begin_write, for_update
from lms.common.errors import Conflict, InvalidInput
from lms.common.jobs import hand_over_after_commit
from lms.common.timeutil import as_utc, utcnow
from lms.extensions import db

# The events an endpoint may subscribe to, with what the admin pages call them.
EVENT_TYPES = {
    "enrollment.decided": _l("受講申込の決定（確定・キャンセル待ち・却下）"),
    "enrollment.cancelled": _l("受講申込の取消"),
    "waitlist.promoted": _l("キャンセル待ちからの繰り上げ"),
    "completion.granted": _l("修了の認定"),
    "completion.revoked": _l("修了の取消"),
    "roster.job_finished": _l("名簿の一括更新（API）の完了"),
}
# Sent from the endpoint's page, to that endpoint only.
TEST_EVENT = "webhook.test"
# How long the secret before a rotation still signs (beside the new one).
ROTATION_OVERLAP = timedelta(hours=24)
# A second rotation this soon after one is the same button pressed again: refused.
RECENT_ROTATION = timedelta(minutes=1)


def _json_default(value):
    if isinstance(value, datetime):
        return as_utc(value).isoformat().replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def encode(event_type: str, data: dict, at: datetime) -> str:
    """The body of an event (Standard Webhooks' payload structure: type, timestamp, data)."""
    return json.dumps({"type": event_type, "timestamp": at, "data": data}, default=_json_default,
                      ensure_ascii=False, separators=(",", ":"))


# ---------------------------------------------------------------- events


_READ_EARLY = "lms_webhook_endpoints_read_early"


def _read_early() -> dict[int | None, list[tuple[int, str]]]:
    """The endpoints read earlier in the current transaction (by municipality), for it only."""
    transaction = db.session().get_transaction()
    held = db.session.info.get(_READ_EARLY)
    if held is None or held[0] is not transaction:
        held = (transaction, {})
        db.session.info[_READ_EARLY] = held
    return held[1]


def _endpoints_of(municipality_id: int | None) -> list[tuple[int, str]]:
    """(id, event types) of the platform endpoints and those of the municipality."""
    query = select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
        or_(WebhookEndpoint.municipality_id.is_(None), WebhookEndpoint.municipality_id == municipality_id))
    return [(eid, types) for eid, types in db.session.execute(query)]


def read_endpoints_early(municipality_id: int | None) -> None:
    """Read now the endpoints an event of the municipality would go to, for ``publish`` later
    in this transaction: a sender that will publish under a lock (an enrollment, under its
    session's) reads them before taking it. An endpoint registered in between misses the
    event, as one registered a moment after it would."""
    endpoints = _endpoints_of(municipality_id)
    _read_early()[municipality_id] = endpoints


def publish(event_type: str, municipality_id: int | None, data: Callable[[], dict], *,
            endpoint_ids: list[int] | None = None) -> WebhookMessage | None:
    """Queue an event for every endpoint that wants it: the platform endpoints and those of
    ``municipality_id`` (or exactly ``endpoint_ids``). ``data()`` builds the event's data, only
    when some endpoint wants it. Inside the caller's transaction (the caller commits). Returns
    the message, or None when no endpoint wants it (then nothing is written)."""
    if endpoint_ids is not None:
        query = select(WebhookEndpoint.id).where(WebhookEndpoint.id.in_(endpoint_ids))
        targets = list(db.session.scalars(query))
    else:
        endpoints = _read_early().get(municipality_id)
        if endpoints is None:
            endpoints = _endpoints_of(municipality_id)
        targets = [eid for eid, types in endpoints if event_type in types.split()]
    if not targets:
        return None
    now = utcnow()
    message = WebhookMessage(msg_id=f"msg_{uuid.uuid4().hex}", event_type=event_type, municipality_id=municipality_id,
                             payload=encode(event_type, data(), now), created_at=now)
    db.session.add(message)
    db.session.flush()
    db.session.add_all(WebhookDelivery(message_id=message.id, endpoint_id=eid, status=QUEUED, attempts=0,
                                       next_attempt_at=now, created_at=now) for eid in targets)
    _deliver_after_commit()
    return message


def _deliver_after_commit() -> None:
    """Ask the worker to deliver once committed (inline runs, the tests, deliver explicitly:
    lms.api.webhooks.delivery.deliver_due)."""
    hand_over_after_commit(_deliver_soon, key="webhook-delivery", inline=False, what="webhook delivery")


def _deliver_soon() -> None:
    from lms.api.webhooks.tasks import deliver_webhooks_soon  # tasks imports delivery, which imports this module

    deliver_webhooks_soon()


# ---------------------------------------------------------------- endpoints


def endpoint_query(municipality_id: int | None):
    """The endpoints an admin sees: a platform admin (None) all, a training office its own."""
    query = select(WebhookEndpoint).order_by(WebhookEndpoint.id)
    if municipality_id is not None:
        query = query.where(WebhookEndpoint.municipality_id == municipality_id)
    return query


def _config():
    return current_app.config


def _clean(url: str, description: str, event_types: list[str]) -> tuple[str, str, str]:
    try:
        url = outbound.check_url(url, tuple(_config().get("LMS_WEBHOOK_ALLOWED_HOSTS", ())),
                                 bool(_config().get("LMS_WEBHOOK_ALLOW_PRIVATE")))
    except outbound.Refused as exc:
        raise InvalidInput(exc.message, field="url") from None
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown or not event_types:
        raise InvalidInput(_("通知するイベントを1つ以上選んでください。"), field="event_types")
    description = (description or "").strip()
    if len(description) > 200:
        raise InvalidInput(_("説明は200文字以内で入力してください。"), field="description")
    return url, description, " ".join(t for t in EVENT_TYPES if t in event_types)


def register_endpoint(actor, municipality_id: int | None, url: str, description: str,
                      event_types: list[str]) -> WebhookEndpoint:
    """A new endpoint with a new secret. The caller commits."""
    url, description, types = _clean(url, description, event_types)
    endpoint = WebhookEndpoint(municipality_id=municipality_id, url=url, description=description, event_types=types,
                               secret=signing.new_secret(), created_by_id=getattr(actor, "id", None))
    db.session.add(endpoint)
    db.session.flush()
    record_action(actor, "webhook.register", "webhook_endpoint", endpoint.id, municipality_id, url=url,
                  event_types=types)
    return endpoint


def update_endpoint(actor, endpoint: WebhookEndpoint, url: str, description: str,
                    event_types: list[str]) -> WebhookEndpoint:
    url, description, types = _clean(url, description, event_types)
    changes = {key: (getattr(endpoint, key), value)
               for key, value in (("url", url), ("description", description), ("event_types", types))
               if getattr(endpoint, key) != value}
    if not changes:
        return endpoint
    endpoint.url, endpoint.description, endpoint.event_types = url, description, types
    record_action(actor, "webhook.update", "webhook_endpoint", endpoint.id, endpoint.municipality_id,
                  changes={key: list(pair) for key, pair in changes.items()})
    return endpoint


def rotate_secret(actor, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret; the old one still signs for ROTATION_OVERLAP (both signatures are sent).
    The endpoint's row is locked and read fresh: the button pressed twice (two tabs) rotates
    once, and the secret in force before keeps its overlap (a second rotation within a
    minute is refused: the new secret is on the endpoint's page)."""
    begin_write()
    locked = db.session.scalars(for_update(select(WebhookEndpoint).where(WebhookEndpoint.id == endpoint.id))
                                .execution_options(populate_existing=True)).one()
    now = utcnow()
    rotated_at = as_utc(locked.previous_secret_expires_at)
    if rotated_at is not None and rotated_at - ROTATION_OVERLAP > now - RECENT_ROTATION:
        raise Conflict(_("署名シークレットは先ほど更新されたところです。新しいシークレットは送信先のページで確認できます。"))
    endpoint = locked
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret = signing.new_secret()
    record_action(actor, "webhook.rotate_secret", "webhook_endpoint", endpoint.id, endpoint.municipality_id)
    return endpoint


def secrets_in_force(endpoint: WebhookEndpoint, now: datetime) -> list[str]:
    expires = as_utc(endpoint.previous_secret_expires_at)
    if endpoint.previous_secret and expires is not None and expires > now:
        return [endpoint.secret, endpoint.previous_secret]
    return [endpoint.secret]


def disable_endpoint(actor, endpoint: WebhookEndpoint, reason: str) -> WebhookEndpoint:
    if endpoint.disabled_at is not None:
        raise Conflict(_("この送信先はすでに停止しています。"))
    endpoint.disabled_at = utcnow()
    endpoint.disabled_reason = reason[:300]
    record_action(actor, "webhook.disable", "webhook_endpoint", endpoint.id, endpoint.municipality_id, reason=reason)
    return endpoint


def enable_endpoint(actor, endpoint: WebhookEndpoint) -> int:
    """Enabled again: its queued deliveries are due now. Returns how many wait."""
    if endpoint.disabled_at is None:
        raise Conflict(_("この送信先は停止していません。"))
    endpoint.disabled_at = None
    endpoint.disabled_reason = ""
    endpoint.failing_since = None
    now = utcnow()
    waiting = cast(CursorResult[Any], db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == QUEUED)
        .values(next_attempt_at=now).execution_options(synchronize_session=False))).rowcount
    record_action(actor, "webhook.enable", "webhook_endpoint", endpoint.id, endpoint.municipality_id)
    _deliver_after_commit()
    return int(waiting or 0)


def delete_endpoint(actor, endpoint: WebhookEndpoint) -> None:
    """The endpoint and its deliveries (with their attempts) are removed; the messages stay
    while other endpoints' deliveries name them."""
    endpoint_id, municipality_id, url = endpoint.id, endpoint.municipality_id, endpoint.url
    delivery_ids = select(WebhookDelivery.id).where(WebhookDelivery.endpoint_id == endpoint_id)
    db.session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(delivery_ids))
                       .execution_options(synchronize_session=False))
    db.session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
                       .execution_options(synchronize_session=False))
    db.session.delete(endpoint)
    db.session.flush()
    db.session.execute(delete(WebhookMessage).where(
        ~select(WebhookDelivery.id).where(WebhookDelivery.message_id == WebhookMessage.id).exists())
        .execution_options(synchronize_session=False))
    record_action(actor, "webhook.delete", "webhook_endpoint", endpoint_id, municipality_id, url=url)


def send_test_event(actor, endpoint: WebhookEndpoint) -> WebhookMessage:
    message = publish(TEST_EVENT, endpoint.municipality_id,
                      lambda: {"endpoint_id": endpoint.id, "message": "Manabi からの送信テストです。"},
                      endpoint_ids=[endpoint.id])
    assert message is not None
    record_action(actor, "webhook.test", "webhook_endpoint", endpoint.id, endpoint.municipality_id,
                  msg_id=message.msg_id)
    return message


# ---------------------------------------------------------------- deliveries (the admin pages)


def delivery_query(endpoint_id: int, status: str = ""):
    query = (select(WebhookDelivery).options(joinedload(WebhookDelivery.message))
             .where(WebhookDelivery.endpoint_id == endpoint_id).order_by(WebhookDelivery.id.desc()))
    if status:
        query = query.where(WebhookDelivery.status == status)
    return query


def delivery_counts(endpoint_id: int) -> dict[str, int]:
    rows = db.session.execute(select(WebhookDelivery.status, func.count())
                              .where(WebhookDelivery.endpoint_id == endpoint_id).group_by(WebhookDelivery.status))
    return {status: int(count) for status, count in rows}


def replay_delivery(actor, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send again, with the same webhook-id (a receiver that has it already ignores it)."""
    if delivery.status in (QUEUED, SENDING):
        raise Conflict(_("この配信はすでに送信待ちです。"))
    delivery.status = QUEUED
    delivery.attempts = 0
    delivery.next_attempt_at = utcnow()
    delivery.claimed_at = None
    record_action(actor, "webhook.replay", "webhook_delivery", delivery.id, delivery.endpoint.municipality_id,
                  msg_id=delivery.message.msg_id)
    _deliver_after_commit()
    return delivery


def replay_failed(actor, endpoint: WebhookEndpoint) -> int:
    count = cast(CursorResult[Any], db.session.execute(
        update(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id, WebhookDelivery.status == FAILED)
        .values(status=QUEUED, attempts=0, next_attempt_at=utcnow(), claimed_at=None)
        .execution_options(synchronize_session=False))).rowcount or 0
    if not count:
        raise InvalidInput(_("再送する失敗した配信はありません。"))
    record_action(actor, "webhook.replay_failed", "webhook_endpoint", endpoint.id, endpoint.municipality_id,
                  count=count)
    _deliver_after_commit()
    return int(count)


def get_delivery(endpoint_id: int, delivery_id: int) -> WebhookDelivery | None:
    delivery = db.session.get(WebhookDelivery, delivery_id)
    return delivery if delivery is not None and delivery.endpoint_id == endpoint_id else None
