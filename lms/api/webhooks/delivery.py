"""Sending the queued deliveries (the worker: promptly after a commit, and every minute).

Each delivery is claimed by one conditional UPDATE, so two workers never send it both; a
claim left by a worker that died is taken over after LMS_OUTBOX_STALE_SECONDS. An answer
2xx delivers; anything else (another status, a timeout, a refused destination) is an attempt
recorded with what was met, retried after LMS_WEBHOOK_BACKOFF_SECONDS, doubling (at most six
hours), and given up after LMS_WEBHOOK_MAX_ATTEMPTS (replayable from the admin pages). An
endpoint whose attempts have all failed for LMS_WEBHOOK_DISABLE_AFTER_HOURS is disabled, and
its training office (or, for a platform endpoint, the platform admins) told by mail; its
queued deliveries wait for it to be enabled again."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from flask import current_app
from sqlalchemy import CursorResult, and_, or_, select, update

from lms.api.webhooks import outbound, signing
from lms.api.webhooks.models import (
    DELIVERED,
    FAILED,
    QUEUED,
    SENDING,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookMessage,
)
from lms.api.webhooks.services import secrets_in_force
from lms.audit.services import record_action
from lms.common.database import begin_write
from lms.common.links import app_url
from lms.common.signals import office_notice
from lms.common.timeutil import as_utc, utcnow
from lms.extensions import db

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 6 * 3600


@dataclass
class Report:
    delivered: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    disabled: list[int] = field(default_factory=list)  # endpoints
    skipped: int = 0  # claimed by another worker first

    @property
    def busy(self) -> bool:
        return bool(self.delivered or self.retried or self.failed)

    def add(self, other: Report) -> None:
        self.delivered += other.delivered
        self.retried += other.retried
        self.failed += other.failed
        self.disabled += other.disabled
        self.skipped += other.skipped


def _setting(name: str) -> Any:
    return current_app.config[name]


def backoff_seconds(attempts: int) -> int:
    return min(int(_setting("LMS_WEBHOOK_BACKOFF_SECONDS")) * 2 ** max(attempts - 1, 0), MAX_BACKOFF_SECONDS)


def _due(now: datetime, stale_cutoff: datetime):
    return or_(
        and_(WebhookDelivery.status == QUEUED, WebhookDelivery.next_attempt_at <= now),
        and_(WebhookDelivery.status == SENDING, WebhookDelivery.claimed_at < stale_cutoff),
    )


def deliver_due(*, limit: int = 200, now: datetime | None = None) -> Report:
    """Send every due delivery of an enabled endpoint, oldest first, one claim at a time.
    ``now`` fixes the clock (tests)."""
    clock = (lambda: now) if now is not None else utcnow
    start = clock()
    stale_cutoff = start - timedelta(seconds=int(_setting("LMS_OUTBOX_STALE_SECONDS")))
    report = Report()
    ids = db.session.scalars(
        select(WebhookDelivery.id).join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookEndpoint.disabled_at.is_(None), _due(start, stale_cutoff))
        .order_by(WebhookDelivery.id).limit(limit)).all()
    db.session.rollback()
    for delivery_id in ids:
        claimed_at = clock()
        begin_write()
        claimed = db.session.execute(
            update(WebhookDelivery).where(WebhookDelivery.id == delivery_id, _due(start, stale_cutoff))
            .values(status=SENDING, claimed_at=claimed_at, attempts=WebhookDelivery.attempts + 1)
            .execution_options(synchronize_session=False))
        db.session.commit()
        if cast(CursorResult[Any], claimed).rowcount != 1:
            report.skipped += 1
            continue
        _attempt(delivery_id, claimed_at, clock, report)
    db.session.expire_all()
    return report


def _attempt(delivery_id: int, claimed_at: datetime, clock, report: Report) -> None:
    delivery, message, endpoint = db.session.execute(
        select(WebhookDelivery, WebhookMessage, WebhookEndpoint)
        .join(WebhookMessage, WebhookMessage.id == WebhookDelivery.message_id)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .where(WebhookDelivery.id == delivery_id)).one()
    endpoint_id, url, attempts = endpoint.id, endpoint.url, delivery.attempts
    secrets, disabled = secrets_in_force(endpoint, clock()), endpoint.disabled_at is not None
    msg_id, body = message.msg_id, message.payload.encode("utf-8")
    db.session.rollback()  # no transaction held open while the receiver answers
    if disabled:  # disabled since it was listed: the claim goes back, the attempt uncounted
        begin_write()
        _finish(delivery_id, claimed_at, {"status": QUEUED, "attempts": attempts - 1})
        db.session.commit()
        return
    status_code, excerpt, error, duration = None, "", "", 0
    refusal: outbound.Refused | None = None
    try:
        outbound.check_destination(url, bool(_setting("LMS_WEBHOOK_ALLOW_PRIVATE")))
        timestamp = int(utcnow().timestamp())  # the real time of sending, whatever clock the batch keeps
        answer = outbound.post(url, signing.headers(secrets, msg_id, timestamp, body), body,
                               float(_setting("LMS_WEBHOOK_TIMEOUT")))
        status_code, excerpt, duration = answer.status_code, answer.excerpt, answer.duration_ms
        if not 200 <= status_code < 300:
            error = f"HTTP {status_code}"
    except outbound.Refused as exc:
        error, refusal = str(exc), exc
    except Exception as exc:  # noqa: BLE001 - a transport failure is an attempt that failed
        error = f"{type(exc).__name__}: {exc}"
    now = clock()
    begin_write()
    db.session.add(WebhookAttempt(delivery_id=delivery_id, attempted_at=now, status_code=status_code,
                                  duration_ms=duration, response_excerpt=excerpt, error=error[:2000],
                                  error_code=refusal.code if refusal else "",
                                  error_params=(refusal.params or None) if refusal else None))
    if not error:
        _finish(delivery_id, claimed_at, {"status": DELIVERED, "delivered_at": now, "last_status_code": status_code,
                                          "last_error": ""})
        db.session.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
                           .values(failing_since=None).execution_options(synchronize_session=False))
        db.session.commit()
        report.delivered.append(delivery_id)
        return
    if attempts >= int(_setting("LMS_WEBHOOK_MAX_ATTEMPTS")):
        values: dict[str, Any] = {"status": FAILED}
        report.failed.append(delivery_id)
    else:
        values = {"status": QUEUED, "next_attempt_at": now + timedelta(seconds=backoff_seconds(attempts))}
        report.retried.append(delivery_id)
    _finish(delivery_id, claimed_at, {**values, "last_status_code": status_code, "last_error": error[:2000]})
    if _failing_too_long(endpoint_id, now):
        report.disabled.append(endpoint_id)
    db.session.commit()
    logger.info("webhook delivery %s attempt %s failed: %s", delivery_id, attempts, error)


def _finish(delivery_id: int, claimed_at: datetime, values: dict) -> None:
    """Release our claim with ``values`` (a claim taken over meanwhile is not ours to change)."""
    db.session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == SENDING,
               WebhookDelivery.claimed_at == claimed_at)
        .values(claimed_at=None, **values).execution_options(synchronize_session=False))


def _failing_too_long(endpoint_id: int, now: datetime) -> bool:
    """Note the failure on the endpoint; disable it (and tell its office) when every attempt
    has failed for LMS_WEBHOOK_DISABLE_AFTER_HOURS."""
    endpoint = db.session.get_one(WebhookEndpoint, endpoint_id, with_for_update=True)
    if endpoint.failing_since is None:
        endpoint.failing_since = now
        return False
    hours = int(_setting("LMS_WEBHOOK_DISABLE_AFTER_HOURS"))
    if endpoint.disabled_at is not None or now - as_utc(endpoint.failing_since) < timedelta(hours=hours):
        return False
    endpoint.disabled_at = now
    endpoint.disabled_reason = f"every attempt failed for {hours} hours"
    record_action(None, "webhook.auto_disable", "webhook_endpoint", endpoint.id, endpoint.municipality_id,
                  url=endpoint.url, failing_since=as_utc(endpoint.failing_since).isoformat())
    _tell_office(endpoint, hours)
    return True


def _tell_office(endpoint: WebhookEndpoint, hours: int) -> None:
    link = app_url("webhooks.detail", f"/admin/webhooks/{endpoint.id}", endpoint_id=endpoint.id)
    subject = "【Manabi】Webhook の送信先を停止しました"
    body = (f"Webhook の送信先 {endpoint.url}（{endpoint.description or '説明なし'}）は、{hours} 時間にわたって"
            "すべての送信に失敗したため停止しました。\n\n"
            "停止中のイベントは失われず、送信先を再開すると順に送信されます。受信側を確認のうえ、"
            f"次のページで再開してください。\n{link}\n")
    office_notice.send(None, municipality_ids=[endpoint.municipality_id] if endpoint.municipality_id else [],
                       platform_admins=endpoint.municipality_id is None,
                       key=f"webhook-disabled:{endpoint.id}:{endpoint.disabled_at:%Y%m%d%H%M%S}",
                       subject=subject, body=body)
