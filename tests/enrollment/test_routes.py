"""Enroll / cancel buttons and マイページ over HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import OperationalError

from lms.common.timeutil import utcnow
from lms.courses.models import TrainingSession
from lms.enrollment import seats, services
from lms.enrollment.models import CANCELLED, CONFIRMED, Enrollment
from tests import factories

JSON = {"Accept": "application/json"}


def _follow(client, response):
    """PRG: the page the redirect leads to (the test client here runs each request in a
    thread of its own, so redirects are followed by hand)."""
    assert response.status_code == 302, response.status_code
    return client.get(response.headers["Location"])


def _enrollment_of(user, session_id):
    factories.db.session.rollback()
    return factories.db.session.scalar(
        select(Enrollment).where(Enrollment.session_id == session_id, Enrollment.staff_member_id == user.staff_member.id)
    )


def test_enroll_tells_the_learner_where_they_stand(client, login_as, make_session, make_user, make_course):
    session = make_session(capacity=1)
    services.enroll(session.id, (holder := make_user()).staff_member.id, holder)
    login_as("learner")
    page = client.post(f"/sessions/{session.id}/enroll", data={"next": "/catalogue?q=x"})
    assert page.status_code == 302 and page.headers["Location"].endswith("/catalogue?q=x")
    page = client.get("/me")
    assert "キャンセル待ち 1 番目です" in page.get_data(as_text=True)

    approval = make_session(make_course(requires_approval=True))
    page = _follow(client, client.post(f"/sessions/{approval.id}/enroll"))
    assert "受講申込を受け付けました。研修担当の承認をお待ちください。" in page.get_data(as_text=True)

    open_session = make_session(starts_in=timedelta(days=30))
    page = _follow(client, client.post(f"/sessions/{open_session.id}/enroll"))
    assert "受講が確定しました" in page.get_data(as_text=True)


def test_enroll_answers_json_when_asked(client, login_as, make_session):
    session = make_session()
    login_as("learner")
    first = client.post(f"/sessions/{session.id}/enroll", headers=JSON)
    assert first.status_code == 201
    assert first.json["status"] == CONFIRMED and "確定" in first.json["message"]
    again = client.post(f"/sessions/{session.id}/enroll", headers=JSON)
    assert again.status_code == 409
    assert again.json["error"] == "AlreadyEnrolled" and "すでに" in again.json["message"]


def test_refusal_is_a_flash_not_an_error_page(client, login_as, make_session):
    session = make_session(enroll_closes_at=utcnow() - timedelta(minutes=1))
    login_as("learner")
    page = _follow(client, client.post(f"/sessions/{session.id}/enroll"))
    assert page.status_code == 200
    assert "申込受付は締め切りました" in page.get_data(as_text=True)


def test_unknown_session_is_404_json(client, login_as):
    login_as("learner")
    answer = client.post("/sessions/999999/enroll", headers=JSON)
    assert answer.status_code == 404 and answer.json["message"]
    # The browser's form post too: the 404 page, not a redirect (as the matching GETs answer).
    page = client.post("/sessions/999999/enroll")
    assert page.status_code == 404 and "ページが見つかりません" in page.get_data(as_text=True)


def test_busy_database_gets_a_japanese_503(client, login_as, make_session, monkeypatch):
    session = make_session()
    user = login_as("learner")
    calls = []

    def locked(*args, **kwargs):
        calls.append(1)
        raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))

    monkeypatch.setattr(seats, "lock_session_for", locked)
    monkeypatch.setattr(services.time, "sleep", lambda s: None)
    answer = client.post(f"/sessions/{session.id}/enroll", headers=JSON)
    assert answer.status_code == 503
    assert "集中" in answer.json["message"] and "申込は行われていません" in answer.json["message"]
    assert len(calls) == services.ATTEMPTS
    assert _enrollment_of(user, session.id) is None


def test_a_lock_timeout_is_retried_transparently(client, login_as, make_session, monkeypatch):
    session = make_session()
    user = login_as("learner")
    real = seats.lock_session_for
    failures = [1, 1]

    def flaky(*args, **kwargs):
        if failures:
            failures.pop()
            raise OperationalError("BEGIN IMMEDIATE", {}, Exception("database is locked"))
        return real(*args, **kwargs)

    monkeypatch.setattr(seats, "lock_session_for", flaky)
    assert client.post(f"/sessions/{session.id}/enroll", headers=JSON).status_code == 201
    assert _enrollment_of(user, session.id).status == CONFIRMED


def test_enroll_needs_csrf(app, client, login_as, make_session):
    app.config["WTF_CSRF_ENABLED"] = True
    session = make_session()
    user = login_as("learner")
    answer = client.post(f"/sessions/{session.id}/enroll")
    assert answer.status_code == 400
    assert _enrollment_of(user, session.id) is None


def test_enroll_needs_sign_in(client, make_session):
    session = make_session()
    answer = client.post(f"/sessions/{session.id}/enroll")
    assert answer.status_code == 302 and "/auth/login" in answer.headers["Location"]


def test_cancel_own_and_not_someone_elses(client, login_as, make_session, make_user):
    session = make_session(capacity=1)
    other = make_user()
    theirs = services.enroll(session.id, other.staff_member.id, other)
    user = login_as("learner")
    answer = client.post(f"/enrollments/{theirs.id}/cancel", headers=JSON)
    unknown = client.post("/enrollments/2147483647/cancel", headers=JSON)
    # Someone else's is answered exactly as one that does not exist.
    assert answer.status_code == unknown.status_code == 404
    assert answer.get_json() == unknown.get_json()
    assert client.post(f"/enrollments/{theirs.id}/cancel").status_code == 404  # (the form's post)
    assert client.post("/enrollments/2147483647/cancel").status_code == 404
    mine = services.enroll(session.id, user.staff_member.id, user)
    page = _follow(client, client.post(f"/enrollments/{mine.id}/cancel"))
    assert "受講申込を取り消しました" in page.get_data(as_text=True)
    factories.db.session.rollback()
    assert factories.db.session.get(Enrollment, mine.id).status == CANCELLED
    assert factories.db.session.get(Enrollment, theirs.id).status == CONFIRMED


def test_admin_late_cancellation_is_flagged(client, login_as, make_session, make_user):
    session = make_session()
    learner = make_user()
    enrollment = services.enroll(session.id, learner.staff_member.id, learner)
    factories.db.session.execute(
        update(TrainingSession).where(TrainingSession.id == session.id).values(cancel_deadline=utcnow() - timedelta(hours=1))
    )
    factories.db.session.commit()
    login_as("municipal_admin", "131016")
    answer = _follow(client, client.post(f"/enrollments/{enrollment.id}/cancel", data={"reason": "異動のため"}))
    assert "期限後の取消" in answer.get_data(as_text=True)
    factories.db.session.rollback()
    stored = factories.db.session.get(Enrollment, enrollment.id)
    assert stored.late_cancellation and stored.reason == "異動のため"


def test_my_page_shows_status_links_and_deadlines(client, login_as, make_session, make_course):
    user = login_as("learner")
    confirmed = make_session(make_course(title="Teams 会議の基本"), location="都庁第一本庁舎 5階")
    full = make_session(make_course(title="Excel 活用研修"), capacity=0, starts_in=timedelta(days=20))
    locked = make_session(make_course(title="Copilot 入門"), starts_in=timedelta(days=40))
    for s in (confirmed, full, locked):
        services.enroll(s.id, user.staff_member.id, user)
    factories.db.session.execute(
        update(TrainingSession).where(TrainingSession.id == locked.id).values(cancel_deadline=utcnow() - timedelta(hours=1))
    )
    factories.db.session.commit()
    html = client.get("/me").get_data(as_text=True)
    assert "Teams 会議の基本" in html and "都庁第一本庁舎 5階" in html
    assert f'href="{confirmed.join_url}"' in html  # the Teams link of a confirmed session
    assert "キャンセル待ち" in html and "1 番目" in html
    assert html.count("disabled") == 1 and "キャンセル期限を過ぎたため" in html
    assert html.count("teams.microsoft.com") == 2  # confirmed only; not the waitlisted one


def test_a_session_held_at_a_venue_gives_no_teams_link_kept_from_before(client, login_as, make_session, make_course):
    from icalendar import Calendar

    user = login_as("learner")
    session = make_session(make_course(), delivery="onsite", location="都庁第一本庁舎 5階")  # was Teams: link kept
    services.enroll(session.id, user.staff_member.id, user)
    factories.db.session.commit()
    assert session.join_url and session.status == "scheduled"
    assert "teams.microsoft.com" not in client.get("/me").get_data(as_text=True)
    event = Calendar.from_ical(client.get(f"/sessions/{session.id}/calendar.ics").data).walk("VEVENT")[0]
    assert "URL" not in event and "teams.microsoft.com" not in str(event["DESCRIPTION"])


def test_my_page_lists_history_and_only_my_records(client, login_as, make_session, make_user):
    other = make_user(name="他の 職員")
    user = login_as("learner")
    session = make_session()
    mine = services.enroll(session.id, user.staff_member.id, user)
    services.enroll(session.id, other.staff_member.id, other)
    services.cancel_enrollment(mine.id, user, "業務のため")
    html = client.get("/me").get_data(as_text=True)
    assert "これまでの申込" in html and "取消" in html and "業務のため" in html
    assert "申し込んでいる研修はありません" in html
    assert "他の 職員" not in html


def test_my_page_history_says_what_a_held_session_came_to(client, login_as, make_session, make_course):
    """A confirmed place in a session already held reads 出席, 欠席 or 出欠の記録待ち, not 受講確定."""
    from lms.attendance import services as attendance

    admin = factories.make_user(role="platform_admin")
    user = login_as("learner")
    held = {name: make_session(make_course(title=name), starts_in=timedelta(days=10 + n))
            for n, name in enumerate(("出席した研修", "欠席した研修", "記録前の研修"))}
    for s in held.values():
        services.enroll(s.id, user.staff_member.id, user)
    for n, s in enumerate(held.values()):  # then held: each a few days ago
        factories.db.session.execute(update(TrainingSession).where(TrainingSession.id == s.id).values(
            starts_at=utcnow() - timedelta(days=3 + n), ends_at=utcnow() - timedelta(days=3 + n, hours=-2)))
    factories.db.session.commit()
    for name, attended in (("出席した研修", True), ("欠席した研修", False)):
        attendance.correct_attendance(factories.db.session.get(TrainingSession, held[name].id), user.staff_member.id,
                                      attended, "出席簿で確認", admin, attended_pct=100 if attended else 0)
    html = client.get("/me").get_data(as_text=True)
    history = html.split("history-heading", 1)[1]
    cells = {name: history.split(name, 1)[1].split("</tr>", 1)[0] for name in held}
    assert "<td>出席</td>" in cells["出席した研修"]
    assert "<td>欠席</td>" in cells["欠席した研修"]
    assert "<td>出欠の記録待ち</td>" in cells["記録前の研修"]
    assert "受講確定" not in history
    english = client.get("/me", headers={"Accept-Language": "en"}).get_data(as_text=True)
    assert ">Attended<" in english and "Attendance not yet recorded" in english


@pytest.mark.parametrize("path", ["/me"])
def test_my_page_needs_sign_in(client, path):
    assert client.get(path).status_code == 302


def test_cancel_asks_on_a_page_that_posts_to_the_same_url(client, login_as, make_session, make_user):
    session = make_session(capacity=1)
    other = make_user()
    theirs = services.enroll(session.id, other.staff_member.id, other)
    user = login_as("learner")
    # Someone else's confirmation page: 404, as for an id that names nothing.
    assert client.get(f"/enrollments/{theirs.id}/cancel").status_code == 404
    assert client.get("/enrollments/2147483647/cancel").status_code == 404
    mine = services.enroll(session.id, user.staff_member.id, user)  # waitlisted: the seat is taken
    page = client.get(f"/enrollments/{mine.id}/cancel?next=/me")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert session.course.title in html and f'action="/enrollments/{mine.id}/cancel"' in html
    assert "キャンセル待ちの順番はなくなります" in html and 'name="next" value="/me"' in html
    factories.db.session.rollback()
    assert factories.db.session.get(Enrollment, mine.id).status != CANCELLED  # asking changes nothing
    answer = client.post(f"/enrollments/{mine.id}/cancel", data={"next": "/me"})
    assert answer.status_code == 302 and answer.headers["Location"].endswith("/me")
    # Once cancelled, the page sends back with the reason instead of asking again.
    again = _follow(client, client.get(f"/enrollments/{mine.id}/cancel"))
    assert "この申込はすでに取り消されています。" in again.get_data(as_text=True)


def test_cancel_page_for_a_confirmed_seat_says_the_waitlist_takes_it(client, login_as, make_session, make_user):
    session = make_session(capacity=1)
    user = login_as("learner")
    mine = services.enroll(session.id, user.staff_member.id, user)
    other = make_user()
    services.enroll(session.id, other.staff_member.id, other)  # waitlisted behind
    html = client.get(f"/enrollments/{mine.id}/cancel").get_data(as_text=True)
    assert "キャンセル待ちの方がいれば" in html and "定員に達しています" in html
    assert "受講確定" in html


def test_cancel_page_takes_a_reason_and_refuses_one_too_long(client, login_as, make_session, make_user):
    """The reason (optional) is a labelled field of the cancel page; one over 500 characters is
    refused on the same page with what was typed, and the place stays. The municipality's
    training office reads it on the staff member's roster page."""
    session = make_session()
    user = login_as("learner")
    mine = services.enroll(session.id, user.staff_member.id, user)
    page = client.get(f"/enrollments/{mine.id}/cancel").get_data(as_text=True)
    assert '<label for="reason">取消の理由（任意）</label>' in page and 'maxlength="500"' in page
    long = "業" * 501
    refused = client.post(f"/enrollments/{mine.id}/cancel", data={"reason": long, "next": "/me"})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 400 and "500文字以内で入力してください" in html
    assert f'value="{long}"' in html and 'name="next" value="/me"' in html
    as_json = client.post(f"/enrollments/{mine.id}/cancel", data={"reason": long}, headers=JSON)
    assert as_json.status_code == 400 and "500文字以内" in as_json.get_json()["message"]
    factories.db.session.rollback()
    assert factories.db.session.get(Enrollment, mine.id).status == CONFIRMED
    done = client.post(f"/enrollments/{mine.id}/cancel", data={"reason": " 急な窓口当番\x07のため ", "next": "/me"})
    assert done.status_code == 302
    factories.db.session.rollback()
    stored = factories.db.session.get(Enrollment, mine.id)
    assert stored.status == CANCELLED and stored.reason == "急な窓口当番 のため"
    login_as("municipal_admin", "131016")
    roster_page = client.get(f"/roster/{user.staff_member.id}").get_data(as_text=True)
    assert "（理由：急な窓口当番 のため）" in roster_page
