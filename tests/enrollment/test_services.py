"""The enrollment rules, service by service (both databases)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from lms.audit.models import AuditLog
from lms.common import signals
from lms.common.errors import Conflict
from lms.common.timeutil import utcnow
from lms.courses.models import CANCELLED as SESSION_CANCELLED
from lms.courses.models import DRAFT, TrainingSession
from lms.enrollment import services
from lms.enrollment.models import CANCELLED, CONFIRMED, PENDING, REJECTED, WAITLISTED, Enrollment
from lms.enrollment.queries import waitlist_position
from lms.notifications.models import OutboxMail
from lms.notifications.services import compose_queued_mail
from lms.roster.models import LEFT
from tests import factories
from tests.enrollment.conftest import assert_counters_consistent


def _mails(enrollment_id: int) -> list[str]:
    return sorted(
        m.kind for m in factories.db.session.scalars(select(OutboxMail).where(OutboxMail.enrollment_id == enrollment_id))
    )


def _audit(action: str) -> list[AuditLog]:
    return list(factories.db.session.scalars(select(AuditLog).where(AuditLog.action == action)))


def _self_enroll(session, user):
    return services.enroll(session.id, user.staff_member.id, user)


# ---------------------------------------------------------------- enroll


def test_enroll_confirms_while_seats_are_free_then_waitlists(make_session, learner):
    session = make_session(capacity=2)
    users = [learner()[0] for _ in range(4)]
    results = [_self_enroll(session, u) for u in users]
    assert [e.status for e in results] == [CONFIRMED, CONFIRMED, WAITLISTED, WAITLISTED]
    assert [e.arrival_seq for e in results] == sorted(e.arrival_seq for e in results)
    assert len({e.arrival_seq for e in results}) == 4
    assert waitlist_position(results[3]) == 2
    assert _mails(results[0].id) == ["confirmed"]
    assert _mails(results[2].id) == ["waitlisted"]
    assert "2 番目" in services.status_message(results[3])
    assert_counters_consistent(session.id)


def test_position_told_at_arrival_is_the_queue_position(make_session, learner):
    """The position in the answer and in the mail is computed with the arrival number in one
    pass; it must equal the queue as waitlist_position reads it, also after people leave."""
    session = make_session(capacity=1)
    users = [learner()[0] for _ in range(6)]

    def enroll_and_check(user):
        enrollment = _self_enroll(session, user)
        if enrollment.status == WAITLISTED:
            queue = waitlist_position(factories.db.session.get(Enrollment, enrollment.id))
            assert f"キャンセル待ち {queue} 番目" in enrollment.outcome_message, (enrollment.outcome_message, queue)
            compose_queued_mail()  # as the worker does, woken by the commit
            mail = factories.db.session.scalar(
                select(OutboxMail).where(OutboxMail.enrollment_id == enrollment.id, OutboxMail.kind == "waitlisted"))
            assert f"{queue} 番目" in mail.body_text
        return enrollment

    first = [enroll_and_check(u) for u in users[:4]]  # 1 confirmed, 3 waiting
    assert [waitlist_position(e) for e in first[1:]] == [1, 2, 3]
    services.cancel_enrollment(first[1].id, users[1])  # the first in the queue leaves
    later = [enroll_and_check(u) for u in users[4:]]
    assert [waitlist_position(e) for e in later] == [3, 4]
    seqs = [e.arrival_seq for e in first + later]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def test_a_rush_of_notices_is_composed_in_bulk(make_session, learner):
    """The worker composes queued notices in bulk: a fixed number of statements for any number
    of them, each waitlisted learner told their own position, and a row composed meanwhile
    (by another worker) keeps its texts."""
    from sqlalchemy import event

    session = make_session(capacity=2)
    enrollments = [_self_enroll(session, learner()[0]) for _ in range(12)]
    db = factories.db
    early = db.session.scalar(select(OutboxMail).where(OutboxMail.enrollment_id == enrollments[-1].id))
    db.session.execute(update(OutboxMail).where(OutboxMail.id == early.id).values(subject="既に作成", body_text="作成済みの本文"))
    db.session.commit()
    statements = []
    listener = lambda *args, **kw: statements.append(args[2])  # noqa: E731
    event.listen(db.engine, "before_cursor_execute", listener)
    try:
        assert compose_queued_mail() == 11
    finally:
        event.remove(db.engine, "before_cursor_execute", listener)
    # A fixed number, and one per calendar file (its SEQUENCE: the two confirmed) — was several per notice.
    assert len(statements) <= 7 + 2, statements
    for position, enrollment in enumerate(enrollments[2:-1], start=1):
        mail = db.session.scalar(select(OutboxMail).where(OutboxMail.enrollment_id == enrollment.id))
        assert mail.kind == "waitlisted" and f"順位：{position} 番目" in mail.body_text, mail.body_text
        assert mail.subject
    confirmed = db.session.scalar(select(OutboxMail).where(OutboxMail.enrollment_id == enrollments[0].id))
    assert confirmed.kind == "confirmed" and "BEGIN:VCALENDAR" in confirmed.ics
    db.session.refresh(early)
    assert (early.subject, early.body_text) == ("既に作成", "作成済みの本文")
    assert compose_queued_mail() == 0


def test_enroll_emits_signals(make_session, learner):
    session = make_session(capacity=1)
    seen = []

    def on_status(sender, **kw):
        seen.append(("status", sender.id, kw["old_status"], kw["new_status"]))

    def on_attendees(sender, **kw):
        seen.append(("attendees", sender.id))

    signals.enrollment_status_changed.connect(on_status)
    signals.attendees_changed.connect(on_attendees)
    try:
        first = _self_enroll(session, learner()[0])
        second = _self_enroll(session, learner()[0])
    finally:
        signals.enrollment_status_changed.disconnect(on_status)
        signals.attendees_changed.disconnect(on_attendees)
    assert seen == [
        ("status", first.id, None, CONFIRMED),
        ("attendees", session.id),
        ("status", second.id, None, WAITLISTED),
    ]


def test_enroll_with_approval_is_pending_and_takes_no_seat(make_course, make_session, learner):
    session = make_session(make_course(requires_approval=True), capacity=1)
    enrollment = _self_enroll(session, learner()[0])
    assert enrollment.status == PENDING
    assert _mails(enrollment.id) == ["pending"]
    assert_counters_consistent(session.id)
    assert factories.db.session.get(TrainingSession, session.id).confirmed_count == 0


@pytest.mark.parametrize(
    "change, error",
    [
        ({"enroll_opens_at": timedelta(days=1)}, services.EnrollmentClosed),
        ({"enroll_closes_at": timedelta(minutes=-1)}, services.EnrollmentClosed),
        ({"status": SESSION_CANCELLED}, services.EnrollmentClosed),
    ],
)
def test_enroll_only_within_the_window(make_session, learner, change, error):
    now = utcnow()
    values = {k: (now + v if isinstance(v, timedelta) else v) for k, v in change.items()}
    session = make_session(**values)
    user, member = learner()
    with pytest.raises(error) as info:
        _self_enroll(session, user)
    assert info.value.message
    assert factories.db.session.scalar(select(Enrollment)) is None


def test_enroll_refused_once_the_session_started(make_session, learner):
    session = make_session(starts_in=timedelta(minutes=-5), enroll_closes_at=None)
    with pytest.raises(services.SessionStarted, match="開始"):
        _self_enroll(session, learner()[0])


def test_enroll_refused_for_a_draft_course(make_course, make_session, learner):
    session = make_session(make_course(status=DRAFT))
    with pytest.raises(services.EnrollmentClosed):
        _self_enroll(session, learner()[0])


def test_enroll_only_for_eligible_municipalities(make_course, make_session, learner):
    session = make_session(make_course(eligible=["131024"]))
    with pytest.raises(services.NotEligible, match="対象"):
        _self_enroll(session, learner("131016")[0])
    assert _self_enroll(session, learner("131024")[0]).status == CONFIRMED


def test_enroll_refused_for_staff_who_left(make_session, learner):
    session = make_session()
    user, member = learner()
    member.status = LEFT
    factories.db.session.commit()
    with pytest.raises(services.NotEligible):
        _self_enroll(session, user)


def test_staff_leaving_on_a_later_day_enrol_only_until_then(make_session, learner):
    """A scheduled departure (in service until the day): sessions up to that day are open,
    later ones are refused with the date."""
    from lms.common.timeutil import to_tokyo

    before = make_session(starts_in=timedelta(days=3))
    after = make_session(starts_in=timedelta(days=10))
    user, member = learner()
    member.left_on = to_tokyo(before.starts_at).date() + timedelta(days=1)
    factories.db.session.commit()
    assert _self_enroll(before, user).status == CONFIRMED
    with pytest.raises(services.NotEligible, match="退職・転出の予定"):
        _self_enroll(after, user)


def test_enroll_twice_says_where_you_stand(make_session, learner):
    session = make_session(capacity=1)
    _self_enroll(session, learner()[0])
    user = learner()[0]
    first = _self_enroll(session, user)
    with pytest.raises(services.AlreadyEnrolled) as info:
        _self_enroll(session, user)
    assert info.value.enrollment.id == first.id
    assert "キャンセル待ち" in info.value.message and "1 番目" in info.value.message


def test_enroll_for_someone_else_is_not_allowed(make_session, learner):
    session = make_session()
    user = learner()[0]
    other = learner()[1]
    with pytest.raises(services.NotAllowed):
        services.enroll(session.id, other.id, user)


def test_enroll_refused_when_confirmed_in_an_overlapping_session(make_session, learner):
    first = make_session(starts_in=timedelta(days=3), minutes=120)
    overlapping = make_session(starts_in=timedelta(days=3, hours=1))
    later = make_session(starts_in=timedelta(days=3, hours=2))  # starts when the first ends
    user = learner()[0]
    _self_enroll(first, user)
    with pytest.raises(services.OverlapsConfirmed, match="同じ時間帯"):
        _self_enroll(overlapping, user)
    assert _self_enroll(later, user).status == CONFIRMED


def test_waitlisted_elsewhere_does_not_block(make_session, learner):
    full = make_session(starts_in=timedelta(days=3), capacity=0)
    overlapping = make_session(starts_in=timedelta(days=3, minutes=30))
    user = learner()[0]
    assert _self_enroll(full, user).status == WAITLISTED
    assert _self_enroll(overlapping, user).status == CONFIRMED


def test_a_waitlisted_learner_passed_over_is_told_why(db, make_session, learner):
    """First in line but confirmed elsewhere at the same time: promotion passes them over, and
    their status says so instead of only 「1 番目」."""
    full = make_session(starts_in=timedelta(days=3), capacity=1)
    overlapping = make_session(starts_in=timedelta(days=3, minutes=30))
    holder, user = learner()[0], learner()[0]
    held = _self_enroll(full, holder)
    waiting = _self_enroll(full, user)
    assert "繰り上がりません" not in services.status_message(waiting)
    _self_enroll(overlapping, user)
    db.session.commit()
    assert "繰り上がりません（キャンセル待ち 1 番目）" in services.status_message(waiting)
    services.cancel_enrollment(held.id, holder)
    db.session.commit()
    db.session.refresh(waiting)
    assert waiting.status == WAITLISTED


def test_quota_caps_a_municipality_and_others_share_the_rest(make_session, learner):
    session = make_session(capacity=3, quotas={"131016": 1})
    a = _self_enroll(session, learner("131016")[0])
    b = _self_enroll(session, learner("131016")[0])
    c = _self_enroll(session, learner("131024")[0])
    d = _self_enroll(session, learner("131032")[0])
    e = _self_enroll(session, learner("131032")[0])
    assert [x.status for x in (a, b, c, d, e)] == [CONFIRMED, WAITLISTED, CONFIRMED, CONFIRMED, WAITLISTED]
    assert_counters_consistent(session.id)


def test_a_waiting_arrival_is_told_why_it_waits(make_session, learner, make_staff, make_user):
    """The capacity reached, the municipality's own 割当人数 reached, or the seats left held for
    other municipalities: each arrival (and each nomination) is told which, and the course
    page later tells a full session apart from seats held by 割当人数."""
    session = make_session(capacity=3, quotas={"131016": 1, "131024": 1})
    assert _self_enroll(session, learner("131016")[0]).status == CONFIRMED
    own_quota = _self_enroll(session, learner("131016")[0])
    assert own_quota.status == WAITLISTED
    assert own_quota.outcome_message == "所属する区市町村の割当人数（1 人）に達しているため、キャンセル待ち 1 番目です。"
    assert _self_enroll(session, learner("131032")[0]).status == CONFIRMED  # the one seat nobody holds
    held = _self_enroll(session, learner("131032")[0])
    assert held.status == WAITLISTED
    assert held.outcome_message == "空いている席は区市町村ごとの割当人数として確保されているため、キャンセル待ち 2 番目です。"
    factories.db.session.expire_all()
    assert services.status_message(factories.db.session.get(Enrollment, held.id)).startswith("空いている席は")
    # 中央区 takes its held seat: the session is full now.
    assert _self_enroll(session, learner("131024")[0]).status == CONFIRMED
    full = _self_enroll(session, learner("131024")[0])
    assert full.outcome_message == "定員に達しているため、キャンセル待ち 3 番目です。"
    factories.db.session.expire_all()
    assert services.status_message(factories.db.session.get(Enrollment, held.id)).startswith("定員に達しているため")
    # A nomination over the quota says the same.
    other = make_session(capacity=10, quotas={"131016": 0})
    admin = make_user("municipal_admin", municipality_code="131016")
    result = services.nominate(other.id, make_staff("131016").id, admin)
    assert result.enrollment.status == WAITLISTED and "割当人数（0 人）に達しているため" in result.message
    assert_counters_consistent(session.id)


def test_quota_seats_are_held_until_released(make_session, learner):
    """割当人数 are held for their municipality: others get only the seats nobody holds until
    the quotas are released (at the nomination deadline, or by the office earlier); then the
    waitlist is promoted in order of arrival."""
    from lms.common.database import run_in_transaction
    from lms.courses.services import release_session_quotas

    session = make_session(capacity=4, quotas={"131016": 2, "131024": 1})
    others = [_self_enroll(session, learner("131032")[0]) for _ in range(3)]
    assert [x.status for x in others] == [CONFIRMED, WAITLISTED, WAITLISTED]  # 3 of 4 seats held
    chiyoda = _self_enroll(session, learner("131016")[0])
    assert chiyoda.status == CONFIRMED  # its held seat
    assert_counters_consistent(session.id)
    # 中央区 lets its unfilled seat go early: the first waiting person takes it.
    run_in_transaction(release_session_quotas, session.id, municipality_id=factories.municipality("131024").id)
    factories.db.session.expire_all()
    assert [factories.db.session.get(Enrollment, x.id).status for x in others] == [CONFIRMED, CONFIRMED, WAITLISTED]
    # At the deadline every quota goes: 千代田区's unfilled seat goes to the next in line.
    changes = run_in_transaction(release_session_quotas, session.id)
    assert changes["quotas"][1] == {}
    factories.db.session.expire_all()
    assert [factories.db.session.get(Enrollment, x.id).status for x in others] == [CONFIRMED, CONFIRMED, CONFIRMED]
    assert factories.db.session.get(Enrollment, chiyoda.id).status == CONFIRMED  # nobody loses a seat
    assert run_in_transaction(release_session_quotas, session.id) == {}  # nothing held any more
    assert_counters_consistent(session.id)
    assert _audit("session.release_quotas")


# ---------------------------------------------------------------- cancel and promotion


def test_cancel_promotes_first_waitlisted(make_session, learner):
    session = make_session(capacity=1)
    holder = learner()[0]
    seat = _self_enroll(session, holder)
    waiting = [learner()[0] for _ in range(3)]
    queued = [_self_enroll(session, u) for u in waiting]
    cancelled = services.cancel_enrollment(seat.id, holder, "都合がつかないため")
    assert cancelled.status == CANCELLED and not cancelled.late_cancellation
    assert cancelled.reason == "都合がつかないため"
    factories.db.session.expire_all()
    assert [factories.db.session.get(Enrollment, e.id).status for e in queued] == [CONFIRMED, WAITLISTED, WAITLISTED]
    assert _mails(queued[0].id) == ["promoted", "waitlisted"]
    assert _mails(seat.id) == ["cancelled", "confirmed"]
    assert waitlist_position(factories.db.session.get(Enrollment, queued[2].id)) == 2
    assert_counters_consistent(session.id)


def test_cancel_of_a_waitlisted_enrollment_promotes_nobody(make_session, learner):
    session = make_session(capacity=1)
    _self_enroll(session, learner()[0])
    user = learner()[0]
    waiting = _self_enroll(session, user)
    third = _self_enroll(session, learner()[0])
    services.cancel_enrollment(waiting.id, user)
    factories.db.session.expire_all()
    assert factories.db.session.get(Enrollment, third.id).status == WAITLISTED
    assert waitlist_position(factories.db.session.get(Enrollment, third.id)) == 1
    assert_counters_consistent(session.id)


def test_promotion_skips_people_whose_quota_is_full(make_session, learner):
    session = make_session(capacity=2, quotas={"131016": 1})
    chiyoda = learner("131016")[0]
    seat = _self_enroll(session, chiyoda)
    other_seat_user = learner("131024")[0]
    other_seat = _self_enroll(session, other_seat_user)
    blocked = _self_enroll(session, learner("131016")[0])  # quota full
    eligible = _self_enroll(session, learner("131032")[0])  # capacity full
    assert (blocked.status, eligible.status) == (WAITLISTED, WAITLISTED)
    services.cancel_enrollment(other_seat.id, other_seat_user)
    factories.db.session.expire_all()
    assert factories.db.session.get(Enrollment, blocked.id).status == WAITLISTED
    assert factories.db.session.get(Enrollment, eligible.id).status == CONFIRMED
    # When the Chiyoda seat frees, the Chiyoda waiter is next.
    services.cancel_enrollment(seat.id, chiyoda)
    factories.db.session.expire_all()
    assert factories.db.session.get(Enrollment, blocked.id).status == CONFIRMED
    assert_counters_consistent(session.id)


def test_promotion_skips_people_confirmed_elsewhere_at_the_same_time(make_session, learner):
    session = make_session(starts_in=timedelta(days=5), capacity=1)
    other = make_session(starts_in=timedelta(days=5, minutes=30), capacity=5)
    holder = learner()[0]
    seat = _self_enroll(session, holder)
    busy = learner()[0]
    busy_wait = _self_enroll(session, busy)
    _self_enroll(other, busy)  # confirmed in an overlapping session meanwhile
    free_wait = _self_enroll(session, learner()[0])
    services.cancel_enrollment(seat.id, holder)
    factories.db.session.expire_all()
    assert factories.db.session.get(Enrollment, busy_wait.id).status == WAITLISTED
    assert factories.db.session.get(Enrollment, free_wait.id).status == CONFIRMED


def test_no_promotion_after_the_session_started(make_session, learner, make_user):
    session = make_session(capacity=1)
    holder = learner()[0]
    seat = _self_enroll(session, holder)
    waiting = _self_enroll(session, learner()[0])
    start = utcnow() - timedelta(minutes=5)
    factories.db.session.execute(
        update(TrainingSession).where(TrainingSession.id == session.id).values(starts_at=start, cancel_deadline=start)
    )
    factories.db.session.commit()
    admin = make_user("municipal_admin", "131016")
    cancelled = services.cancel_enrollment(seat.id, admin, "体調不良")
    assert cancelled.late_cancellation is True
    factories.db.session.expire_all()
    assert factories.db.session.get(Enrollment, waiting.id).status == WAITLISTED
    assert_counters_consistent(session.id)
    assert [a.details["late"] for a in _audit("enrollment.cancel")] == [True]


def test_learner_cannot_cancel_after_the_deadline(make_session, learner):
    session = make_session(capacity=2, cancel_deadline=utcnow() + timedelta(days=1))
    user = learner()[0]
    enrollment = _self_enroll(session, user)
    factories.db.session.execute(
        update(TrainingSession).where(TrainingSession.id == session.id).values(cancel_deadline=utcnow() - timedelta(minutes=1))
    )
    factories.db.session.commit()
    allowed, why = services.can_cancel(factories.db.session.get(Enrollment, enrollment.id), user)
    assert not allowed and "期限" in why
    with pytest.raises(services.NotAllowed, match="期限"):
        services.cancel_enrollment(enrollment.id, user)
    assert factories.db.session.get(Enrollment, enrollment.id).status == CONFIRMED


@pytest.mark.parametrize("role, code, allowed", [
    ("learner", "131016", False),
    ("municipal_admin", "131024", False),
    ("trainer", "131016", False),
    ("municipal_admin", "131016", True),
    ("platform_admin", "130001", True),
])
def test_who_may_cancel_someone_elses_enrollment(make_session, learner, make_user, role, code, allowed):
    session = make_session()
    enrollment = _self_enroll(session, learner("131016")[0])
    actor = make_user(role, code)
    if allowed:
        assert services.cancel_enrollment(enrollment.id, actor).status == CANCELLED
        assert len(_audit("enrollment.cancel")) == 1
    else:
        # Someone else's enrollment is not the actor's business: as if there were none.
        with pytest.raises(services.NotFound):
            services.cancel_enrollment(enrollment.id, actor)


def test_the_course_trainer_may_cancel(make_course, make_session, learner, make_user):
    trainer = make_user("trainer", "130001")
    session = make_session(make_course(owner_id=trainer.id))
    enrollment = _self_enroll(session, learner()[0])
    assert services.cancel_enrollment(enrollment.id, trainer, "対象外").status == CANCELLED


def test_cancelling_twice_is_refused(make_session, learner):
    session = make_session()
    user = learner()[0]
    enrollment = _self_enroll(session, user)
    services.cancel_enrollment(enrollment.id, user)
    with pytest.raises(Conflict, match="この申込はすでに取り消されています。"):
        services.cancel_enrollment(enrollment.id, user)


def test_a_confirmed_place_in_a_session_held_is_no_longer_cancelled_by_anyone(make_session, learner, make_user):
    """A training office cancelled a place in a session already held (attended, completed):
    the enrollment said cancelled beside a certificate. A place on the waitlist may still go."""
    session = make_session(starts_in=timedelta(days=3))
    user = learner()[0]
    enrollment = _self_enroll(session, user)
    other = learner()[0]
    session.capacity = 1
    factories.db.session.commit()
    waiting = _self_enroll(session, other)
    assert waiting.status == WAITLISTED
    session.starts_at, session.ends_at = utcnow() - timedelta(hours=3), utcnow() - timedelta(hours=1)
    factories.db.session.commit()
    office = make_user("municipal_admin", user.municipality.code)
    for actor in (office, make_user("platform_admin", "130001"), user):
        allowed, why = services.can_cancel(factories.db.session.get(Enrollment, enrollment.id), actor)
        assert not allowed and why.startswith("この研修回は終了しているため"), why
        with pytest.raises(services.NotAllowed):
            services.cancel_enrollment(enrollment.id, actor, "事後の取消")
        factories.db.session.rollback()
    assert factories.db.session.get(Enrollment, enrollment.id).status == CONFIRMED
    assert services.cancel_enrollment(waiting.id, make_user("platform_admin", "130001"), "整理").status == CANCELLED


# ---------------------------------------------------------------- approval


def test_approve_confirms_or_waitlists(make_course, make_session, learner, make_user):
    session = make_session(make_course(requires_approval=True), capacity=1)
    admin = make_user("municipal_admin", "131016")
    first = _self_enroll(session, learner()[0])
    second = _self_enroll(session, learner()[0])
    assert services.approve_enrollment(first.id, admin).status == CONFIRMED
    assert services.approve_enrollment(second.id, admin).status == WAITLISTED
    # The learner heard "pending" then "confirmed"; the training office had the approval request.
    assert _mails(first.id) == ["approval", "confirmed", "pending"]
    assert _mails(second.id) == ["approval", "pending", "waitlisted"]
    assert len(_audit("enrollment.approve")) == 2
    with pytest.raises(Conflict):
        services.approve_enrollment(first.id, admin)
    assert_counters_consistent(session.id)


def test_only_the_municipality_admin_approves(make_course, make_session, learner, make_user):
    session = make_session(make_course(requires_approval=True))
    pending = _self_enroll(session, learner("131016")[0])
    with pytest.raises(services.NotAllowed):
        services.approve_enrollment(pending.id, make_user("municipal_admin", "131024"))
    with pytest.raises(services.NotAllowed):
        services.reject_enrollment(pending.id, learner("131016")[0], "理由")
    assert services.approve_enrollment(pending.id, make_user("platform_admin", "130001")).status == CONFIRMED


def test_reject_needs_a_reason(make_course, make_session, learner, make_user):
    session = make_session(make_course(requires_approval=True))
    pending = _self_enroll(session, learner()[0])
    admin = make_user("municipal_admin", "131016")
    with pytest.raises(services.InvalidInput, match="理由"):
        services.reject_enrollment(pending.id, admin, "  ")
    rejected = services.reject_enrollment(pending.id, admin, "今年度は受講済みのため")
    assert (rejected.status, rejected.reason) == (REJECTED, "今年度は受講済みのため")
    assert _mails(pending.id) == ["pending", "rejected"]
    assert _audit("enrollment.reject")[0].details["reason"] == "今年度は受講済みのため"


# ---------------------------------------------------------------- nomination and swap


def test_nominate_staff_who_never_signed_in_is_idempotent(make_course, make_session, make_staff, make_user):
    session = make_session(make_course(requires_approval=True), capacity=1)
    admin = make_user("municipal_admin", "131016")
    member = make_staff("131016")
    first = services.nominate(session.id, member.id, admin)
    assert first.created and first.enrollment.status == CONFIRMED  # no approval step for nominations
    again = services.nominate(session.id, member.id, admin)
    assert not again.created and again.enrollment.id == first.enrollment.id and "確定" in again.message
    assert len(_audit("enrollment.nominate")) == 1
    assert_counters_consistent(session.id)


def test_nominate_only_own_municipality(make_session, make_staff, make_user):
    session = make_session()
    with pytest.raises(services.NotAllowed):
        services.nominate(session.id, make_staff("131024").id, make_user("municipal_admin", "131016"))
    with pytest.raises(services.NotAllowed):
        services.nominate(session.id, make_staff("131016").id, make_user("learner", "131016"))


def test_nominate_follows_the_same_rules(make_course, make_session, make_staff, make_user):
    admin = make_user("municipal_admin", "131016")
    closed = make_session(enroll_closes_at=utcnow() - timedelta(minutes=1))
    with pytest.raises(services.EnrollmentClosed):
        services.nominate(closed.id, make_staff("131016").id, admin)
    ineligible = make_session(make_course(eligible=["131024"]))
    with pytest.raises(services.NotEligible):
        services.nominate(ineligible.id, make_staff("131016").id, admin)


def test_swap_keeps_the_seat_and_the_arrival_order(make_session, make_staff, make_user, learner):
    session = make_session(capacity=1, quotas={"131016": 1})
    admin = make_user("municipal_admin", "131016")
    old = services.nominate(session.id, make_staff("131016").id, admin).enrollment
    waiting = _self_enroll(session, learner("131024")[0])
    replacement = make_staff("131016")
    new = services.swap_nominee(old.id, replacement.id, admin, "人事異動のため")
    factories.db.session.expire_all()
    old = factories.db.session.get(Enrollment, old.id)
    assert (old.status, old.reason) == (CANCELLED, "人事異動のため")
    assert (new.status, new.staff_member_id, new.replaces_enrollment_id) == (CONFIRMED, replacement.id, old.id)
    assert new.arrival_seq == old.arrival_seq
    assert factories.db.session.get(Enrollment, waiting.id).status == WAITLISTED
    assert _mails(old.id) == ["cancelled", "confirmed"]
    assert _mails(new.id) == ["confirmed"]
    assert _audit("enrollment.swap")[0].details["to_staff_member_id"] == replacement.id
    assert_counters_consistent(session.id)


def test_swap_keeps_a_waitlist_place(make_session, make_staff, make_user, learner):
    session = make_session(capacity=1)
    admin = make_user("municipal_admin", "131016")
    _self_enroll(session, learner("131024")[0])
    first = services.nominate(session.id, make_staff("131016").id, admin).enrollment
    second = _self_enroll(session, learner("131032")[0])
    new = services.swap_nominee(first.id, make_staff("131016").id, admin)
    assert new.status == WAITLISTED
    assert waitlist_position(new) == 1
    assert waitlist_position(factories.db.session.get(Enrollment, second.id)) == 2


def test_swap_refuses_other_municipalities_and_enrolled_people(make_session, make_staff, make_user):
    session = make_session()
    admin = make_user("municipal_admin", "131016")
    one = services.nominate(session.id, make_staff("131016").id, admin).enrollment
    two = services.nominate(session.id, make_staff("131016").id, admin).enrollment
    with pytest.raises(services.NotAllowed):
        services.swap_nominee(one.id, make_staff("131024").id, admin)
    with pytest.raises(services.AlreadyEnrolled):
        services.swap_nominee(one.id, two.staff_member_id, admin)
    with pytest.raises(services.NotAllowed):
        services.swap_nominee(one.id, make_staff("131016").id, make_user("municipal_admin", "131024"))


def test_an_officer_neither_nominates_nor_swaps_themselves_in(make_session, make_staff, make_user):
    """Their own place would be approved by nobody else (the own-request rule): refused."""
    session = make_session()
    admin = make_user("municipal_admin", "131016")
    factories.db.session.commit()
    assert admin.staff_member is not None
    with pytest.raises(services.NotAllowed, match="ご自身を推薦・差し替えの対象にはできません。"):
        services.nominate(session.id, admin.staff_member.id, admin)
    factories.db.session.rollback()
    placed = services.nominate(session.id, make_staff("131016").id, admin).enrollment
    with pytest.raises(services.NotAllowed, match="ご自身を推薦・差し替えの対象にはできません。"):
        services.swap_nominee(placed.id, admin.staff_member.id, admin)
    factories.db.session.rollback()
    assert factories.db.session.get(Enrollment, placed.id).status == CONFIRMED
    assert_counters_consistent(session.id)


def test_a_stale_swap_of_a_row_already_swapped_names_who_took_the_place(make_session, make_staff, make_user):
    session = make_session()
    admin = make_user("municipal_admin", "131016")
    first = services.nominate(session.id, make_staff("131016").id, admin).enrollment
    services.swap_nominee(first.id, make_staff("131016", full_name="後任 花子").id, admin)
    with pytest.raises(Conflict, match="この申込はすでに 後任 花子 さんに差し替えられています。"):
        services.swap_nominee(first.id, make_staff("131016").id, admin)  # the same page, clicked again
    cancelled = services.nominate(session.id, make_staff("131016").id, admin).enrollment
    services.cancel_enrollment(cancelled.id, admin)
    with pytest.raises(Conflict, match="取り消し済みの申込は差し替えられません。"):
        services.swap_nominee(cancelled.id, make_staff("131016").id, admin)
    assert_counters_consistent(session.id)


# ---------------------------------------------------------------- session cancelled


def test_cancel_session_enrollments_resets_counters(make_course, make_session, make_user, learner):
    trainer = make_user("trainer", "130001")
    session = make_session(make_course(owner_id=trainer.id), capacity=1, quotas={"131016": 1})
    seat = _self_enroll(session, learner("131016")[0])
    waiting = _self_enroll(session, learner("131024")[0])
    with pytest.raises(services.NotAllowed):
        services.cancel_session_enrollments(session.id, make_user("trainer", "130001"), "中止")
    done = services.cancel_session_enrollments(session.id, trainer, "講師急病のため中止")
    assert {e.id for e in done} == {seat.id, waiting.id}
    factories.db.session.expire_all()
    assert all(factories.db.session.get(Enrollment, e.id).status == CANCELLED for e in done)
    assert _mails(waiting.id) == ["cancelled", "waitlisted"]
    assert factories.db.session.get(TrainingSession, session.id).confirmed_count == 0
    assert_counters_consistent(session.id)


# ---------------------------------------------------------------- departures (退職・転出)


def test_staff_who_left_give_up_their_places_after_the_departure_day(make_session, learner):
    """A departure recorded for a learner (here by hand; the roster publishes it however it is
    recorded) cancels their places in sessions on a later day, confirmed, waitlisted or
    waiting for approval, with the reason 「退職・転出」; each seat goes at once to whoever waits.
    A session on the departure day itself, or one already under way, is kept; a second run
    finds nothing; an entry back in service before the run keeps its places."""
    from datetime import datetime, time

    from lms.common.timeutil import to_tokyo, tokyo_to_utc
    from lms.roster.services import record_departure

    db = factories.db
    office = factories.make_user("municipal_admin")
    user, member = learner()
    left_on = to_tokyo(utcnow() + timedelta(days=5)).date()
    on_the_day = tokyo_to_utc(datetime.combine(left_on, time(10))) - utcnow()
    later = make_session(capacity=1, starts_in=timedelta(days=10))
    full_later = make_session(capacity=1, starts_in=timedelta(days=12))
    same_day = make_session(starts_in=on_the_day)
    under_way = make_session(starts_in=timedelta(days=1))
    confirmed = _self_enroll(later, user)
    waiting = _self_enroll(later, learner()[0])
    _self_enroll(full_later, learner()[0])
    waitlisted = _self_enroll(full_later, user)
    kept = _self_enroll(same_day, user)
    started = _self_enroll(under_way, user)
    db.session.execute(update(TrainingSession).where(TrainingSession.id == under_way.id)
                       .values(starts_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    assert (confirmed.status, waiting.status, waitlisted.status) == (CONFIRMED, WAITLISTED, WAITLISTED)

    heard = []
    with signals.staff_member_left.connected_to(lambda _s, **kw: heard.append(kw)):
        record_departure(member.id, left_on, office)
        db.session.commit()
    assert [(k["staff_member_id"], k["left_on"], k["actor"]) for k in heard] == [(member.id, left_on, office)]
    assert services.departed_places() == sorted([confirmed.id, waitlisted.id])

    assert services.withdraw_departed_staff() == 2
    db.session.expire_all()
    status = {e.id: (e.status, e.reason) for e in db.session.scalars(select(Enrollment))}
    assert status[confirmed.id] == (CANCELLED, "退職・転出")
    assert status[waitlisted.id] == (CANCELLED, "退職・転出")
    assert status[waiting.id][0] == CONFIRMED  # the freed seat went to the next in line
    assert status[kept.id][0] == CONFIRMED and status[started.id][0] == CONFIRMED
    assert "cancelled" in _mails(confirmed.id) and "promoted" in _mails(waiting.id)
    entries = [a for a in _audit("enrollment.cancel") if a.target_id == str(confirmed.id)]
    assert len(entries) == 1 and entries[0].actor_id is None and entries[0].details["reason"] == "退職・転出"
    for session in (later, full_later):
        assert_counters_consistent(session.id)
    assert services.withdraw_departed_staff() == 0

    # Back in service (a mistaken departure undone) before the worker ran: nothing is cancelled.
    other_user, other = learner()
    mine = _self_enroll(make_session(starts_in=timedelta(days=20)), other_user)
    record_departure(other.id, left_on, office)
    db.session.commit()
    assert services.departed_places() == [mine.id]
    db.session.execute(update(type(other)).where(type(other).id == other.id).values(status="active", left_on=None))
    db.session.commit()
    assert services.withdraw_departed_staff() == 0
    db.session.expire_all()
    assert db.session.get(Enrollment, mine.id).status == CONFIRMED
