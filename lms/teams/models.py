"""Bookkeeping of Microsoft Graph work, per session, for the operations page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from lms.common.timeutil import as_utc, utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model


class GraphOperation(Model):
    __tablename__ = "graph_operation"
    __table_args__ = (Index("ix_graph_operation_session_kind", "session_id", "kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("training_session.id"))
    # create_event, update_event, cancel_event, sync_attendees, import_attendance,
    # import_recording, import_transcript, send_mail, roster_sync
    kind: Mapped[str] = mapped_column(String(30))
    status: Mapped[str] = mapped_column(String(10), default="queued")  # queued, running, done, failed
    attempts: Mapped[int] = mapped_column(default=0)
    graph_calls: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    details: Mapped[dict] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The process running it ("host:pid:start ticks") and its lease, renewed while it runs
    # (see operations.heartbeat): a dead process or a stale lease means the worker died.
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    @property
    def next_attempt(self) -> datetime | None:
        """When a failed operation is tried again by itself (None: not at all)."""
        details = self.details or {}
        value = details.get("next_attempt_at")
        if self.status != "failed" or not details.get("retryable") or not value:
            return None
        return as_utc(datetime.fromisoformat(value))


class GraphSubscription(Model):
    __tablename__ = "graph_subscription"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscription_id: Mapped[str] = mapped_column(String(100), unique=True)
    resource: Mapped[str] = mapped_column(String(500))
    client_state: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


# TeamsAppInstallation.state: "" not known yet (ask Graph), the app is in the person's personal
# scope, the tenant refused to install it, the tenant's catalogue does not hold the app.
INSTALLED = "installed"
REFUSED = "refused"
NOT_IN_CATALOGUE = "no_app"


class TeamsAppInstallation(Model):
    """Whether Manabi's Teams app is installed for a person (lms.teams.activity), so that a
    notice costs one Graph call once it is."""

    __tablename__ = "teams_app_installation"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), unique=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    state: Mapped[str] = mapped_column(String(10), default="")
    installation_id: Mapped[str] = mapped_column(String(200), default="")
    teams_app_id: Mapped[str] = mapped_column(String(200), default="")
    last_error: Mapped[str] = mapped_column(String(300), default="")
    checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
