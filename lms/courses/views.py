"""What the course page shows for each session: seats and waitlist here; the learner's own
place, and whether (and why not) they can enroll, filled in by the enrollment area."""

from __future__ import annotations

from dataclasses import dataclass

from lms.common.timeutil import as_utc, utcnow
from lms.courses.models import CANCELLED, Course, TrainingSession


@dataclass
class SessionView:
    session: TrainingSession
    free_seats: int
    waitlist: int
    upcoming: bool
    my_enrollment: object | None = None  # lms.enrollment.models.Enrollment
    my_status_text: str = ""
    waitlist_position: int | None = None
    can_enroll: bool = False
    enroll_label: str = ""
    why_not: str = ""
    can_cancel: bool = False
    why_not_cancel: str = ""


def session_views(course: Course) -> list[SessionView]:
    """Upcoming sessions first (soonest first), then past and cancelled ones, with their
    seats and waitlist (the session row's ``waitlisted_count``).

    The learner's own place and buttons are filled in by the enrollment area
    (``lms.enrollment.course_page.learner_sessions``, called by the course page's template):
    courses do not know about enrollments."""
    now = utcnow()
    views = []
    for s in course.sessions:
        upcoming = s.status != CANCELLED and as_utc(s.ends_at) > now
        views.append(SessionView(s, s.free_seats, s.waitlisted_count, upcoming))
    views.sort(key=lambda v: (not v.upcoming, as_utc(v.session.starts_at).timestamp() * (1 if v.upcoming else -1)))
    return views
