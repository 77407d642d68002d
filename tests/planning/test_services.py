"""年間研修計画: the survey, the allocation and its publication as 割当人数."""

from __future__ import annotations

from datetime import timedelta

import pytest

from lms.common.errors import InvalidInput, NotAllowed, NotFound
from lms.common.timeutil import fiscal_year_of, utcnow
from lms.courses.models import SessionQuota
from lms.extensions import db
from lms.planning import services
from lms.planning.models import PlanAllocation
from lms.planning.services import Answer
from tests import factories


@pytest.fixture
def admin(make_user):
    return make_user("platform_admin", "130001")


@pytest.fixture
def world(admin, make_session):
    session = make_session(starts_in=timedelta(days=40), capacity=20)
    other = make_session(starts_in=timedelta(days=41), capacity=10)
    plan = services.create_plan(admin, fiscal_year_of(session.starts_at), survey_unit="session")
    services.publish_plan(admin, plan, utcnow() + timedelta(days=7))
    db.session.commit()
    return plan, session, other


def test_only_the_platform_admin_plans_and_drafts_are_invisible_to_offices(admin, make_user, make_session):
    make_session(starts_in=timedelta(days=40))
    office = make_user("municipal_admin", "131016")
    with pytest.raises(NotAllowed):
        services.create_plan(office, 2030)
    plan = services.create_plan(admin, fiscal_year_of(utcnow() + timedelta(days=40)), survey_unit="session")
    with pytest.raises(NotFound):
        services.visible_plan_or_404(office, plan.id)
    with pytest.raises(InvalidInput):
        services.create_plan(admin, plan.fiscal_year)  # one plan per year
    with pytest.raises(InvalidInput):
        services.publish_plan(admin, plan, utcnow() - timedelta(minutes=1))
    deadline = utcnow() + timedelta(days=1)
    services.publish_plan(admin, plan, deadline)
    services.publish_plan(admin, plan, deadline)  # the same, sent again: recorded once
    assert services.visible_plan_or_404(office, plan.id) is plan
    from sqlalchemy import func, select

    from lms.audit.models import AuditLog

    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "plan.publish", AuditLog.target_id == str(plan.id))) == 1


def test_answers_are_idempotent_and_checked(world, make_user):
    plan, session, other = world
    office = make_user("municipal_admin", "131016")
    mid = office.municipality_id
    assert services.answer_survey(office, plan, mid, {session.id: Answer(5, 2, "新任職員")}) == 1
    assert services.answer_survey(office, plan, mid, {session.id: Answer(5, 2, "新任職員")}) == 0  # same again
    assert services.answer_survey(office, plan, mid, {session.id: Answer(6, 2, "新任職員")}) == 1
    assert services.demands_of(plan, mid)[session.id].requested == 6
    for bad in ({session.id: Answer(-1)}, {session.id: Answer(1, 9)}, {999999: Answer(1)}):
        with pytest.raises(InvalidInput):
            services.answer_survey(office, plan, mid, bad)
    assert services.demands_of(plan, mid)[session.id].requested == 6  # nothing lost
    per_item, per_municipality = services.survey_totals(plan)
    assert [(d.item.id, d.requested, d.municipalities) for d in per_item] == [(session.id, 6, 1), (other.id, 0, 0)]
    assert {m.code: n for m, n in per_municipality}["131016"] == 1


def test_the_survey_closes_at_its_deadline(world, make_user):
    plan, session, _other = world
    office = make_user("municipal_admin", "131016")
    plan.survey_deadline = utcnow() - timedelta(seconds=1)
    with pytest.raises(InvalidInput):
        services.answer_survey(office, plan, office.municipality_id, {session.id: Answer(3)})


