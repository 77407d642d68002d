"""Domain events, so that feature areas stay decoupled.

Receivers run synchronously inside the sender's transaction (so an outbox row or a
queued job is committed together with the change, or not at all). Receivers must not
commit. A higher layer connects its receivers in its ``receivers.py``, which the app
factory imports.
"""

from blinker import Namespace

_events = Namespace()

# sender: the TrainingSession (its row locked). kwargs: actor, changes (dict of field -> (old,
# new); "quotas": ({municipality_id: seats} before, after)); session_cancelled also reason;
# session_updated also from_meeting=True when the join link is the one of the Teams meeting
# made for the session (not a person's edit).
session_created = _events.signal("session-created")
session_updated = _events.signal("session-updated")
session_cancelled = _events.signal("session-cancelled")

# sender: the TrainingSession (row locked) given 割当人数 rows for municipalities that had none.
# kwargs: quotas (the new SessionQuota rows, flushed). The enrollment area sets each row's
# confirmed_count to that municipality's people already confirmed in the session (they came in
# on the shared seats, or under a quota removed before), so that the quota holds them; the
# sender then refuses a quota below that number.
quotas_added = _events.signal("quotas-added")

# sender: the TrainingSession (row locked) about to move to other times. kwargs: actor,
# starts_at, ends_at (the new times, aware UTC), accept_clashes (the organiser confirmed the
# move knowing some enrollees then have two sessions at once). A receiver refuses by raising
# InvalidInput with field="accept_clashes" (lms.enrollment: confirmed enrollees double-booked).
session_moving = _events.signal("session-moving")

# sender: the TrainingSession (row locked) whose join link a person has just cleared (the
# link a trainer typed). kwargs: actor. A receiver that will give the session a meeting of its
# own (lms.teams) returns True: the enrollees then hear of the link once, when it is known,
# rather than of its removal first.
meeting_link_cleared = _events.signal("meeting-link-cleared")

# sender: the TrainingSession whose set of confirmed enrollees changed. kwargs: actor.
attendees_changed = _events.signal("attendees-changed")

# sender: the Enrollment (flushed, its session's row locked). kwargs: old_status (None for a
# new arrival), new_status, actor, notice (the kind of notice the learner gets: "confirmed",
# "waitlisted", "pending", "promoted", "rejected", "cancelled"), position (a new arrival's
# waitlist position, or None).
# notice None: the learner is told otherwise (a 連続講座's days and make-ups that went together:
# ``series_places_cancelled``).
enrollment_status_changed = _events.signal("enrollment-status-changed")

# sender: None. A learner's places in a 連続講座 that went together in one change (the first
# part's place cancelled, swapped out or its session called off, taking the later parts and
# make-ups with it; or the days after a departure, 退職・転出, while the first day is past), each
# published already as ``enrollment_status_changed`` with notice None. kwargs: staff_member_id,
# series_id (the first part's session id), enrollment_ids (in date order), actor.
# lms.notifications tells the learner once, listing every day and make-up that went.
series_places_cancelled = _events.signal("series-places-cancelled")

# sender: the StaffMember (their row locked) whose request is about to be decided, before the
# session's row is locked. kwargs: municipality_id. A receiver that will read something at the
# decision which does not depend on it (the webhook endpoints an event would go to) reads it
# now, in the same transaction, so that the session's lock is held for less time.
enrollment_arriving = _events.signal("enrollment-arriving")

# sender: the pending Enrollment (flushed, its session's row locked), approved at one step and
# now waiting for the next. kwargs: step (the step it waits for now: "office"), actor.
# lms.notifications tells that step's approvers.
approval_step_reached = _events.signal("approval-step-reached")

# sender: None. A roster entry moved to another 所属 (人事異動, by hand, CSV, Graph sync or the
# API; flushed). kwargs: staff_member_id, from_department, to_department, actor. lms.enrollment
# re-routes the member's requests waiting for a 所属長 (to the new 所属's, or to the training
# office where it has none); lms.notifications tells the old and the new approvers.
staff_member_transferred = _events.signal("staff-member-transferred")

# sender: None. A roster entry recorded as 退職・転出 (by hand, CSV, Graph sync or the API; in
# the writer's transaction). kwargs: staff_member_id, left_on (date), actor. lms.enrollment
# gives up the member's places in sessions after that day (soon after the commit, in the worker).
staff_member_left = _events.signal("staff-member-left")

# sender: None. kwargs: staff_member_id, session_id (the learner's session). An activity's
# submission was submitted, scored, confirmed or returned (lms.activities): completion follows.
activity_changed = _events.signal("activity-changed")

