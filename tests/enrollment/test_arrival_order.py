"""Seats are decided in the order requests arrived: a request still with its approvers keeps
its turn, so a later request approved first waits (on the waitlist, in arrival order) until
the earlier one is decided; declining, returning or cancelling the earlier one passes its seat
on at once."""

from __future__ import annotations

import pytest

from lms.enrollment import services
from lms.enrollment.models import CANCELLED, CONFIRMED, PENDING, WAITLISTED, Enrollment


@pytest.fixture
def office(db, make_user):
    return make_user("municipal_admin", name="研修担当 高橋")


def learners(make_user, n):
    return [make_user("learner", name=f"受講者 {i}") for i in range(n)]


def requests(db, make_course, make_session, people, capacity):
    course = make_course(title="法令実務研修", requires_approval=True)
    session = make_session(course, capacity=capacity)
    made = [services.enroll(session.id, p.staff_member.id, p) for p in people]
    db.session.commit()
    assert all(e.status == PENDING for e in made)
    return session, [e.id for e in made]


def status(db, enrollment_id):
    db.session.expire_all()
    return db.session.get(Enrollment, enrollment_id).status


def approve(db, enrollment_id, actor):
    services.approve_enrollment(enrollment_id, actor)
    db.session.commit()
    return status(db, enrollment_id)


def test_a_later_request_approved_first_waits_for_the_earlier_one(db, make_user, make_course, make_session, office):
    session, (first, second) = requests(db, make_course, make_session, learners(make_user, 2), capacity=1)
    assert approve(db, second, office) == WAITLISTED  # the first still has its turn
    assert approve(db, first, office) == CONFIRMED
    assert status(db, second) == WAITLISTED
    db.session.refresh(session)
    assert (session.confirmed_count, session.waitlisted_count) == (1, 1)


@pytest.mark.parametrize("outcome", ["reject", "return", "cancel"])
def test_the_earlier_request_leaving_passes_its_seat_on(db, make_user, make_course, make_session, office, outcome):
    people = learners(make_user, 2)
    session, (first, second) = requests(db, make_course, make_session, people, capacity=1)
    assert approve(db, second, office) == WAITLISTED
    if outcome == "reject":
        services.reject_enrollment(first, office, "定員の調整のため")
    elif outcome == "return":
        services.return_enrollment(first, office, "受講目的を具体的に書いてください")
    else:
        services.cancel_enrollment(first, people[0])
    db.session.commit()
    assert status(db, second) == CONFIRMED
    if outcome == "cancel":
        assert status(db, first) == CANCELLED
    db.session.refresh(session)
    assert (session.confirmed_count, session.waitlisted_count) == (1, 0)


def test_a_returned_request_sent_again_queues_behind_those_seated(db, make_user, make_course, make_session, office):
    people = learners(make_user, 2)
    session, (first, second) = requests(db, make_course, make_session, people, capacity=1)
    services.return_enrollment(first, office, "受講目的を具体的に書いてください")
    db.session.commit()
    assert approve(db, second, office) == CONFIRMED  # the returned one waits for its learner, not in turn
    services.resubmit_enrollment(first, people[0], "目的を書き直しました")
    db.session.commit()
    assert approve(db, first, office) == WAITLISTED
    assert status(db, second) == CONFIRMED


def test_seats_go_in_arrival_order_whatever_the_order_of_approval(db, make_user, make_course, make_session, office):
    people = learners(make_user, 3)
    session, (a, b, c) = requests(db, make_course, make_session, people, capacity=2)
    assert approve(db, c, office) == WAITLISTED  # a and b arrived first and are still with the office
    assert approve(db, b, office) == CONFIRMED  # a keeps one seat, b takes the other
    assert approve(db, a, office) == CONFIRMED
    assert status(db, c) == WAITLISTED
    services.cancel_enrollment(b, people[1])
    db.session.commit()
    assert status(db, c) == CONFIRMED
    db.session.refresh(session)
    assert (session.confirmed_count, session.waitlisted_count) == (2, 0)