def test_allocation_explains_itself_and_is_published_as_quotas(world, admin, make_user):
    plan, session, _other = world
    answers = {"131016": 12, "131024": 8, "131032": 5, "131041": 1}
    for code, n in answers.items():
        office = make_user("municipal_admin", code)
        services.answer_survey(office, plan, office.municipality_id, {session.id: Answer(n)})
    assert services.run_allocation(admin, plan) == 2
    rows = {r.municipality.code: r for r in services.allocations_of(plan, session_id=session.id)}
    # 20 seats: guarantee 1 each, 16 over lacking 11+7+4+0 → 8, 5.09, 2.9, 0 → 8, 5, 2 (+1), 0.
    assert {c: r.seats for c, r in rows.items()} == {"131016": 9, "131024": 6, "131032": 4, "131041": 1}
    assert rows["131032"].remainder_bonus == 1 and rows["131032"].share_display == "2.9"
    # Adjust by hand with a reason, within capacity.
    with pytest.raises(InvalidInput):
        services.adjust_allocation(admin, plan, rows["131041"].id, 2, "")
    with pytest.raises(InvalidInput):
        services.adjust_allocation(admin, plan, rows["131041"].id, 2, "新任が多い")  # 21 > 20
    services.adjust_allocation(admin, plan, rows["131016"].id, 8, "他区へ1席")
    services.adjust_allocation(admin, plan, rows["131041"].id, 2, "新任が多い")
    db.session.commit()
    from lms.common.database import run_in_transaction

    run_in_transaction(services.publish_allocation, admin, plan, session.id)
    quotas = {q.municipality.code: q.seats for q in db.session.scalars(
        db.select(SessionQuota).where(SessionQuota.session_id == session.id))}
    assert quotas == {"131016": 8, "131024": 6, "131032": 4, "131041": 2}
    assert all(r.published_at is not None for r in services.allocations_of(plan, session_id=session.id))


def test_publishing_again_keeps_the_seats_approved_exchanges_moved(world, admin, make_user):
    """A row adjusted after an exchange, then the session published again: the allocation is
    the start, and the approved offer and ask move their seats once more (they were wiped:
    the office given seats lost them without a word)."""
    from lms.common.database import run_in_transaction
    from lms.planning.models import EXCHANGE_ASK, EXCHANGE_OFFER

    plan, session, _other = world
    chiyoda, chuo, minato = (make_user("municipal_admin", code) for code in ("131016", "131024", "131032"))
    services.answer_survey(chiyoda, plan, chiyoda.municipality_id, {session.id: Answer(8)})
    services.answer_survey(chuo, plan, chuo.municipality_id, {session.id: Answer(4)})
    services.run_allocation(admin, plan)
    db.session.commit()
    run_in_transaction(services.publish_allocation, admin, plan, session.id)

    def quotas():
        db.session.expire_all()
        return {q.municipality.code: q.seats for q in db.session.scalars(
            db.select(SessionQuota).where(SessionQuota.session_id == session.id))}

    first = quotas()
    offer = services.request_exchange(chiyoda, plan, session.id, chiyoda.municipality_id, kind=EXCHANGE_OFFER,
                                      seats=2, to_municipality_id=minato.municipality_id, reason="新任が少ない")
    ask = services.request_exchange(chuo, plan, session.id, chuo.municipality_id, kind=EXCHANGE_ASK, seats=1,
                                    reason="異動者が多い")
    db.session.commit()
    run_in_transaction(services.decide_exchange, admin, plan, offer.id, approve=True)
    run_in_transaction(services.decide_exchange, admin, plan, ask.id, approve=True)
    assert quotas() == {"131016": first["131016"] - 2, "131024": first["131024"] + 1, "131032": 2}
    row = next(r for r in services.allocations_of(plan, session_id=session.id) if r.municipality.code == "131016")
    services.adjust_allocation(admin, plan, row.id, first["131016"] - 1, "研修所の都合")
    db.session.commit()
    run_in_transaction(services.publish_allocation, admin, plan, session.id)
    assert quotas() == {"131016": first["131016"] - 3, "131024": first["131024"] + 1, "131032": 2}


