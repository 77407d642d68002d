"""Course and session rules (both databases)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lms.audit.models import AuditLog
from lms.common import signals
from lms.common.database import run_in_transaction
from lms.common.errors import InvalidInput, NotAllowed
from lms.common.timeutil import as_utc, utcnow
from lms.courses import services
from lms.courses.models import CANCELLED, DRAFT, HYBRID, ONSITE, PUBLISHED, TEAMS, Category, Course, TrainingSession
from lms.courses.search import normalise_for_search
from lms.enrollment import services as enrollment
from lms.enrollment.models import CANCELLED as ENROLLMENT_CANCELLED
from lms.enrollment.models import CONFIRMED, WAITLISTED, Enrollment
from lms.notifications.models import OutboxMail
from tests import factories


def _actions(action: str) -> list[AuditLog]:
    return list(factories.db.session.scalars(select(AuditLog).where(AuditLog.action == action)))


def _session_input(start=None, **kw) -> services.SessionInput:
    start = start or (utcnow().replace(microsecond=0) + timedelta(days=20))
    values = {
        "starts_at": start,
        "ends_at": start + timedelta(hours=2),
        "delivery": TEAMS,
        "join_url": "https://teams.microsoft.com/l/meetup-join/abc",
        "capacity": 10,
        "enroll_opens_at": utcnow() - timedelta(days=1),
        "enroll_closes_at": start - timedelta(days=1),
        "cancel_deadline": start - timedelta(days=2),
    }
    values.update(kw)
    return services.SessionInput(**values)


def _data(session: TrainingSession, **kw) -> services.SessionInput:
    values = {
        "title": session.title,
        "starts_at": as_utc(session.starts_at),
        "ends_at": as_utc(session.ends_at),
        "delivery": session.delivery,
        "location": session.location,
        "join_url": session.join_url,
        "capacity": session.capacity,
        "enroll_opens_at": as_utc(session.enroll_opens_at),
        "enroll_closes_at": as_utc(session.enroll_closes_at),
        "cancel_deadline": as_utc(session.cancel_deadline),
        "quotas": {q.municipality_id: q.seats for q in session.quotas},
    }
    values.update(kw)
    return services.SessionInput(**values)


def _enroll(session, code="131016"):
    user = factories.make_user("learner", code)
    return enrollment.enroll(session.id, user.staff_member.id, user)


@pytest.fixture
def trainer(db):
    return factories.make_user("trainer")


@pytest.fixture
def owned_session(trainer):
    course = factories.make_course(owner_id=trainer.id)
    return factories.make_session(course, capacity=2)


# ---------------------------------------------------------------- courses


def test_create_course_is_a_draft_owned_by_its_trainer_with_search_text(db, trainer):
    category = Category(name="Teams")
    db.session.add(category)
    db.session.flush()
    course = services.create_course(trainer, services.CourseInput(
        title="Ｔｅａｍｓ操作研修", summary="基本操作", description_md="**会議**の開き方", category_id=category.id,
    ))
    db.session.commit()
    assert course.status == DRAFT
    assert course.owner_id == trainer.id
    assert course.search_text == normalise_for_search("Ｔｅａｍｓ操作研修\n基本操作\n会議の開き方\nTeams")  # (the words, not the marks)
    assert "teams操作研修" in course.search_text
    assert course.attendance_threshold_pct == 75 and course.viewing_threshold_pct == 90
    [entry] = _actions("course.create")
    assert entry.target_id == str(course.id) and entry.actor_id == trainer.id


def test_update_course_keeps_search_text_and_eligibility_current(db, trainer):
    course = services.create_course(trainer, services.CourseInput(title="旧名"))
    shinjuku = factories.municipality("131041")
    changes = services.update_course(trainer, course, services.CourseInput(
        title="Excel 活用", eligible_all=False, municipality_ids=[shinjuku.id],
    ))
    db.session.commit()
    assert set(changes) >= {"title", "eligible_all", "municipality_ids"}
    assert "excel 活用" in course.search_text and "旧名" not in course.search_text
    assert course.eligible_municipality_ids == {shinjuku.id}
    assert course.is_open_to(shinjuku.id) and not course.is_open_to(factories.municipality("131016").id)
    assert _actions("course.update")[0].details["changes"]["title"] == ["旧名", "Excel 活用"]


@pytest.mark.parametrize(
    ("kw", "field", "message"),
    [
        ({"title": "  "}, "title", "研修名を入力してください。"),
        ({"eligible_all": False, "municipality_ids": []}, "municipality_ids", "対象の自治体を1つ以上"),
        ({"attendance_threshold_pct": 0}, "attendance_threshold_pct", "1から100"),
        ({"viewing_threshold_pct": 101}, "viewing_threshold_pct", "1から100"),
        ({"completion_mode": "magic"}, "completion_mode", "修了条件"),
        ({"category_id": 999999}, "category_id", "分類が見つかりません"),
    ],
)
def test_course_input_is_validated_with_japanese_messages(db, trainer, kw, field, message):
    values = {"title": "研修"}
    values.update(kw)
    with pytest.raises(InvalidInput) as caught:
        services.create_course(trainer, services.CourseInput(**values))
    assert caught.value.context["field"] == field
    assert message in caught.value.message


def test_learners_cannot_create_and_trainers_cannot_manage_others_courses(db, trainer):
    learner = factories.make_user("learner")
    with pytest.raises(NotAllowed):
        services.create_course(learner, services.CourseInput(title="x"))
    other = factories.make_user("trainer")
    course = services.create_course(trainer, services.CourseInput(title="私の研修"))
    assert not services.can_manage_course(other, course)
    with pytest.raises(NotAllowed):
        services.update_course(other, course, services.CourseInput(title="乗っ取り"))
    with pytest.raises(NotAllowed):
        services.publish_course(other, course)
    admin = factories.make_user("platform_admin")
    assert services.can_manage_course(admin, course)
    factories.make_session(course)
    db.session.refresh(course)
    services.publish_course(admin, course)
    assert course.status == PUBLISHED and course.published_at is not None


def test_unpublish_is_refused_while_people_hold_places(db, owned_session, trainer):
    course = owned_session.course
    _enroll(owned_session)
    db.session.refresh(course)
    with pytest.raises(InvalidInput, match="申込者がいるため"):
        services.unpublish_course(trainer, course)
    empty = factories.make_course(owner_id=trainer.id)
    services.unpublish_course(trainer, empty)
    assert empty.status == DRAFT
    assert len(_actions("course.unpublish")) == 1


# ---------------------------------------------------------------- sessions


def test_create_session_stores_utc_quotas_audits_and_signals(db, trainer):
    course = factories.make_course(owner_id=trainer.id)
    seen = []
    receiver = lambda sender, **kw: seen.append((sender, kw))  # noqa: E731
    signals.session_created.connect(receiver)
    try:
        chiyoda = factories.municipality("131016")
        session = services.create_session(trainer, course, _session_input(capacity=10, quotas={chiyoda.id: 4}))
        db.session.commit()
    finally:
        signals.session_created.disconnect(receiver)
    assert [q.seats for q in session.quotas] == [4]
    assert session.revision == 1
    assert seen and seen[0][0] is session and seen[0][1]["actor"] is trainer
    assert _actions("session.create")[0].target_id == str(session.id)


@pytest.mark.parametrize(
    ("kw", "field", "message"),
    [
        ({"ends_at": "start"}, "ends_at", "終了日時は開始日時より後"),
        ({"enroll_closes_at": "after"}, "enroll_closes_at", "申込締切は開始日時より前"),
        ({"enroll_opens_at": "after", "enroll_closes_at": None}, "enroll_opens_at", "申込開始は開始日時より前"),
        ({"cancel_deadline": "after"}, "cancel_deadline", "キャンセル期限は開始日時より前"),
        ({"join_url": "http://example.com/x"}, "join_url", "https://"),
        ({"join_url": "javascript:alert(1)"}, "join_url", "https://"),
        # an https link that is not a Teams meeting: learners follow it from 「Teams 会議に参加する」
        ({"join_url": "https://evil.example.com/phish"}, "join_url", "Teams 会議の参加リンク"),
        ({"join_url": "https://teams.microsoft.com.evil.com/l/meetup-join/x"}, "join_url", "Teams 会議の参加リンク"),
        ({"join_url": "https://evil.com/?https://teams.microsoft.com/"}, "join_url", "Teams 会議の参加リンク"),
        ({"join_url": "https://user@teams.microsoft.com@evil.com/"}, "join_url", "Teams 会議の参加リンク"),
        ({"join_url": "https://teams.microsoft.com@evil.com/l/meetup-join/x"}, "join_url", "Teams 会議の参加リンク"),
        ({"join_url": "https://teams.microsoft.com:8443/l/meetup-join/x"}, "join_url", "Teams 会議の参加リンク"),
        # a browser reads 「\」 as 「/」: the host is evil.example
        ({"join_url": "https://evil.example\\.teams.microsoft.com/l/meetup-join/x"}, "join_url", "Teams 会議の参加リンク"),
        ({"join_url": "https://evil.com\\\\.teams.microsoft.com/x"}, "join_url", "Teams 会議の参加リンク"),
        ({"join_url": "https://evil.com%2e.teams.microsoft.com/x"}, "join_url", "Teams 会議の参加リンク"),
        ({"join_url": "https://evil.com．teams.microsoft.com/x"}, "join_url", "Teams 会議の参加リンク"),
        ({"delivery": ONSITE, "location": ""}, "location", "会場を入力"),
        ({"capacity": 0}, "capacity", "定員は1以上"),
        ({"starts_at": "past", "ends_at": "past_end", "enroll_closes_at": None, "enroll_opens_at": None,
          "cancel_deadline": None}, "starts_at", "開始日時は現在より後"),
        ({"capacity": 5, "quotas": "over"}, "quotas", "割当人数の合計（6人）が定員（5人）を超えています"),
    ],
)
def test_session_input_is_validated_with_japanese_messages(db, trainer, kw, field, message):
    course = factories.make_course(owner_id=trainer.id)
    start = utcnow().replace(microsecond=0) + timedelta(days=10)
    after = start + timedelta(hours=1)
    values = {}
    for key, value in kw.items():
        if value == "start":
            value = start
        elif value == "after":
            value = after
        elif value == "past":
            value = utcnow() - timedelta(hours=2)
        elif value == "past_end":
            value = utcnow() - timedelta(hours=1)
        elif value == "over":
            value = {factories.municipality("131016").id: 3, factories.municipality("131024").id: 3}
        values[key] = value
    with pytest.raises(InvalidInput) as caught:
        services.create_session(trainer, course, _session_input(start, **values))
    assert caught.value.context["field"] == field
    assert message in caught.value.message


@pytest.mark.parametrize("link", [
    "https://teams.microsoft.com/l/meetup-join/19%3ameeting_x%40thread.v2/0?context=%7b%7d",
    "https://teams.cloud.microsoft/l/meetup-join/x",
    "https://gov.teams.microsoft.us/l/meetup-join/x",
    "https://teams.live.com/meet/9312345678901",
    "https://TEAMS.MICROSOFT.COM/l/meetup-join/x",
])
def test_a_teams_meeting_link_is_taken(db, trainer, link):
    course = factories.make_course(owner_id=trainer.id)
    session = services.create_session(trainer, course, _session_input(join_url=link))
    assert session.join_url == link


def test_a_link_stored_before_the_teams_rule_does_not_stop_an_edit_of_the_rest(db, trainer):
    course = factories.make_course(owner_id=trainer.id)
    session = services.create_session(trainer, course, _session_input())
    session.join_url = "https://meet.example.jp/room/1"  # (kept from before the rule)
    db.session.commit()
    start = as_utc(session.starts_at)
    services.update_session(trainer, session.id, _session_input(start, join_url=session.join_url, title="第2回"))
    db.session.commit()
    assert db.session.get(TrainingSession, session.id).title == "第2回"
    # ... but a new link elsewhere is refused
    with pytest.raises(InvalidInput, match="Teams 会議の参加リンク"):
        services.update_session(trainer, session.id, _session_input(start, join_url="https://meet.example.jp/room/2"))


def test_capacity_and_quota_cannot_go_below_confirmed(db, trainer):
    course = factories.make_course(owner_id=trainer.id)
    session = factories.make_session(course, capacity=5, quotas={"131016": 3})
    _enroll(session)
    _enroll(session)
    db.session.expire_all()
    session = db.session.get(TrainingSession, session.id)
    with pytest.raises(InvalidInput, match="確定済みの人数（2人）"):
        run_in_transaction(services.update_session, trainer, session.id, _data(session, capacity=1))
    session = db.session.get(TrainingSession, session.id)
    chiyoda = factories.municipality("131016").id
    with pytest.raises(InvalidInput, match="千代田区 の割当人数は確定済みの人数（2人）"):
        run_in_transaction(services.update_session, trainer, session.id, _data(session, quotas={chiyoda: 1}))
    session = db.session.get(TrainingSession, session.id)
    assert session.capacity == 5 and session.quotas[0].seats == 3


def test_a_new_quota_holds_the_municipalitys_people_confirmed_already(db, trainer):
    """A 割当 added once some of the municipality's people are confirmed (on the shared seats)
    counts them: one below them is refused like for an existing row, and their cancellations
    later move it down (it counted none, and the second cancellation broke its CHECK, shown
    as 「申込が集中」 for ever)."""
    course = factories.make_course(owner_id=trainer.id)
    session = factories.make_session(course, capacity=4)
    first, second = _enroll(session), _enroll(session)
    other = _enroll(session, "131024")  # another municipality's, on the shared seats
    assert {first.status, second.status, other.status} == {CONFIRMED}
    chiyoda = factories.municipality("131016").id
    db.session.expire_all()
    session = db.session.get(TrainingSession, session.id)
    with pytest.raises(InvalidInput, match="千代田区 の割当人数は確定済みの人数（2人）"):
        run_in_transaction(services.update_session, trainer, session.id, _data(session, quotas={chiyoda: 1}))
    session = db.session.get(TrainingSession, session.id)
    assert session.quotas == []
    run_in_transaction(services.update_session, trainer, session.id, _data(session, quotas={chiyoda: 3}))
    session = db.session.get(TrainingSession, session.id)
    assert [(q.seats, q.confirmed_count) for q in session.quotas] == [(3, 2)]
    # The quota's seats come out of what the shared seats' people leave: 4 seats, 1 of them
    # held by 中央区's person, so 千代田区 can hold 3 at most.
    with pytest.raises(InvalidInput, match=r"割当人数の合計（4人）と、割当のない自治体の確定済みの人数（1人）"):
        run_in_transaction(services.update_session, trainer, session.id, _data(session, quotas={chiyoda: 4}))
    session = db.session.get(TrainingSession, session.id)
    for held in (first, second):
        enrollment.cancel_enrollment(held.id, held.staff_member.user)
    db.session.expire_all()
    session = db.session.get(TrainingSession, session.id)
    assert [(q.seats, q.confirmed_count) for q in session.quotas] == [(3, 0)]
    assert db.session.get(Enrollment, second.id).status == ENROLLMENT_CANCELLED


def test_changing_time_notifies_every_active_enrollee_once_per_revision(db, owned_session, trainer):
    first, second, third = (_enroll(owned_session) for _ in range(3))
    assert [first.status, second.status, third.status] == [CONFIRMED, CONFIRMED, WAITLISTED]
    enrollment.cancel_enrollment(second.id, second.staff_member.user)  # promotes the third
    seen = []
    receiver = lambda sender, **kw: seen.append(kw)  # noqa: E731
    signals.session_updated.connect(receiver)
    try:
        session = db.session.get(TrainingSession, owned_session.id)
        new_start = as_utc(session.starts_at) + timedelta(hours=1)
        changes = run_in_transaction(services.update_session, trainer, session.id, _data(
            session, starts_at=new_start, ends_at=new_start + timedelta(hours=2), location="第一会議室",
        ))
    finally:
        signals.session_updated.disconnect(receiver)
    assert {"starts_at", "ends_at", "location"} <= set(changes)
    session = db.session.get(TrainingSession, owned_session.id)
    assert session.revision == 2
    changed = list(db.session.scalars(select(OutboxMail).where(OutboxMail.kind == "changed")))
    # Active enrollees only: the cancelled one hears nothing.
    assert sorted(m.enrollment_id for m in changed) == sorted([first.id, third.id])
    assert all(m.dedupe_key.endswith(":rev2") for m in changed)
    assert seen and seen[0]["actor"] is trainer and "starts_at" in seen[0]["changes"]
    assert _actions("session.update")[0].details["revision"] == 2


def test_capacity_change_alone_sends_no_change_notice_and_fills_from_the_waitlist(db, owned_session, trainer):
    enrollments = [_enroll(owned_session) for _ in range(3)]
    assert enrollments[2].status == WAITLISTED
    session = db.session.get(TrainingSession, owned_session.id)
    changes = run_in_transaction(services.update_session, trainer, session.id, _data(session, capacity=3))
    assert set(changes) == {"capacity"}
    db.session.expire_all()
    session = db.session.get(TrainingSession, owned_session.id)
    assert session.revision == 1 and session.confirmed_count == 3
    assert db.session.get(Enrollment, enrollments[2].id).status == CONFIRMED
    assert db.session.scalars(select(OutboxMail).where(OutboxMail.kind == "changed")).all() == []


def test_unchanged_form_changes_nothing(db, owned_session, trainer):
    session = db.session.get(TrainingSession, owned_session.id)
    assert run_in_transaction(services.update_session, trainer, session.id, _data(session)) == {}
    assert _actions("session.update") == []


def test_other_trainer_cannot_update_or_cancel_a_session(db, owned_session):
    other = factories.make_user("trainer")
    session = db.session.get(TrainingSession, owned_session.id)
    with pytest.raises(NotAllowed):
        run_in_transaction(services.update_session, other, session.id, _data(session, capacity=9))
    with pytest.raises(NotAllowed):
        services.cancel_session(other, db.session.get(TrainingSession, owned_session.id), "x")


def test_cancel_session_cancels_enrollments_notifies_and_signals(db, owned_session, trainer):
    people = [_enroll(owned_session) for _ in range(3)]
    seen = []
    receiver = lambda sender, **kw: seen.append(sender.id)  # noqa: E731
    signals.session_cancelled.connect(receiver)
    try:
        services.cancel_session(trainer, db.session.get(TrainingSession, owned_session.id), "講師の都合")
    finally:
        signals.session_cancelled.disconnect(receiver)
    db.session.expire_all()
    session = db.session.get(TrainingSession, owned_session.id)
    assert session.status == CANCELLED and session.cancelled_at is not None
    assert session.confirmed_count == 0
    assert {db.session.get(Enrollment, e.id).status for e in people} == {ENROLLMENT_CANCELLED}
    kinds = [m.kind for m in db.session.scalars(select(OutboxMail).where(OutboxMail.kind == "cancelled"))]
    assert len(kinds) == 3
    assert seen == [session.id]
    assert _actions("session.cancel")[0].details["reason"] == "講師の都合"
    # Repeating the call is harmless.
    services.cancel_session(trainer, session, "講師の都合")
    assert len(_actions("session.cancel")) == 1


def test_cancel_course_cancels_its_future_sessions_only(db, trainer):
    course = factories.make_course(owner_id=trainer.id)
    future = factories.make_session(course, starts_in=timedelta(days=5))
    later = factories.make_session(course, starts_in=timedelta(days=9), delivery=HYBRID, location="都庁")
    past = factories.make_session(course, starts_in=timedelta(days=-3))
    person = _enroll(future)
    cancelled = services.cancel_course(trainer, db.session.get(Course, course.id), "制度改正のため")
    assert {s.id for s in cancelled} == {future.id, later.id}
    db.session.expire_all()
    assert db.session.get(Course, course.id).status == CANCELLED
    assert db.session.get(TrainingSession, past.id).status != CANCELLED
    assert db.session.get(Enrollment, person.id).status == ENROLLMENT_CANCELLED
    assert len(_actions("course.cancel")) == 1 and len(_actions("session.cancel")) == 2
    with pytest.raises(InvalidInput):
        services.create_session(trainer, db.session.get(Course, course.id), _session_input())


def test_a_series_day_is_not_moved_after_its_make_ups(db, trainer):
    """A 補講 comes after the day it makes up for: moving that day past its first make-up is
    refused (naming the make-up's date) and changes nothing; moving it within the gap is fine."""
    course = factories.make_course(owner_id=trainer.id)
    first = factories.make_session(course, starts_in=timedelta(days=10), title="第1日")
    second = services.create_session(trainer, course, _data(first, title="第2日", starts_at=as_utc(first.starts_at) + timedelta(days=1),
                                     ends_at=as_utc(first.ends_at) + timedelta(days=1)), part_of=first)
    db.session.commit()
    makeup = services.create_session(trainer, course, _data(second, title="第2日の補講", enroll_opens_at=None,
                                     enroll_closes_at=None, cancel_deadline=None,
                                     starts_at=as_utc(second.starts_at) + timedelta(days=7),
                                     ends_at=as_utc(second.ends_at) + timedelta(days=7)), makeup_for=second)
    db.session.commit()
    second_id, makeup_start, before = second.id, as_utc(makeup.starts_at), as_utc(second.starts_at)
    moved = _data(second, starts_at=makeup_start + timedelta(days=2), ends_at=makeup_start + timedelta(days=2, hours=2))
    with pytest.raises(InvalidInput) as refused:
        run_in_transaction(services.update_session, trainer, second_id, moved)
    db.session.rollback()
    assert refused.value.context["field"] == "starts_at"
    assert services.format_datetime_jst(makeup_start) in refused.value.message
    db.session.expire_all()
    assert as_utc(db.session.get(TrainingSession, second_id).starts_at) == before
    # Ending exactly when the make-up starts is still in order.
    second = db.session.get(TrainingSession, second_id)
    fits = _data(second, starts_at=makeup_start - timedelta(hours=2), ends_at=makeup_start)
    assert run_in_transaction(services.update_session, trainer, second_id, fits)
    db.session.commit()
    # A cancelled make-up no longer holds the day back.
    services.cancel_session(trainer, db.session.get(TrainingSession, makeup.id))
    second = db.session.get(TrainingSession, second_id)
    later = _data(second, starts_at=makeup_start + timedelta(days=2), ends_at=makeup_start + timedelta(days=2, hours=2))
    assert run_in_transaction(services.update_session, trainer, second_id, later)
    db.session.commit()


def test_two_saves_from_the_same_version_of_a_session_do_not_both_pass(db, trainer):
    """The version is compared under the session's row lock: of two saves from forms opened
    on the same version, the second finds the first's change and is refused (StaleEdit),
    changing nothing."""
    course = factories.make_course(owner_id=trainer.id)
    session = factories.make_session(course, delivery=ONSITE, location="研修室A")
    version = services.session_edit_version(session)
    assert run_in_transaction(services.update_session, trainer, session.id,
                              _data(session, location="研修室B", expected_version=version))
    session = db.session.get(TrainingSession, session.id)
    assert services.session_edit_version(session) != version
    with pytest.raises(services.StaleEdit):
        run_in_transaction(services.update_session, trainer, session.id,
                           _data(session, title="第1回（改）", location="研修室A", expected_version=version))
    db.session.expire_all()
    stored = db.session.get(TrainingSession, session.id)
    assert (stored.title, stored.location) == ("第1回", "研修室B")
    assert len(_actions("session.update")) == 1
