"""What the Teams area adds to the lower layers, connected when the app is created.

- Keep the Teams meeting in step with the session: the receivers queue Graph work in the
  sender's transaction. They never call Graph and never commit: they add a GraphOperation
  row (committed with the change, so nothing is lost) and the huey task is enqueued after
  commit.
- ``MAIL_BACKEND=graph``: the outbox sends through Microsoft Graph (``lms.teams.mail``).
- Notices reach the Teams activity feed too (``lms.teams.activity``, the outbox's channel).
"""

from __future__ import annotations

from lms.common.signals import (
    attendees_changed,
    meeting_link_cleared,
    session_cancelled,
    session_created,
    session_updated,
)
from lms.courses.models import CANCELLED
from lms.notifications.channels import register_channel
from lms.notifications.mail import register_backend
from lms.teams import operations as ops
from lms.teams import services
from lms.teams.activity import notices_enabled, send_activity_notice
from lms.teams.graph import graph_configured
from lms.teams.mail import GraphMailBackend

register_backend("graph", GraphMailBackend)
register_channel(send_activity_notice, notices_enabled)

# Changes that the Outlook event shows (anything else, e.g. capacity, needs no update).
EVENT_FIELDS = {"title", "starts_at", "ends_at", "location", "delivery", "status", "course_id"}


def _relevant(session) -> bool:
    return graph_configured() and (session.delivery in services.ONLINE_DELIVERIES or bool(session.graph_event_id))


@session_created.connect
def _on_session_created(session, actor=None, changes=None, **_):
    if _relevant(session):
        services.queue_meeting_sync(session, ops.CREATE_EVENT)


@session_updated.connect
def _on_session_updated(session, actor=None, changes=None, from_meeting=False, **_):
    if not _relevant(session):
        return
    if changes and "join_url" in changes and not from_meeting and session.has_managed_meeting \
            and (session.join_url or "").strip():
        # A link typed over Manabi's meeting: the trainer's choice; Manabi's meeting goes
        # (cancelled after commit) and the typed link is kept from now on.
        services.detach_meeting(session, actor)
    if changes and not (set(changes) & EVENT_FIELDS):
        return
    services.queue_meeting_sync(session, ops.UPDATE_EVENT if session.graph_event_id else ops.CREATE_EVENT)


@meeting_link_cleared.connect
def _on_meeting_link_cleared(session, actor=None, **_) -> bool:
    """A typed link cleared: the session is Manabi's to hold in Teams again (a new meeting,
    whose link the enrollees are then told of)."""
    if not services.wants_graph(session) or session.status == CANCELLED:
        return False
    return services.queue_meeting_sync(session, ops.CREATE_EVENT) is not None


@session_cancelled.connect
def _on_session_cancelled(session, actor=None, changes=None, **_):
    if graph_configured():
        services.queue_meeting_sync(session, ops.CANCEL_EVENT)


@attendees_changed.connect
def _on_attendees_changed(session, actor=None, **_):
    if _relevant(session):
        services.queue_attendee_sync(session)
