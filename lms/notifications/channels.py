"""Other ways than mail for an outbox notice to reach its person (the Teams activity feed).

The outbox stays the one queue of notices: a row is delivered once by the worker that claims
it (lms.notifications.services.deliver_due_mail). Before its mail goes, a registered channel
is offered the row; the row's ``teams_state`` records what the channel did, committed under
the worker's claim, so a retried row never goes through the channel twice. The person's
choice (``User.notice_channel``: Teams, mail or both) then decides whether the mail goes too;
wherever the channel cannot reach the person, the mail goes whatever they chose.

A channel is registered by a higher layer when the app is created (the Teams area:
``lms/teams/receivers.py``), as mail backends are.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ChannelUnavailable(Exception):
    """The channel cannot reach this person (not set up, app not installed, refused): mail goes."""


class ChannelDeferred(Exception):
    """The channel asks to be tried again later (throttled): the row waits ``retry_after`` seconds."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


# ``channel(mail, user)`` sends the row's notice to ``user`` (a lms.auth User, or None when the
# row's person has no account) and returns a short reference of what it sent, or None when it
# does not carry notices of the row's kind; it raises ChannelUnavailable or ChannelDeferred,
# and anything else counts as unavailable.
Channel = Callable[[Any, Any], "str | None"]

_channel: dict[str, tuple[Channel, Callable[[], bool]]] = {}


def register_channel(channel: Channel, enabled: Callable[[], bool]) -> None:
    """Offer every outbox row to ``channel`` before its mail while ``enabled()`` (read in the
    app's context: a deployment without Teams pays nothing). Registering again replaces it."""
    _channel["teams"] = (channel, enabled)


def registered_channel() -> Channel | None:
    """The channel, if one is registered and enabled in this deployment."""
    entry = _channel.get("teams")
    if entry is None or not entry[1]():
        return None
    return entry[0]