# sender: the ActivitySubmission (flushed): a 受講報告 returned to its writer (差し戻し) by its
# reviewer. kwargs: comment (why), actor. lms.notifications tells the writer, with the comment.
report_returned = _events.signal("report-returned")

# sender: None. kwargs: staff_member_id, course_ids. A question, not a change: when was the staff
# member's completion of each course first granted (its certificate issued)? lms.completion
# answers {(course_id, fiscal_year): aware UTC}. lms.activities asks it to tell a learner which
# activities count for their completion (one that became a requirement after it does not).
completion_granted_at = _events.signal("completion-granted-at")

# sender: None. kwargs: course_id. An activity of the course stopped being a requirement of its
# completion (made optional or unpublished; lms.activities): the completions it held back follow.
activity_requirement_dropped = _events.signal("activity-requirement-dropped")

# sender: None. kwargs: staff_member_id, session_id (attendance rows changed).
attendance_changed = _events.signal("attendance-changed")

# sender: None. kwargs: staff_member_id, archive_id (viewing progress changed).
viewing_changed = _events.signal("viewing-changed")

# sender: None. kwargs: course_id, archive_id. A video of the course's archive was removed: a
# learner who had watched every other part has now watched the archive through (lms.archives).
archive_part_removed = _events.signal("archive-part-removed")

# sender: the StaffMember (flushed) now in another municipality. kwargs: old_municipality_id,
# actor. Whoever changes a roster entry's municipality_id publishes it (the app offers no
# such change: an entry stays in its municipality; a data correction must publish it, or run
# `flask lms completion-summary --rebuild`). The completion summaries count attendance where
# the staff member is now.
staff_member_moved = _events.signal("staff-member-moved")

# sender: the User refused. kwargs: target_type, target_id (a cross-municipality attempt,
# answered 403 or 404 right after; lms.audit records it so that the entry survives the refusal).
access_denied = _events.signal("access-denied")

# sender: the User just signed in through Entra (created or updated, flushed; the caller
# commits). lms.roster links the user to their roster entry.
user_signed_in = _events.signal("user-signed-in")

# sender: the Course about to go back to draft. kwargs: actor. A receiver refuses by raising
# InvalidInput (the enrollment area, while people hold places in its sessions).
course_unpublishing = _events.signal("course-unpublishing")

# sender: the Course (its ``has_prerequisites`` set) a staff member is about to take a place
# in. kwargs: staff_member_id, session_starts_at (aware UTC). A receiver refuses by raising
# the enrollment area's MissingPrerequisite (lms.completion: a required course not completed).
# Sent only for courses with prerequisites, so the enrollment path of the others pays nothing.
enrollment_prerequisites = _events.signal("enrollment-prerequisites")

# sender: None. A notice for the training offices (研修担当, the municipal admins) of some
# municipalities. kwargs: municipality_ids (list of ids), key (what makes it unique: the same
# key is sent once per recipient), subject, body (texts composed by the sender, in Japanese,
# with absolute links), platform_admins (True: to the platform admins too). lms.notifications
# queues one mail per admin with an address.
office_notice = _events.signal("office-notice")

# sender: the Completion (flushed) whose status changed: granted (completed, anew or again) or
# revoked. kwargs: old_status (None for a new completion), new_status. Published by
# lms.completion.services, which writes every completion; lms.api.webhooks sends
# completion.granted / completion.revoked.
completion_changed = _events.signal("completion-changed")

# sender: the Course (flushed) whose catalogue face changed: published, back to draft, cancelled,
# or edited (title, summary, municipalities…). kwargs: actor, changes (dict of field -> (old,
# new); "status" when it moved). Published by lms.courses.services; lms.teams.viva publishes the
# course to Viva Learning (or marks it inactive there).
course_changed = _events.signal("course-changed")

# sender: the new draft Course (flushed) copied from another. kwargs: source (the Course
# copied), actor. Published by lms.courses.services.copy_course; lms.activities copies the
# source's activities and question bank into it.
course_copied = _events.signal("course-copied")

# sender: the MandatoryAssignment (flushed; for "deleted", still in the session, deleted right
# after). kwargs: actor, action ("created", "updated", "deleted"), before (for "updated": the
# (course_id, fiscal_year) it covered until now, else None). Published by
# lms.completion.services; lms.teams.viva assigns the course in Viva Learning to its members.
mandatory_assignment_changed = _events.signal("mandatory-assignment-changed")
