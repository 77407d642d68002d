"""The roster's subscriptions: a user signing in is linked to their roster entry."""

from __future__ import annotations

from lms.common.signals import user_signed_in
from lms.roster.services import staff_member_for


@user_signed_in.connect
def _link_roster_entry(user, **_extra) -> None:
    staff_member_for(user)
