"""training_session.waitlisted_count, kept by the database's triggers (both databases)."""

from __future__ import annotations

from sqlalchemy import delete, func, select, text, update

from lms.courses.models import TrainingSession
from lms.enrollment import services
from lms.enrollment.models import CANCELLED, CONFIRMED, WAITLISTED, Enrollment
from lms.enrollment.triggers import RECOUNT
from tests import factories
from tests.enrollment.conftest import assert_counters_consistent


def _stored(db, session_id: int) -> int:
    db.session.rollback()
    return db.session.scalar(select(TrainingSession.waitlisted_count).where(TrainingSession.id == session_id))


def test_the_services_keep_it_and_a_newcomer_learns_their_place(db):
    session = factories.make_session(capacity=1)
    learners = [factories.make_user() for _ in range(4)]
    enrolled = [services.enroll_self(session.id, user) for user in learners]
    assert [e.status for e in enrolled] == [CONFIRMED, WAITLISTED, WAITLISTED, WAITLISTED]
    assert [e.position_at_arrival for e in enrolled[1:]] == [1, 2, 3]
    assert "3 番目" in enrolled[3].outcome_message
    assert _stored(db, session.id) == 3
    services.cancel_enrollment(enrolled[0].id, learners[0])  # the first waiting is promoted
    assert _stored(db, session.id) == 2
    services.cancel_enrollment(enrolled[2].id, learners[2])
    assert _stored(db, session.id) == 1
    late = services.enroll_self(session.id, factories.make_user())
    assert late.status == WAITLISTED and late.position_at_arrival == 2
    assert_counters_consistent(session.id)


def test_any_writer_keeps_it_even_plain_sql(db):
    first, second = factories.make_session(), factories.make_session()
    member = factories.make_staff()
    row = Enrollment(session_id=first.id, staff_member_id=member.id, municipality_id=member.municipality_id,
                     status=WAITLISTED, source="self", arrival_seq=1)
    db.session.add(row)
    db.session.commit()
    assert (_stored(db, first.id), _stored(db, second.id)) == (1, 0)
    db.session.execute(update(Enrollment).where(Enrollment.id == row.id).values(status=WAITLISTED))  # unchanged
    db.session.commit()
    assert _stored(db, first.id) == 1
    db.session.execute(update(Enrollment).where(Enrollment.id == row.id).values(session_id=second.id))
    db.session.commit()
    assert (_stored(db, first.id), _stored(db, second.id)) == (0, 1)
    db.session.execute(update(Enrollment).where(Enrollment.id == row.id).values(status=CANCELLED))
    db.session.commit()
    assert _stored(db, second.id) == 0
    db.session.execute(update(Enrollment).where(Enrollment.id == row.id).values(status=WAITLISTED, session_id=first.id))
    db.session.commit()
    assert (_stored(db, first.id), _stored(db, second.id)) == (1, 0)
    db.session.execute(delete(Enrollment).where(Enrollment.id == row.id))
    db.session.commit()
    assert _stored(db, first.id) == 0


def test_a_rolled_back_change_leaves_it_as_it_was(db):
    session = factories.make_session()
    member = factories.make_staff()
    db.session.add(Enrollment(session_id=session.id, staff_member_id=member.id,
                              municipality_id=member.municipality_id, status=WAITLISTED, source="self", arrival_seq=1))
    db.session.flush()
    assert db.session.scalar(select(TrainingSession.waitlisted_count).where(TrainingSession.id == session.id)) == 1
    db.session.rollback()
    assert _stored(db, session.id) == 0


def test_the_migration_counts_existing_sessions(db):
    session = factories.make_session(capacity=0)
    for _ in range(3):
        services.enroll_self(session.id, factories.make_user())
    db.session.execute(text("UPDATE training_session SET waitlisted_count = 0"))  # as before the column
    db.session.execute(text(RECOUNT))
    db.session.commit()
    assert _stored(db, session.id) == 3 == db.session.scalar(
        select(func.count()).select_from(Enrollment).where(Enrollment.session_id == session.id))
