"""連続講座: a series of dated parts with one capacity and one decision. Learners request its
first part; a confirmed place there is a confirmed place in every part (each with its own
roster, calendar invitation and attendance), and leaving the series leaves every part.
Completion counts the parts attended (a make-up part for the one it replaces) against the
course's share (3/4 by default)."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from lms.attendance import services as attendance
from lms.common.templating import format_datetime_jst
from lms.common.timeutil import TOKYO
from lms.completion.models import COMPLETED, Completion
from lms.courses import services as courses
from lms.enrollment import services
from lms.enrollment.models import CANCELLED, CONFIRMED, SERIES, WAITLISTED, Enrollment
from lms.enrollment.rules import EnrollmentClosed, NotEligible
from lms.notifications.models import OutboxMail
from tests import factories
from tests.enrollment.conftest import assert_counters_consistent


def part_input(first, days: int, capacity: int | None = None, title: str = "") -> courses.SessionInput:
    return courses.SessionInput(starts_at=first.starts_at + timedelta(days=days),
                                ends_at=first.ends_at + timedelta(days=days), title=title, delivery=first.delivery,
                                location="研修室A", capacity=capacity or first.capacity)


def make_series(db, make_course, make_session, trainer, *, capacity=10, parts=3, threshold=75):
    course = make_course(title="新任職員研修（3日間）", owner_id=trainer.id, series_threshold_pct=threshold)
    first = make_session(course, capacity=capacity, title="第1日", delivery="onsite", location="研修室A")
    later = [courses.create_session(trainer, course, part_input(first, n, title=f"第{n + 1}日"), part_of=first)
             for n in range(1, parts)]
    db.session.commit()
    return first, later


def place_in(db, session_id, staff_member_id):
    db.session.expire_all()
    return db.session.scalar(select(Enrollment).where(Enrollment.session_id == session_id,
                                                      Enrollment.staff_member_id == staff_member_id))


@pytest.fixture
def trainer(db, make_user):
    return make_user("trainer", name="研修所 講師")


def test_one_request_gives_a_place_in_every_part_and_one_cancellation_takes_them_all(
        db, make_user, make_course, make_session, trainer):
    first, later = make_series(db, make_course, make_session, trainer)
    learner = make_user("learner", name="新任 太郎")
    enrollment = services.enroll_self(first.id, learner)
    db.session.commit()
    assert enrollment.status == CONFIRMED
    for part in later:
        mirrored = place_in(db, part.id, learner.staff_member.id)
        assert (mirrored.status, mirrored.source) == (CONFIRMED, SERIES)
        assert_counters_consistent(part.id)
        # Each part's calendar invitation goes with its own date.
        mail = db.session.scalar(select(OutboxMail).where(OutboxMail.enrollment_id == mirrored.id))
        assert mail is not None and mail.kind == "confirmed"
    # A part is neither requested nor cancelled on its own.
    other = make_user("learner")
    with pytest.raises(EnrollmentClosed):
        services.enroll_self(later[0].id, other)
    db.session.rollback()
    allowed, why = services.can_cancel(place_in(db, later[0].id, learner.staff_member.id), learner)
    assert not allowed and "最初の回" in why
    services.cancel_enrollment(enrollment.id, learner)
    db.session.commit()
    for part in later:
        assert place_in(db, part.id, learner.staff_member.id).status == CANCELLED
        assert_counters_consistent(part.id)


def test_a_series_taken_again_gives_fresh_places_in_its_later_parts(db, make_user, make_course, make_session, trainer):
    """Cancelled, then requested again: the later parts' places (their rows reused) carry no
    trace of the cancellation (no cancelled_at, canceller, reason or late-cancellation mark)."""
    first, later = make_series(db, make_course, make_session, trainer)
    learner = make_user("learner")
    enrollment = services.enroll_self(first.id, learner)
    db.session.commit()
    services.cancel_enrollment(enrollment.id, learner, reason="都合が悪くなったため")
    db.session.commit()
    assert place_in(db, later[0].id, learner.staff_member.id).cancelled_at is not None
    services.enroll_self(first.id, learner)
    db.session.commit()
    for part in later:
        again = place_in(db, part.id, learner.staff_member.id)
        assert again.status == CONFIRMED
        assert (again.cancelled_at, again.cancelled_by_id, again.late_cancellation, again.reason) == (None, None, False, "")
        assert_counters_consistent(part.id)


def test_leaving_the_series_gives_up_its_make_up_places(db, make_user, make_course, make_session, trainer,
                                                        client, login_as):
    """補講 places are for learners with a place in the series: cancelling the first part takes
    the learner's confirmed make-up (its seat to the make-up's waitlist) and a waitlisted one,
    and the cancel page says so beforehand."""
    first, (second, third) = make_series(db, make_course, make_session, trainer)
    leaver, waiting = make_user("learner"), make_user("learner")
    for learner in (leaver, waiting):
        services.enroll_self(first.id, learner)
    makeup_2 = courses.create_session(trainer, first.course, part_input(second, 7, capacity=1, title="第2日の補講"),
                                      makeup_for=second)
    makeup_3 = courses.create_session(trainer, first.course, part_input(third, 7, capacity=1, title="第3日の補講"),
                                      makeup_for=third)
    db.session.commit()
    assert services.enroll_self(makeup_2.id, leaver).status == CONFIRMED
    assert services.enroll_self(makeup_2.id, waiting).status == WAITLISTED
    assert services.enroll_self(makeup_3.id, waiting).status == CONFIRMED
    assert services.enroll_self(makeup_3.id, leaver).status == WAITLISTED
    db.session.commit()
    held = place_in(db, first.id, leaver.staff_member.id)
    login_as(user=leaver)
    page = client.get(f"/enrollments/{held.id}/cancel").get_data(as_text=True)
    assert "第2日の補講" in page and "第3日の補講" in page and "ほかの日程（2 回）" in page
    services.cancel_enrollment(held.id, leaver)
    db.session.commit()
    assert place_in(db, makeup_2.id, leaver.staff_member.id).status == CANCELLED
    assert place_in(db, makeup_3.id, leaver.staff_member.id).status == CANCELLED
    assert place_in(db, makeup_2.id, waiting.staff_member.id).status == CONFIRMED  # the freed seat
    assert place_in(db, makeup_3.id, waiting.staff_member.id).status == CONFIRMED
    for session in (second, third, makeup_2, makeup_3):
        assert_counters_consistent(session.id)


def test_a_waitlisted_learner_gets_every_part_when_promoted(db, make_user, make_course, make_session, trainer):
    first, later = make_series(db, make_course, make_session, trainer, capacity=1)
    a, b = make_user("learner"), make_user("learner")
    held = services.enroll_self(first.id, a)
    waiting = services.enroll_self(first.id, b)
    db.session.commit()
    assert waiting.status == WAITLISTED
    assert place_in(db, later[0].id, b.staff_member.id) is None  # no place in the parts while waiting
    services.cancel_enrollment(held.id, a)
    db.session.commit()
    assert place_in(db, first.id, b.staff_member.id).status == CONFIRMED
    for part in later:
        assert place_in(db, part.id, b.staff_member.id).status == CONFIRMED
        assert place_in(db, part.id, a.staff_member.id).status == CANCELLED
        assert_counters_consistent(part.id)


def test_a_part_added_later_takes_everyone_already_in(db, make_user, make_course, make_session, trainer):
    course = make_course(owner_id=trainer.id)
    first = make_session(course, capacity=5)
    learners = [make_user("learner") for _ in range(3)]
    for learner in learners:
        services.enroll_self(first.id, learner)
    db.session.commit()
    part = courses.create_session(trainer, course, part_input(first, 2, capacity=99), part_of=first)
    db.session.commit()
    db.session.refresh(part)
    assert part.capacity == 5 and part.series_id == first.id  # one capacity: the first's
    assert {place_in(db, part.id, u.staff_member.id).status for u in learners} == {CONFIRMED}
    assert_counters_consistent(part.id)


def attend(db, session, staff_ids, trainer):
    attendance.record_roll_call(db.session.get(type(session), session.id), set(staff_ids), trainer,
                                reason="テスト（研修後の出欠入力）")
    db.session.commit()


def completed(db, staff_member_id, course_id) -> bool:
    db.session.expire_all()
    row = db.session.scalar(select(Completion).where(Completion.staff_member_id == staff_member_id,
                                                     Completion.course_id == course_id))
    return row is not None and row.status == COMPLETED


def test_three_quarters_of_the_parts_and_a_make_up_part(db, make_user, make_course, make_session, trainer):
    first, (second, third) = make_series(db, make_course, make_session, trainer)
    learner = make_user("learner")
    services.enroll_self(first.id, learner)
    makeup = courses.create_session(trainer, first.course, part_input(third, 7, capacity=5, title="第3日の補講"),
                                    makeup_for=third)
    db.session.commit()
    member_id = learner.staff_member.id
    # Someone without a place in the series cannot take its make-up part.
    with pytest.raises(NotEligible):
        services.enroll_self(makeup.id, make_user("learner"))
    db.session.rollback()
    assert services.enroll_self(makeup.id, learner).status == CONFIRMED
    db.session.commit()
    # The series is held (its days moved into the past, as if the weeks had gone by): the
    # learner came on days 1 and 2, not day 3 (2 of 3 < 3/4): not completed.
    for session in (first, second, third, makeup):
        session.starts_at -= timedelta(days=60)
        session.ends_at -= timedelta(days=60)
    db.session.commit()
    for session in (first, second):
        attend(db, session, [member_id], trainer)
    attend(db, third, [], trainer)
    assert not completed(db, member_id, first.course_id)
    from lms.attendance.series import MADE_UP, MISSED, series_progress

    progress = series_progress(first, [member_id])[member_id]
    assert [p.state for p in progress.parts][2] == MISSED and progress.needed == 3
    # The make-up part counts for day 3: 3 of 3.
    attend(db, makeup, [member_id], trainer)
    assert completed(db, member_id, first.course_id)
    progress = series_progress(first, [member_id])[member_id]
    assert progress.parts[2].state == MADE_UP and progress.enough


def test_series_capacity_under_concurrent_requests(app, live_server, db, make_course, make_session, trainer):
    first, later = make_series(db, make_course, make_session, trainer, capacity=8)
    users = [factories.make_user("learner", ("131016", "131024")[i % 2], commit=False) for i in range(30)]
    db.session.commit()
    cookies = [f"{app.config['SESSION_COOKIE_NAME']}={factories.session_cookie(app, u)}" for u in users]
    url = f"{live_server.url}/sessions/{first.id}/enroll"

    def one(cookie):
        r = requests.post(url, data={}, allow_redirects=False, timeout=60,
                          headers={"Cookie": cookie, "Accept": "application/json"})
        return r.status_code, r.json()

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(one, cookies))
    assert all(status in (201, 503) for status, _body in outcomes), outcomes
    db.session.rollback()
    seated = {e.staff_member_id for e in db.session.scalars(select(Enrollment).where(
        Enrollment.session_id == first.id, Enrollment.status == CONFIRMED))}
    assert len(seated) == 8
    for session in (first, *later):
        assert_counters_consistent(session.id)
    for part in later:
        in_part = {e.staff_member_id for e in db.session.scalars(select(Enrollment).where(
            Enrollment.session_id == part.id, Enrollment.status == CONFIRMED))}
        assert in_part == seated  # the same people in every part, never more than the capacity


def test_the_pages_of_a_series(app, db, client, login_as, make_user, make_course, make_session):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id, title="新任職員研修（連続講座）")
    first = make_session(course, capacity=10, title="第1日", delivery="onsite", location="研修室A")
    learner = make_user("learner", name="新任 花子")
    services.enroll_self(first.id, learner)
    db.session.commit()
    page = client.get(f"/manage/sessions/{first.id}/parts/new")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "連続講座に日程を追加" in html and 'name="capacity" value="10"' in html
    day2 = (first.starts_at + timedelta(days=1)).astimezone(TOKYO)
    created = client.post(f"/manage/sessions/{first.id}/parts/new", data={
        "title": "第2日", "starts_at": day2.strftime("%Y-%m-%dT%H:%M"),
        "ends_at": (day2 + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"), "delivery": "onsite",
        "location": "研修室A", "join_url": "", "capacity": "10", "enroll_opens_at": "", "enroll_closes_at": "",
        "cancel_deadline": "", "save": "保存"})
    assert created.status_code == 302, created.get_data(as_text=True)
    part = db.session.scalar(select(type(first)).where(type(first).series_id == first.id, type(first).id != first.id))
    assert part is not None and part.title == "第2日"
    assert place_in(db, part.id, learner.staff_member.id).status == CONFIRMED
    assert client.get(f"/manage/sessions/{part.id}/makeup/new").status_code == 200
    manage = client.get(f"/manage/courses/{course.id}").get_data(as_text=True)
    assert "連続講座（全日程まとめて申込）" in manage and "補講を追加" in manage
    # The learner sees each day; the office sees its staff's days.
    factories.sign_in(client, learner)
    my_page = client.get("/me").get_data(as_text=True)
    assert "連続講座：2 日程のうち 0 日程に出席" in my_page and "第2日" in my_page
    office = make_user("municipal_admin")
    factories.sign_in(client, office)
    office_page = client.get(f"/municipal/sessions/{first.id}")
    assert office_page.status_code == 200
    assert "連続講座の出席（日程ごと）" in office_page.get_data(as_text=True)
    # A later part refuses a request on its own, with the reason.
    factories.sign_in(client, make_user("learner"))
    refused = client.post(f"/sessions/{part.id}/enroll", headers={"Accept": "application/json"})
    assert refused.status_code == 409 and "最初の回" in refused.get_json()["message"]


def test_days_added_to_a_series_at_once_are_all_added(app, db, make_user, make_course, make_session, live_server):
    """Trainers (or tabs with different days) add a day to one series at the same instant: the series' first part is locked before anything is written, so the second
    waits for the first instead of deadlocking with the course trigger's lock (it was a 503)."""
    import threading

    trainer = make_user("trainer")
    course = make_course(owner_id=trainer.id, title="新任職員研修（連続講座）")
    first = make_session(course, capacity=10, title="第1日", delivery="onsite", location="研修室A")
    for _n in range(3):
        services.enroll_self(first.id, make_user("learner"))
    db.session.commit()
    first_id, start = first.id, first.starts_at.astimezone(TOKYO)
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={factories.session_cookie(app, trainer)}"
    db.session.commit()
    together = threading.Barrier(3)

    def add_day(n):  # (no one-time token: three different forms, one for each day)
        day = start + timedelta(days=n)
        together.wait(10)
        return requests.post(f"{live_server.url}/manage/sessions/{first_id}/parts/new", headers={"Cookie": cookie}, data={
            "title": f"追加日{n}", "starts_at": day.strftime("%Y-%m-%dT%H:%M"),
            "ends_at": (day + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"), "delivery": "onsite",
            "location": "研修室A", "join_url": "", "capacity": "10", "enroll_opens_at": "", "enroll_closes_at": "",
            "cancel_deadline": "", "save": "保存"}, allow_redirects=False, timeout=60).status_code

    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(add_day, (1, 2, 3))) == [302, 302, 302]
    db.session.rollback()
    parts = db.session.scalars(select(type(first).id).where(type(first).series_id == first_id,
                                                            type(first).id != first_id)).all()
    assert len(parts) == 3
    seated = db.session.scalars(select(Enrollment.session_id).where(Enrollment.session_id.in_(parts),
                                                                    Enrollment.status == CONFIRMED)).all()
    assert sorted(seated) == sorted(parts * 3)  # the three places follow into every day


