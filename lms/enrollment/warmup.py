"""The enrollment rush's path, rehearsed by a new worker before it serves anyone (see
``lms.common.warmup``; the caller rolls everything back and refuses a commit)."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import select

from lms.auth.models import User
from lms.auth.session import user_for_request
from lms.common.database import is_sqlite, write_deferred
from lms.common.timeutil import utcnow
from lms.courses.models import PUBLISHED, TEAMS, Course, TrainingSession
from lms.enrollment.models import CONFIRMED, SELF, WAITLISTED
from lms.enrollment.services import _cancel_tx, _enroll_tx
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.roster.models import ACTIVE, StaffMember

_MAIL_DOMAIN = "warm-up.invalid"  # RFC 2606: never deliverable, were a row ever to leak


def rehearse_enrollment() -> None:
    """Two learners enroll in a one-seat Teams session (confirmed, then waitlisted) and the
    first cancels (the second is promoted), each step as its request runs it: the user
    load, the transaction, and the writes sent with the commit, short of the COMMIT.

    PostgreSQL only: on SQLite (the embedded default, a handful of users) a transaction
    cannot hold these rows and then begin the enrollment's write transaction."""
    if is_sqlite():
        return
    municipality_id = db.session.scalar(
        select(Municipality.id).where(Municipality.active).order_by(Municipality.id).limit(1)
    )
    if municipality_id is None:
        return  # nothing set up yet: no one could enroll
    now = utcnow().replace(microsecond=0)
    starts = now + timedelta(days=30)
    course = Course(title="warm-up", status=PUBLISHED, published_at=now, eligible_all=True)
    session = TrainingSession(
        course=course, title="warm-up", starts_at=starts, ends_at=starts + timedelta(hours=1), delivery=TEAMS,
        capacity=1, enroll_opens_at=now - timedelta(days=1), enroll_closes_at=starts - timedelta(days=1),
        cancel_deadline=starts - timedelta(days=2), join_url="https://teams.microsoft.com/l/meetup-join/warm-up",
    )
    users = []
    for n in range(2):
        # Fresh keys: two workers warming up at once must not wait on each other's rows.
        key = uuid.uuid4().hex
        user = User(tenant_id=str(uuid.uuid4()), object_id=str(uuid.uuid4()), display_name=f"warm-up {n}",
                    email=f"{key}@{_MAIL_DOMAIN}", municipality_id=municipality_id)
        db.session.add(StaffMember(municipality_id=municipality_id, employee_number=key[:20], full_name=f"warm-up {n}",
                                   sign_in_name=user.email, email=user.email, status=ACTIVE, user=user))
        users.append(user)
    db.session.add(session)
    db.session.flush()

    enrollments = []
    for user, expected in zip(users, (CONFIRMED, WAITLISTED), strict=True):
        learner = user_for_request(user.id)
        enrollment = _enroll_tx(session.id, None, learner, SELF)
        write_deferred(db.session())
        if enrollment.status != expected:
            raise RuntimeError(f"warm-up enrollment came out {enrollment.status}, not {expected}")
        enrollments.append(enrollment)
    _cancel_tx(enrollments[0].id, user_for_request(users[0].id), "")
    write_deferred(db.session())