def test_publishing_never_drops_a_confirmed_nominee(world, admin, make_user, make_staff):
    """A quota below the people a municipality already has confirmed is refused, and
    nothing changes."""
    plan, session, _other = world
    office = make_user("municipal_admin", "131016")
    services.answer_survey(office, plan, office.municipality_id, {session.id: Answer(2)})
    services.run_allocation(admin, plan)
    db.session.commit()
    quota = SessionQuota(session_id=session.id, municipality_id=office.municipality_id, seats=3, confirmed_count=3)
    db.session.add(quota)
    db.session.commit()
    from lms.common.database import run_in_transaction

    with pytest.raises(InvalidInput):
        run_in_transaction(services.publish_allocation, admin, plan, session.id)
    db.session.refresh(quota)
    assert quota.seats == 3
    assert db.session.scalar(db.select(db.func.count()).select_from(PlanAllocation)
                             .where(PlanAllocation.published_at.is_not(None))) == 0


def test_rerunning_replaces_unpublished_adjustments(world, admin, make_user):
    plan, session, _other = world
    office = make_user("municipal_admin", "131016")
    services.answer_survey(office, plan, office.municipality_id, {session.id: Answer(4)})
    services.run_allocation(admin, plan, [session.id])
    row = services.allocations_of(plan, session_id=session.id)[0]
    services.adjust_allocation(admin, plan, row.id, 3, "調整")
    services.adjust_allocation(admin, plan, row.id, 3, "調整")  # the same, sent again: recorded once
    from sqlalchemy import func, select

    from lms.audit.models import AuditLog

    assert db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "plan.adjust", AuditLog.target_id == str(row.id))) == 1
    services.run_allocation(admin, plan, [session.id])
    rows = services.allocations_of(plan, session_id=session.id)
    assert [(r.seats, r.adjusted_seats) for r in rows] == [(4, None)]
    with pytest.raises(InvalidInput):
        services.run_allocation(admin, plan, [999999])
    assert factories.municipality("131016").id == rows[0].municipality_id


def test_offices_are_told_when_the_survey_opens_reminded_once_a_day_and_told_their_quota(admin, make_user,
                                                                                          make_session):
    from sqlalchemy import select

    from lms.common.database import run_in_transaction
    from lms.notifications.models import OutboxMail

    session = make_session(starts_in=timedelta(days=40), capacity=10)
    chiyoda = make_user("municipal_admin", "131016", email="kenshu@city.chiyoda.example.lg.jp")
    minato = make_user("municipal_admin", "131032", email="kenshu@city.minato.example.lg.jp")
    make_user("learner", "131016", email="learner@city.chiyoda.example.lg.jp")
    plan = services.create_plan(admin, fiscal_year_of(session.starts_at), survey_unit="session")
    services.publish_plan(admin, plan, utcnow() + timedelta(days=7))
    db.session.commit()

    def mails(to):
        return db.session.scalars(select(OutboxMail).where(OutboxMail.to_address == to).order_by(OutboxMail.id)).all()

    opened = mails(chiyoda.email)
    assert len(opened) == 1 and "予定調査" in opened[0].subject and f"/plans/{plan.id}/survey" in opened[0].body_text
    assert mails("learner@city.chiyoda.example.lg.jp") == []  # offices only
    # The deadline moved (earlier, here): the offices are told that, not the plan announced again.
    assert services.publish_plan(admin, plan, utcnow() + timedelta(days=5)) is False
    db.session.commit()
    moved = mails(chiyoda.email)[-1]
    assert len(mails(chiyoda.email)) == 2 and "回答期限が変わりました" in moved.subject and "公開しました" not in moved.body_text
    services.answer_survey(chiyoda, plan, chiyoda.municipality_id, {session.id: Answer(4)})
    assert services.remind_unanswered(admin, plan) >= 1
    services.remind_unanswered(admin, plan)  # twice the same day: one mail
    db.session.commit()
    assert [m.subject.startswith("【催促】") for m in mails(minato.email)] == [False, False, True]
    assert len(mails(chiyoda.email)) == 2  # answered: not reminded
    services.run_allocation(admin, plan)
    db.session.commit()
    run_in_transaction(services.publish_allocation, admin, plan, session.id)
    told = mails(chiyoda.email)[-1]
    assert told.subject.startswith("【割当】") and "割当人数：4人" in told.body_text
    # Published again with nothing changed (a second click): no second notice (a QA pass got
    # six for six clicks). An adjusted number is told again.
    before = len(mails(chiyoda.email))
    run_in_transaction(services.publish_allocation, admin, plan, session.id)
    assert len(mails(chiyoda.email)) == before
    [row] = [r for r in services.allocations_of(plan, session_id=session.id) if r.municipality_id == chiyoda.municipality_id]
    services.adjust_allocation(admin, plan, row.id, 3, "会場の都合")
    db.session.commit()
    run_in_transaction(services.publish_allocation, admin, plan, session.id)
    assert len(mails(chiyoda.email)) == before + 1 and "割当人数：3人" in mails(chiyoda.email)[-1].body_text


