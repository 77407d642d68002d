"""選考: a course whose organiser selects. Requests pass their approval steps, then wait for
the organiser, who decides a session's requests together — 受講決定, 補欠 (the waitlist, in
arrival order) or 見送り with a reason — never beyond the free seats, all or nothing."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lms.common.errors import Conflict, InvalidInput, NotAllowed
from lms.enrollment import services
from lms.enrollment.models import (
    CONFIRMED,
    NOT_SELECTED,
    OFFICE_STEP,
    PENDING,
    REJECTED,
    SELECTED,
    SELECTION_STEP,
    WAITLISTED,
    Enrollment,
    EnrollmentApproval,
)
from lms.notifications.models import OutboxMail


@pytest.fixture
def organiser(db, make_user):
    return make_user("trainer", name="研修所 主催者")


@pytest.fixture
def office(db, make_user):
    return make_user("municipal_admin", name="研修担当 高橋")


def selection_session(db, make_course, make_session, organiser, *, office_step=False, capacity=2):
    course = make_course(title="政策法務研修（選考）", selection=True, requires_approval=office_step, owner_id=organiser.id)
    return make_session(course, capacity=capacity)


def apply_all(db, session, people):
    made = [services.enroll(session.id, p.staff_member.id, p) for p in people]
    db.session.commit()
    return [e.id for e in made]


def fresh(db, enrollment_id):
    db.session.expire_all()
    return db.session.get(Enrollment, enrollment_id)


def test_requests_wait_for_selection_after_the_office(db, make_user, make_course, make_session, organiser, office):
    session = selection_session(db, make_course, make_session, organiser, office_step=True)
    (eid,) = apply_all(db, session, [make_user("learner")])
    assert fresh(db, eid).approval_step == OFFICE_STEP
    services.approve_enrollment(eid, office)
    db.session.commit()
    e = fresh(db, eid)
    assert (e.status, e.approval_step) == (PENDING, SELECTION_STEP)  # approved, not yet decided
    # Nobody decides it by the single approval any more: the office is told to wait.
    with pytest.raises(Conflict):
        services.approve_enrollment(eid, office)
    db.session.rollback()
    # The organiser is not mailed request by request (they decide on the 選考 page).
    told = db.session.scalars(select(OutboxMail.dedupe_key).where(OutboxMail.kind == "approval",
                                                                  OutboxMail.enrollment_id == eid)).all()
    assert all(f":{SELECTION_STEP}:" not in key for key in told)


def test_the_organiser_decides_places_reserves_and_declines(db, make_user, make_course, make_session, organiser):
    session = selection_session(db, make_course, make_session, organiser, capacity=2)
    a, b, c, d = apply_all(db, session, [make_user("learner") for _ in range(4)])
    assert all(fresh(db, x).approval_step == SELECTION_STEP for x in (a, b, c, d))
    result = services.decide_selection(session.id, {d: "select", b: "select", a: "reserve", c: "decline"}, organiser,
                                       "今回は係長級を優先しました")
    db.session.commit()
    assert (result.selected, result.reserved, result.declined) == (2, 1, 1)
    assert [fresh(db, x).status for x in (a, b, c, d)] == [WAITLISTED, CONFIRMED, REJECTED, CONFIRMED]
    assert fresh(db, c).reason == "今回は係長級を優先しました"
    decisions = dict(db.session.execute(select(EnrollmentApproval.enrollment_id, EnrollmentApproval.decision)
                                        .where(EnrollmentApproval.step == SELECTION_STEP)).all())
    assert decisions[d] == SELECTED and decisions[c] == NOT_SELECTED
    kinds = {m.enrollment_id: m.kind for m in db.session.scalars(select(OutboxMail).where(
        OutboxMail.enrollment_id.in_([b, c]), OutboxMail.kind.in_(["confirmed", "rejected"])))}
    assert kinds == {b: "confirmed", c: "rejected"}
    # The reserve moves up when a place is given back.
    services.cancel_enrollment(b, fresh(db, b).staff_member.user)
    db.session.commit()
    assert fresh(db, a).status == CONFIRMED


def test_more_places_than_seats_is_refused_and_nothing_changes(db, make_user, make_course, make_session, organiser):
    session = selection_session(db, make_course, make_session, organiser, capacity=1)
    a, b = apply_all(db, session, [make_user("learner"), make_user("learner")])
    with pytest.raises(Conflict) as refused:
        services.decide_selection(session.id, {a: "select", b: "select"}, organiser)
    assert "残りは 1 人" in refused.value.message
    db.session.rollback()
    assert [fresh(db, x).status for x in (a, b)] == [PENDING, PENDING]
    db.session.refresh(session)
    assert session.confirmed_count == 0
    with pytest.raises(InvalidInput):  # a decline needs the reason the learner is told
        services.decide_selection(session.id, {a: "decline"}, organiser, "  ")
    with pytest.raises(InvalidInput):
        services.decide_selection(session.id, {a: "promote"}, organiser)
    db.session.rollback()


def test_in_arrival_order(db, make_user, make_course, make_session, organiser):
    session = selection_session(db, make_course, make_session, organiser, capacity=2)
    a, b, c = apply_all(db, session, [make_user("learner") for _ in range(3)])
    result = services.decide_selection_in_order(session.id, organiser)
    db.session.commit()
    assert (result.selected, result.reserved) == (2, 1)
    assert [fresh(db, x).status for x in (a, b, c)] == [CONFIRMED, CONFIRMED, WAITLISTED]


def test_only_the_organiser_selects(db, make_user, make_course, make_session, organiser, office):
    session = selection_session(db, make_course, make_session, organiser)
    (a,) = apply_all(db, session, [make_user("learner")])
    for someone in (office, make_user("trainer")):
        with pytest.raises(NotAllowed):
            services.decide_selection(session.id, {a: "select"}, someone)
        db.session.rollback()
    other = selection_session(db, make_course, make_session, organiser)
    with pytest.raises(Conflict):  # a request of another session is not this page's to decide
        services.decide_selection(other.id, {a: "select"}, organiser)
    db.session.rollback()
    assert fresh(db, a).status == PENDING


def test_the_page_decides_and_keeps_choices_on_a_refusal(app, db, client, login_as, make_user, make_course, make_session):
    organiser = login_as("trainer")
    session = selection_session(db, make_course, make_session, organiser, capacity=1)
    people = [make_user("learner", name=n) for n in ("青木 一郎", "井上 花子")]
    a, b = apply_all(db, session, people)
    page = client.get(f"/sessions/{session.id}/selection")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "青木 一郎" in html and "井上 花子" in html and f'name="decision-{a}"' in html
    refused = client.post(f"/sessions/{session.id}/selection", data={f"decision-{a}": "select", f"decision-{b}": "select"})
    assert refused.status_code == 409
    html = refused.get_data(as_text=True)
    assert "残りは 1 人" in html
    assert f'name="decision-{b}" value="select" checked' in html  # what was chosen stays chosen
    done = client.post(f"/sessions/{session.id}/selection", data={f"decision-{a}": "select", f"decision-{b}": "reserve"})
    assert done.status_code == 302
    assert [fresh(db, x).status for x in (a, b)] == [CONFIRMED, WAITLISTED]
    assert client.get(f"/sessions/{session.id + 10**6}/selection").status_code == 404
    assert client.get("/sessions/99999999999999999999/selection").status_code == 404


def test_each_answer_names_the_step_that_follows(client, db, make_user, make_course, make_session, organiser, office,
                                                login_as):
    """The learner is told whom their request waits for, and the office what its approval leads to:
    the organiser's 選考 (the office is the 研修担当 itself)."""
    session = selection_session(db, make_course, make_session, organiser, office_step=True)
    learner = make_user("learner")
    enrollment = services.enroll(session.id, learner.staff_member.id, learner)
    db.session.commit()
    assert enrollment.outcome_message == "受講申込を受け付けました。研修担当の承認をお待ちください。"
    from lms.notifications.services import compose_queued_mail

    compose_queued_mail()
    mail = db.session.scalar(select(OutboxMail).where(OutboxMail.enrollment_id == enrollment.id,
                                                      OutboxMail.kind == "pending"))
    assert "受講申込を受け付けました。研修担当の承認をお待ちください。" in mail.body_text
    login_as(user=office)
    page = client.post(f"/municipal/enrollments/{enrollment.id}/approve", follow_redirects=True).get_data(as_text=True)
    assert "承認しました。主催者の選考に進みます。" in page and "研修担当の承認に進みます" not in page


def test_a_training_office_s_nomination_waits_for_the_organiser_s_selection(
        db, make_user, make_course, make_session, organiser):
    """推薦 is the office's own decision (its step and the 所属長's are not asked), but the
    organiser's 選考 stays theirs: the nominee waits for it as a swapped-in person does, and
    takes no seat the organiser has not given (the course says the 研修所 selects)."""
    session = selection_session(db, make_course, make_session, organiser, office_step=True, capacity=1)
    nominee = make_user("learner")
    office = make_user("municipal_admin")  # (the same municipality)
    made = services.nominate(session.id, nominee.staff_member.id, office)
    db.session.commit()
    e = fresh(db, made.enrollment.id)
    assert (e.status, e.approval_step) == (PENDING, SELECTION_STEP)
    assert "選考" in made.message
    db.session.expire_all()
    assert db.session.get(type(session), session.id).confirmed_count == 0
    # the organiser decides it with the others on the 選考 page
    result = services.decide_selection(session.id, {e.id: "select"}, organiser, "")
    db.session.commit()
    assert result.selected == 1 and fresh(db, e.id).status == CONFIRMED
