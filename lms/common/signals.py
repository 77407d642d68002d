"""Domain events, so that feature areas stay decoupled.

Receivers run synchronously inside the sender's transaction (so an outbox row or a
queued job is committed together with the change, or not at all). Receivers must not
commit. Connect receivers in the area's ``signals.py`` / ``services.py`` imported by
``lms.signals_wiring``.
"""

from blinker import Namespace

_events = Namespace()

# sender: the TrainingSession. kwargs: actor, changes (dict of field -> (old, new)).
session_created = _events.signal("session-created")
session_updated = _events.signal("session-updated")
session_cancelled = _events.signal("session-cancelled")

# sender: the TrainingSession whose set of confirmed enrollees changed. kwargs: actor.
attendees_changed = _events.signal("attendees-changed")

# sender: the Enrollment. kwargs: old_status, new_status, actor.
enrollment_status_changed = _events.signal("enrollment-status-changed")

# sender: None. kwargs: staff_member_id, session_id (attendance rows changed).
attendance_changed = _events.signal("attendance-changed")

# sender: None. kwargs: staff_member_id, archive_id (viewing progress changed).
viewing_changed = _events.signal("viewing-changed")

# sender: the User refused. kwargs: target_type, target_id (a cross-municipality attempt,
# answered 403 right after; lms.audit records it so that the entry survives the refusal).
access_denied = _events.signal("access-denied")

# sender: the User just signed in through Entra (created or updated, flushed; the caller
# commits). lms.roster links the user to their roster entry.
user_signed_in = _events.signal("user-signed-in")
