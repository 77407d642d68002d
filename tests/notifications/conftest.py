from __future__ import annotations

import pytest

from lms.common.timeutil import utcnow
from lms.enrollment.models import CONFIRMED, Enrollment
from lms.extensions import db


@pytest.fixture
def make_enrollment(db, make_staff, make_session):
    def _make(session=None, member=None, status=CONFIRMED, **kw):
        session = session or make_session()
        member = member or make_staff()
        enrollment = Enrollment(
            session=session,
            staff_member=member,
            municipality_id=member.municipality_id,
            status=status,
            confirmed_at=utcnow() if status == CONFIRMED else None,
            **kw,
        )
        db.session.add(enrollment)
        db.session.flush()
        enrollment.arrival_seq = enrollment.id
        if status == CONFIRMED:
            session.confirmed_count += 1
        db.session.commit()
        return enrollment

    return _make


__all__ = ["db"]