def test_a_series_keeps_its_order(db, make_user, make_course, make_session, trainer, client, login_as):
    """A later day after the first, a 補講 after the day it makes up for, the first before the
    others — on adding and on moving; the make-up form leaves its request period open."""
    from lms.common.errors import InvalidInput

    first, (second, third) = make_series(db, make_course, make_session, trainer)
    with pytest.raises(InvalidInput, match="最初の回"):
        courses.create_session(trainer, first.course, part_input(first, -1), part_of=first)
    db.session.rollback()
    with pytest.raises(InvalidInput, match="補う回"):
        courses.create_session(trainer, first.course, part_input(third, -1, capacity=5), makeup_for=third)
    db.session.rollback()
    # A new day fits between two days, not over one (it then blocked moving either): the
    # message names the time the day before ends, the bound itself.
    overlapping = part_input(third, 0)
    overlapping.starts_at += timedelta(minutes=30)
    overlapping.ends_at += timedelta(minutes=30)
    with pytest.raises(InvalidInput, match=re.escape(f"前の日程が終わる {format_datetime_jst(third.ends_at)} 以降")):
        courses.create_session(trainer, first.course, overlapping, part_of=first)
    db.session.rollback()
    with pytest.raises(InvalidInput, match="次の日程"):  # starting with the third, or just before it
        courses.create_session(trainer, first.course, part_input(third, 0), part_of=first)
    db.session.rollback()
    makeup = courses.create_session(trainer, first.course, part_input(third, 3, capacity=5), makeup_for=third)
    db.session.commit()

    def moved(session, days):
        return courses.SessionInput(
            starts_at=session.starts_at + timedelta(days=days), ends_at=session.ends_at + timedelta(days=days),
            title=session.title, delivery=session.delivery, location=session.location, capacity=session.capacity)

    for session, days, message in ((makeup, -4, "補う回"), (second, -2, "最初の回"), (first, 5, "ほかの日程"),
                                   (second, 2, "次の日程"), (third, -1, "前の日程")):
        with pytest.raises(InvalidInput, match=message):
            courses.update_session(trainer, session.id, moved(session, days))
        db.session.rollback()
    assert courses.update_session(trainer, makeup.id, moved(makeup, 1))
    db.session.commit()
    # (the same on the form: the field says why; a day moved within its place is saved)
    edit = {"title": second.title, "delivery": second.delivery, "location": second.location,
            "capacity": str(second.capacity), "save": "保存"}

    def local(value):
        return value.astimezone(TOKYO).strftime("%Y-%m-%dT%H:%M")

    login_as(user=trainer)
    page = client.post(f"/manage/sessions/{second.id}/edit", data={
        **edit, "starts_at": local(third.starts_at + timedelta(hours=3)),
        "ends_at": local(third.ends_at + timedelta(hours=3))}).get_data(as_text=True)
    assert "連続講座の日程の順番は変えられません。次の日程（" in page
    assert client.post(f"/manage/sessions/{second.id}/edit", data={
        **edit, "starts_at": local(second.starts_at + timedelta(hours=3)),
        "ends_at": local(second.ends_at + timedelta(hours=3))}).status_code == 302
    login_as(user=trainer)
    form = client.get(f"/manage/sessions/{third.id}/makeup/new").get_data(as_text=True)
    for name in ("enroll_opens_at", "enroll_closes_at", "cancel_deadline"):
        assert re.search(rf'name="{name}"[^>]*value="[^"]', form) is None, name


def test_the_course_page_offers_a_make_up_only_to_the_series_members(db, make_user, make_course, make_session,
                                                                    trainer, client, login_as):
    first, (second, _third) = make_series(db, make_course, make_session, trainer)
    first.course.status = "published"
    member, outsider = make_user("learner"), make_user("learner")
    services.enroll_self(first.id, member)
    courses.create_session(trainer, first.course, part_input(second, 7, capacity=5, title="第2日の補講"),
                           makeup_for=second)
    db.session.commit()
    login_as(user=member)
    page = client.get(f"/courses/{first.course_id}").get_data(as_text=True)
    assert "補講に申し込む" in page
    login_as(user=outsider)
    page = client.get(f"/courses/{first.course_id}").get_data(as_text=True)
    assert "補講に申し込む" not in page
    assert "補講は、この連続講座の受講が決まっている人だけが申し込めます。" in page