def test_held_seats_are_released_at_the_deadline_and_the_waitlist_takes_them(admin, make_user, make_session):
    from sqlalchemy import select

    from lms.common.database import run_in_transaction
    from lms.courses.models import SessionQuota
    from lms.enrollment import services as enrollment
    from lms.enrollment.models import CONFIRMED, WAITLISTED, Enrollment
    from lms.notifications.models import OutboxMail
    from lms.planning.tasks import release_due_quotas

    session = make_session(starts_in=timedelta(days=10), capacity=3, quotas={"131016": 2})
    office = make_user("municipal_admin", "131016", email="kenshu@chiyoda.example.lg.jp")
    waiting = []
    for _ in range(3):
        user = make_user("learner", "131032")
        waiting.append(enrollment.enroll(session.id, user.staff_member.id, user))
    assert [e.status for e in waiting] == [CONFIRMED, WAITLISTED, WAITLISTED]
    # The office lets its seats go early (nobody of 千代田区 confirmed: both go); the two in
    # line take them.
    freed = run_in_transaction(services.release_early, office, session.id, office.municipality_id)
    assert freed == 2
    db.session.expire_all()
    assert [db.session.get(Enrollment, e.id).status for e in waiting] == [CONFIRMED, CONFIRMED, CONFIRMED]
    with pytest.raises(InvalidInput):
        run_in_transaction(services.release_early, office, session.id, office.municipality_id)  # nothing left
    assert "解放" in db.session.scalar(select(OutboxMail.subject).where(OutboxMail.to_address == office.email))
    # Another session past its deadline: the worker releases its quota.
    other = make_session(starts_in=timedelta(days=2), capacity=1, quotas={"131016": 1})
    late = make_user("learner", "131024")
    queued = enrollment.enroll(other.id, late.staff_member.id, late)
    assert queued.status == WAITLISTED
    db.session.execute(db.update(type(other)).where(type(other).id == other.id)
                       .values(enroll_closes_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    assert other.id in services.sessions_due_for_release()
    assert release_due_quotas() == 1
    db.session.expire_all()
    assert db.session.get(Enrollment, queued.id).status == CONFIRMED
    assert db.session.scalar(select(SessionQuota.id).where(SessionQuota.session_id == other.id)) is None
    assert release_due_quotas() == 0  # nothing held any more


def test_offices_offer_and_ask_for_seats_and_the_platform_admin_decides(world, admin, make_user):
    from sqlalchemy import select

    from lms.common.database import run_in_transaction
    from lms.courses.models import SessionQuota
    from lms.planning.models import EXCHANGE_APPROVED, EXCHANGE_ASK, EXCHANGE_OFFER, EXCHANGE_REJECTED

    plan, session, _other = world
    chiyoda = make_user("municipal_admin", "131016")
    chuo = make_user("municipal_admin", "131024")
    db.session.add_all([SessionQuota(session_id=session.id, municipality_id=chiyoda.municipality_id, seats=6),
                        SessionQuota(session_id=session.id, municipality_id=chuo.municipality_id, seats=4)])
    db.session.commit()

    def quotas():
        db.session.expire_all()
        return {q.municipality.code: q.seats for q in db.session.scalars(
            select(SessionQuota).where(SessionQuota.session_id == session.id))}

    with pytest.raises(InvalidInput):  # more than its unused seats
        services.request_exchange(chiyoda, plan, session.id, chiyoda.municipality_id, kind=EXCHANGE_OFFER, seats=7,
                                  to_municipality_id=chuo.municipality_id)
    offer = services.request_exchange(chiyoda, plan, session.id, chiyoda.municipality_id, kind=EXCHANGE_OFFER,
                                      seats=2, to_municipality_id=chuo.municipality_id, reason="新任が少ない")
    ask = services.request_exchange(chuo, plan, session.id, chuo.municipality_id, kind=EXCHANGE_ASK, seats=3,
                                    reason="異動者が多い")
    db.session.commit()
    assert quotas() == {"131016": 6, "131024": 4}  # nothing changes before a decision
    run_in_transaction(services.decide_exchange, admin, plan, offer.id, approve=True)
    assert quotas() == {"131016": 4, "131024": 6}
    with pytest.raises(InvalidInput):  # 10 of 20 seats held + 3 is fine, but a rejection needs a reason
        run_in_transaction(services.decide_exchange, admin, plan, ask.id, approve=False)
    # ... which a zero-width space or a full-width space alone is not, and which fits its column
    # (a crafted post of 501 characters was a database error on PostgreSQL).
    for blank, words in (("\u200b", "見送る理由を入力してください"), ("\u3000\x01", "見送る理由を入力してください"),
                         ("長" * 501, "500文字以内")):
        with pytest.raises(InvalidInput, match=words):
            run_in_transaction(services.decide_exchange, admin, plan, ask.id, approve=False, reason=blank)
        db.session.rollback()
    run_in_transaction(services.decide_exchange, admin, plan, ask.id, approve=True)
    assert quotas() == {"131016": 4, "131024": 9}
    db.session.expire_all()
    assert [db.session.get(type(offer), x.id).status for x in (offer, ask)] == [EXCHANGE_APPROVED, EXCHANGE_APPROVED]
    # An ask beyond the capacity is refused by the session's own checks, and stays pending.
    too_many = services.request_exchange(chuo, plan, session.id, chuo.municipality_id, kind=EXCHANGE_ASK, seats=8,
                                         reason="さらに")
    db.session.commit()
    with pytest.raises(InvalidInput):
        run_in_transaction(services.decide_exchange, admin, plan, too_many.id, approve=True)
    run_in_transaction(services.decide_exchange, admin, plan, too_many.id, approve=False, reason="定員のため")
    db.session.expire_all()
    assert db.session.get(type(offer), too_many.id).status == EXCHANGE_REJECTED
    assert quotas() == {"131016": 4, "131024": 9}
    with pytest.raises(NotAllowed):
        run_in_transaction(services.decide_exchange, chuo, plan, too_many.id, approve=True)


def test_offers_approved_one_after_the_other_never_give_away_confirmed_seats(world, admin, make_user):
    """千代田区 holds 10 seats, 3 confirmed: offers of 6 and then 7 seats are each within its 7
    unused seats, but once the first is approved the second would give away its confirmed
    people's seats (and drop its quota row): it is refused and stays pending."""
    from sqlalchemy import select

    from lms.common.database import run_in_transaction
    from lms.planning.models import EXCHANGE_APPROVED, EXCHANGE_OFFER, EXCHANGE_PENDING

    plan, session, _other = world
    chiyoda = make_user("municipal_admin", "131016")
    hachioji = make_user("municipal_admin", "132012")
    db.session.add(SessionQuota(session_id=session.id, municipality_id=chiyoda.municipality_id, seats=10,
                                confirmed_count=3))
    session.confirmed_count = 3
    db.session.commit()
    first, second = (services.request_exchange(chiyoda, plan, session.id, chiyoda.municipality_id,
                                               kind=EXCHANGE_OFFER, seats=n, to_municipality_id=hachioji.municipality_id,
                                               reason="余剰") for n in (6, 7))
    db.session.commit()
    run_in_transaction(services.decide_exchange, admin, plan, first.id, approve=True)
    with pytest.raises(InvalidInput, match="千代田区 が譲れるのは未使用の割当（1席）まで"):
        run_in_transaction(services.decide_exchange, admin, plan, second.id, approve=True)
    db.session.expire_all()
    assert {q.municipality.code: (q.seats, q.confirmed_count) for q in db.session.scalars(
        select(SessionQuota).where(SessionQuota.session_id == session.id))} == {"131016": (4, 3), "132012": (6, 0)}
    assert [db.session.get(type(first), x.id).status for x in (first, second)] == [EXCHANGE_APPROVED,
                                                                                   EXCHANGE_PENDING]


def test_at_the_deadline_freed_seats_go_first_to_municipalities_whose_request_was_not_met(admin, make_user,
                                                                                           make_session):
    """千代田区 asked 3 and holds 3 but fills 1; 中央区 asked 4, got 1 and has 3 waiting; 港区
    (no request) has one person waiting who arrived before them. At the deadline 千代田区's
    2 unused seats go to 中央区's waiting staff first; 港区's person keeps waiting."""
    from lms.enrollment import services as enrollment
    from lms.enrollment.models import CONFIRMED, WAITLISTED, Enrollment

    session = make_session(starts_in=timedelta(days=10), capacity=4, quotas={"131016": 3, "131024": 1})
    plan = services.create_plan(admin, fiscal_year_of(session.starts_at), survey_unit="session")
    services.publish_plan(admin, plan, utcnow() + timedelta(days=3))
    for code, n in (("131016", 3), ("131024", 4)):
        office = make_user("municipal_admin", code)
        services.answer_survey(office, plan, office.municipality_id, {session.id: Answer(n)})
    db.session.commit()

    def join(code):
        user = make_user("learner", code)
        return enrollment.enroll(session.id, user.staff_member.id, user)

    chiyoda = join("131016")
    chuo = [join("131024") for _ in range(4)]
    minato = join("131032")
    assert chiyoda.status == CONFIRMED and [e.status for e in chuo] == [CONFIRMED, WAITLISTED, WAITLISTED, WAITLISTED]
    assert minato.status == WAITLISTED
    # 港区's person must have arrived before 中央区's last two to make the point: re-queue them.
    db.session.execute(db.update(Enrollment).where(Enrollment.id == minato.id).values(arrival_seq=0))
    db.session.commit()
    from lms.common.database import run_in_transaction

    run_in_transaction(services.release_at_deadline, session.id, utcnow() + timedelta(days=30))
    db.session.expire_all()
    statuses = [db.session.get(Enrollment, e.id).status for e in chuo]
    assert statuses == [CONFIRMED, CONFIRMED, CONFIRMED, WAITLISTED]
    assert db.session.get(Enrollment, minato.id).status == WAITLISTED
    from lms.courses.models import SessionQuota

    assert db.session.scalar(db.select(SessionQuota.id).where(SessionQuota.session_id == session.id)) is None


# ---------------------------------------------------------------- a plan surveyed per course


@pytest.fixture
def course_world(admin, make_session):
    """A plan surveyed per course (the default): one course of two sessions (20 and 10
    seats) and another course of one session."""
    first = make_session(starts_in=timedelta(days=40), capacity=20)
    second = make_session(first.course, starts_in=timedelta(days=60), capacity=10)
    single = make_session(starts_in=timedelta(days=45), capacity=8)
    plan = services.create_plan(admin, fiscal_year_of(first.starts_at))
    services.publish_plan(admin, plan, utcnow() + timedelta(days=7))
    db.session.commit()
    return plan, first, second, single


def test_a_plan_is_surveyed_per_course_unless_it_says_per_session(course_world, admin, make_user):
    plan, first, second, single = course_world
    assert plan.survey_unit == "course"
    items = services.survey_items(plan)
    assert [(i.id, [s.id for s in i.sessions], i.capacity) for i in items] == [
        (first.course_id, [first.id, second.id], 30), (single.course_id, [single.id], 8)]
    office = make_user("municipal_admin", "131016")
    mid = office.municipality_id
    assert services.answer_survey(office, plan, mid, {first.course_id: Answer(12, 1, "新任")}) == 1
    assert services.answer_survey(office, plan, mid, {first.course_id: Answer(12, 1, "新任")}) == 0  # idempotent
    with pytest.raises(InvalidInput, match="この計画にない研修"):
        services.answer_survey(office, plan, mid, {999999: Answer(3)})
    assert services.demands_of(plan, mid)[first.course_id].requested == 12
    per_item, per_municipality = services.survey_totals(plan)
    assert [(d.item.id, d.requested, d.municipalities) for d in per_item] == [
        (first.course_id, 12, 1), (single.course_id, 0, 0)]
    assert {m.code: n for m, n in per_municipality}["131016"] == 1
    with pytest.raises(InvalidInput):
        services.create_plan(admin, 2031, survey_unit="month")


def test_a_course_allocation_is_divided_among_its_sessions_and_explained(course_world, admin, make_user):
    plan, first, second, single = course_world
    for code, n in {"131016": 30, "131024": 10, "131032": 2}.items():
        office = make_user("municipal_admin", code, email=f"kenshu-{code}@example.lg.jp")
        services.answer_survey(office, plan, office.municipality_id, {first.course_id: Answer(n)})
    # One session's id allocates its whole course.
    assert services.run_allocation(admin, plan, [second.id]) == 2
    rows = services.allocations_of(plan)
    by = {(r.session_id, r.municipality.code): r for r in rows}
    # 30 seats for the course: guarantee 1 each, 27 over lacking 29 + 9 + 1 = 39 → 20.08, 6.23,
    # 0.69 → 20, 6, 0, and the last seat to the largest remainder (0.69 of 港区): 21, 7, 2.
    course_seats = {code: by[(first.id, code)].course_seats for code in ("131016", "131024", "131032")}
    assert course_seats == {"131016": 21, "131024": 7, "131032": 2}
    for code, total in course_seats.items():
        assert by[(first.id, code)].seats + by[(second.id, code)].seats == total  # every seat placed
        assert by[(first.id, code)].requested == {"131016": 30, "131024": 10, "131032": 2}[code]
    assert sum(r.seats for r in rows if r.session_id == first.id) == 20  # each within its capacity
    assert sum(r.seats for r in rows if r.session_id == second.id) == 10
    assert not services.allocations_of(plan, session_id=single.id)  # the other course untouched
    # Adjusting and publishing stay per session.
    row = by[(second.id, "131032")]
    services.adjust_allocation(admin, plan, row.id, 0, "第1回にまとめる")
    db.session.commit()
    from lms.common.database import run_in_transaction

    run_in_transaction(services.publish_allocation, admin, plan, second.id)
    quotas = {q.municipality.code: q.seats for q in db.session.scalars(
        db.select(SessionQuota).where(SessionQuota.session_id == second.id))}
    assert quotas == {code: by[(second.id, code)].final_seats for code in ("131016", "131024")}
    from lms.notifications.models import OutboxMail

    told = db.session.scalars(db.select(OutboxMail).where(OutboxMail.to_address == "kenshu-131016@example.lg.jp",
                                                          OutboxMail.subject.like("【割当】%"))).one()
    assert "割当（研修全体）：21人" in told.body_text and f"この回の割当人数：{quotas['131016']}人" in told.body_text


def test_at_the_deadline_a_course_request_not_met_claims_freed_seats_first(admin, make_user, make_session):
    """Per course: 中央区 asked 3 for the course and has 1 confirmed in its first session; in
    the second, 千代田区 holds 2 seats and fills none, and 中央区 has 2 waiting. At the
    second session's deadline 中央区 still lacks 2 for the course: its waiting staff take the
    freed seats before 港区's person who arrived first."""
    from lms.common.database import run_in_transaction
    from lms.enrollment import services as enrollment
    from lms.enrollment.models import CONFIRMED, WAITLISTED, Enrollment

    first = make_session(starts_in=timedelta(days=20), capacity=5)
    second = make_session(first.course, starts_in=timedelta(days=10), capacity=2, quotas={"131016": 2})
    plan = services.create_plan(admin, fiscal_year_of(second.starts_at))
    services.publish_plan(admin, plan, utcnow() + timedelta(days=3))
    office = make_user("municipal_admin", "131024")
    services.answer_survey(office, plan, office.municipality_id, {first.course_id: Answer(3)})
    db.session.commit()

    def join(session, code):
        user = make_user("learner", code)
        return enrollment.enroll(session.id, user.staff_member.id, user)

    assert join(first, "131024").status == CONFIRMED
    minato = join(second, "131032")
    chuo = [join(second, "131024") for _ in range(3)]
    assert minato.status == WAITLISTED and all(e.status == WAITLISTED for e in chuo)  # the 2 seats are held
    run_in_transaction(services.release_at_deadline, second.id, utcnow() + timedelta(days=30))
    db.session.expire_all()
    assert [db.session.get(Enrollment, e.id).status for e in chuo] == [CONFIRMED, CONFIRMED, WAITLISTED]
    assert db.session.get(Enrollment, minato.id).status == WAITLISTED


def test_requests_approved_at_once_each_move_their_seats_and_one_decided_twice_counts_once(
        world, admin, make_user, app, live_server):
    """Three asks of one session approved at the same instant (three tabs of the platform
    admin) and one of them approved again meanwhile: each moves its seats once, under the
    session's lock (before, the quotas were read unlocked: only one of them stuck)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests
    from sqlalchemy import func, select

    from lms.audit.models import AuditLog
    from lms.courses.models import SessionQuota
    from lms.planning.models import EXCHANGE_APPROVED, EXCHANGE_ASK

    plan, session, _other = world
    offices = [make_user("municipal_admin", code) for code in ("131016", "131024", "131032")]
    db.session.add_all(SessionQuota(session_id=session.id, municipality_id=o.municipality_id, seats=2) for o in offices)
    db.session.commit()
    asks = [services.request_exchange(o, plan, session.id, o.municipality_id, kind=EXCHANGE_ASK, seats=1 + n,
                                      reason="異動者が多い") for n, o in enumerate(offices)]
    db.session.commit()
    ask_ids, plan_id = [a.id for a in asks], plan.id
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={factories.session_cookie(app, admin)}"
    posts = ask_ids + [ask_ids[0]]
    start = threading.Barrier(len(posts))

    def decide(exchange_id):
        start.wait(10)
        return requests.post(f"{live_server.url}/plans/{plan_id}/exchanges/{exchange_id}/decide",
                             headers={"Cookie": cookie}, data={"decision": "approve"}, allow_redirects=False,
                             timeout=60).status_code

    with ThreadPoolExecutor(len(posts)) as pool:
        assert set(pool.map(decide, posts)) == {302}
    db.session.rollback()  # (a fresh read: SQLite's reader keeps the snapshot it began with)
    seats = {q.municipality_id: q.seats for q in db.session.scalars(
        select(SessionQuota).where(SessionQuota.session_id == session.id))}
    assert seats == {o.municipality_id: 2 + 1 + n for n, o in enumerate(offices)}
    assert {db.session.get(type(asks[0]), i).status for i in ask_ids} == {EXCHANGE_APPROVED}
    decided = db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == "plan.exchange_decide", AuditLog.target_id == str(ask_ids[0])))
    assert decided == 1


def test_seats_go_only_to_sessions_to_come_and_a_series_is_its_first_part(course_world, admin, make_user,
                                                                          make_session):
    """A session that has started takes no seats; a 連続講座's later part is not a session of its
    own in the plan (its seats are its first part's), so the course's capacity counts it once."""
    plan, first, second, _single = course_world
    past = make_session(first.course, starts_in=timedelta(hours=-2), capacity=50)
    if fiscal_year_of(past.starts_at) != plan.fiscal_year:  # (on 1 April: the plan's year has not begun)
        pytest.skip("the plan's fiscal year has not begun")
    part = make_session(first.course, starts_in=timedelta(days=41), capacity=20)
    first.series_id = part.series_id = first.id
    db.session.commit()
    item = next(i for i in services.survey_items(plan) if i.id == first.course_id)
    assert [s.id for s in item.sessions] == [past.id, first.id, second.id]  # the later part is the first's
    office = make_user("municipal_admin", "131016")
    services.answer_survey(office, plan, office.municipality_id, {first.course_id: Answer(40)})
    db.session.commit()
    services.run_allocation(admin, plan)
    rows = services.allocations_of(plan)
    assert {r.session_id for r in rows} == {first.id, second.id}  # not the past one, not the later part
    assert sum(r.seats for r in rows) == 30  # the seats of the sessions to come (20 + 10), all placed
    with pytest.raises(InvalidInput, match="開始済みの研修回"):
        services.run_allocation(admin, plan, [past.id])
