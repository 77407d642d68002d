"""Webhook endpoints, the events queued for them, and each delivery with its attempts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model

# Delivery states
QUEUED = "queued"        # waiting for its (next) attempt
SENDING = "sending"      # claimed by a worker
DELIVERED = "delivered"  # the endpoint answered 2xx
FAILED = "failed"        # every attempt failed; replayable from the admin pages


class WebhookEndpoint(Model):
    """A receiver's URL and the events it wants. ``municipality_id`` NULL: a platform endpoint
    (every municipality's events). Disabled endpoints keep their queued deliveries, which go
    out once the endpoint is enabled again."""

    __tablename__ = "webhook_endpoint"

    id: Mapped[int] = mapped_column(primary_key=True)
    municipality_id: Mapped[int | None] = mapped_column(ForeignKey("municipality.id"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str] = mapped_column(String(200), default="")
    # Space-separated event types (lms.api.webhooks.events.EVENT_TYPES).
    event_types: Mapped[str] = mapped_column(String(500))
    # The signing secret ("whsec_" + base64) and, for a day after a rotation, the one before.
    secret: Mapped[str] = mapped_column(String(100))
    previous_secret: Mapped[str] = mapped_column(String(100), default="")
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    # Since when every attempt has failed (NULL: the last attempt succeeded).
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    disabled_reason: Mapped[str] = mapped_column(String(300), default="")

    municipality = relationship("Municipality")

    @property
    def types(self) -> list[str]:
        return self.event_types.split()

    @property
    def is_active(self) -> bool:
        return self.disabled_at is None


class WebhookMessage(Model):
    """One event, as sent (the same ``msg_id`` and body to every endpoint, on every attempt)."""

    __tablename__ = "webhook_message"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The Standard Webhooks message id (webhook-id): receivers de-duplicate by it.
    msg_id: Mapped[str] = mapped_column(String(40), unique=True)
    event_type: Mapped[str] = mapped_column(String(50))
    municipality_id: Mapped[int | None] = mapped_column(ForeignKey("municipality.id"))
    payload: Mapped[str] = mapped_column(Text)  # the JSON body
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class WebhookDelivery(Model):
    __tablename__ = "webhook_delivery"
    __table_args__ = (
        UniqueConstraint("message_id", "endpoint_id"),
        Index("ix_webhook_delivery_status_next", "status", "next_attempt_at"),
        Index("ix_webhook_delivery_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("webhook_message.id"))
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoint.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10), default=QUEUED)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_status_code: Mapped[int | None] = mapped_column()
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    message = relationship("WebhookMessage")
    endpoint = relationship("WebhookEndpoint")


class WebhookAttempt(Model):
    """What one attempt met: the answer's status and the start of its body, or the error."""

    __tablename__ = "webhook_attempt"
    __table_args__ = (Index("ix_webhook_attempt_delivery", "delivery_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_delivery.id", ondelete="CASCADE"))
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    status_code: Mapped[int | None] = mapped_column()
    duration_ms: Mapped[int] = mapped_column(default=0)
    response_excerpt: Mapped[str] = mapped_column(Text, default="")
    error: Mapped[str] = mapped_column(Text, default="")
    # A refusal before sending (outbound.Refused): its code and parameters, put into words in the
    # reader's language (outbound.attempt_error); ``error`` then holds the worker's Japanese words.
    error_code: Mapped[str] = mapped_column(String(40), default="", server_default="")
    error_params: Mapped[dict | None] = mapped_column(JSON)
