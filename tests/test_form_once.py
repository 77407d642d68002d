"""Creating forms are acted on once: the same form sent again (a double click, two tabs, the
browser's resend) leads to what its first copy made instead of making another."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import func, select

from lms.activities import services as activities
from lms.activities.models import SURVEY, TEXT, ActivityQuestion
from lms.common import once
from lms.common.timeutil import utcnow
from lms.courses import services as courses
from lms.courses.models import Course, TrainingSession
from lms.extensions import db
from lms.roster.models import StaffMember
from tests import factories
from tests.at_once import post_at_once
from tests.courses.test_routes import _course_form, _session_form

_ONCE = re.compile(r'<input type="hidden" name="once" value="([A-Za-z0-9_-]+)">')


def _token(page: str) -> str:
    found = _ONCE.findall(page)
    assert found, "the form carries no one-time token"
    return found[0]


def _courses(title: str) -> int:
    db.session.rollback()
    return db.session.scalar(select(func.count()).select_from(Course).where(Course.title == title))


def test_a_course_form_sent_twice_makes_one_course_and_the_repeat_shows_it(client, login_as):
    login_as("trainer")
    token = _token(client.get("/manage/courses/new").get_data(as_text=True))
    first = client.post("/manage/courses/new", data=_course_form(once=token))
    again = client.post("/manage/courses/new", data=_course_form(once=token))
    assert first.status_code == again.status_code == 302
    assert again.headers["Location"] == first.headers["Location"]
    assert _courses("Teams操作研修") == 1
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "この送信はすでに受け付けています" in page
    # Drawn again, the form has a new token: a second course on purpose is made.
    fresh = _token(client.get("/manage/courses/new").get_data(as_text=True))
    assert fresh != token
    assert client.post("/manage/courses/new", data=_course_form(once=fresh)).status_code == 302
    assert _courses("Teams操作研修") == 2


def test_without_a_token_or_with_a_malformed_one_the_form_is_acted_on_as_before(client, login_as):
    login_as("trainer")
    for extra in ({}, {"once": "short"}, {"once": "x" * 65}, {"once": "<script>alert(1)</script>" * 3}):
        assert client.post("/manage/courses/new", data=_course_form(**extra)).status_code == 302
    assert _courses("Teams操作研修") == 4


def test_a_session_form_sent_twice_adds_one_session(client, login_as, make_course):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    page = client.get(f"/manage/courses/{course.id}/sessions/new").get_data(as_text=True)
    data = _session_form(once=_token(page))
    assert [client.post(f"/manage/courses/{course.id}/sessions/new", data=data).status_code for _ in range(2)] == [302, 302]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(TrainingSession)
                             .where(TrainingSession.course_id == course.id)) == 1


def test_a_refused_creation_leaves_its_token_unused(app, db):
    """The claim is part of the creation's transaction: rolled back with it, the same token
    may be sent again (a form corrected and resent), and is then claimed once."""
    user = factories.make_user("trainer")
    token = once.new_token()
    with app.test_request_context("/manage/courses/new", method="POST", data={"once": token}):
        assert once.already_done(token, user.id) is None
        db.session.rollback()  # the creation was refused
        assert once.already_done(token, user.id) is None
        once.remember("/manage/courses/7")
        db.session.commit()
        assert once.already_done(token, user.id) == "/manage/courses/7"
        # Another person's copy of the token (it cannot be guessed) is not shown their result.
        assert once.already_done(token, user.id + 1) == "/"
        db.session.rollback()
    with app.test_request_context("/manage/courses/3/copy", method="POST", data={"once": token},
                                  headers={"Referer": "http://localhost/manage/courses/3?tab=x"}):
        assert once.already_done(token, user.id + 1) == "/manage/courses/3?tab=x"  # back where it was sent from
        db.session.rollback()
    with app.test_request_context("/manage/courses/3/copy", method="POST", data={"once": token},
                                  headers={"Referer": "https://evil.example/phish"}):
        assert once.already_done(token, user.id + 1) == "/"  # never to another site


def test_tokens_older_than_two_days_are_forgotten(app, db):
    old, new = once.new_token(), once.new_token()
    db.session.add_all([once.FormSubmission(token=old, user_id=1, created_at=utcnow() - timedelta(days=3)),
                        once.FormSubmission(token=new, user_id=1, created_at=utcnow() - timedelta(hours=1))])
    db.session.commit()
    from lms.common.tasks import forget_old_form_submissions

    assert forget_old_form_submissions.call_local() == 1
    db.session.rollback()
    assert db.session.scalars(select(once.FormSubmission.token)).all() == [new]


def test_every_creating_form_carries_a_token(client, login_as, make_course):
    trainer = login_as(("trainer", "municipal_admin", "platform_admin"))
    course = make_course(owner_id=trainer.id)
    session = factories.make_session(course)
    survey = activities.create_activity(trainer, course, activities.ActivityInput(kind=SURVEY, title="研修アンケート"))
    db.session.commit()
    day2 = courses.create_session(trainer, course, courses.SessionInput(  # (a 連続講座: make-ups are its parts')
        starts_at=session.starts_at + timedelta(days=1), ends_at=session.ends_at + timedelta(days=1), title="第2日",
        delivery=session.delivery, location="研修室A", capacity=session.capacity), part_of=session)
    db.session.commit()
    for url in ("/manage/courses/new", f"/manage/courses/{course.id}", f"/manage/courses/{course.id}/sessions/new",
                f"/manage/sessions/{session.id}/parts/new", f"/manage/sessions/{day2.id}/makeup/new",
                "/archives/manage/new", "/completion/assignments/new", "/admin/webhooks", "/manage/paths/new",
                f"/manage/courses/{course.id}/activities", f"/manage/activities/{survey.id}",
                f"/roster/new?m={trainer.municipality_id}", "/admin/search/synonyms", "/admin/api-clients"):
        response = client.get(url)
        assert response.status_code == 200, url
        _token(response.get_data(as_text=True))


def test_a_roster_entry_and_a_question_sent_twice_are_added_once(client, login_as, make_course):
    admin = login_as(("trainer", "municipal_admin"))
    page = client.get(f"/roster/new?m={admin.municipality_id}").get_data(as_text=True)
    entry = {"employee_number": "7001", "full_name": "名簿 一郎", "once": _token(page)}
    first = client.post(f"/roster/new?m={admin.municipality_id}", data=entry)
    again = client.post(f"/roster/new?m={admin.municipality_id}", data=entry)
    assert first.status_code == again.status_code == 302 and again.headers["Location"] == first.headers["Location"]
    assert "この送信はすでに受け付けています" in client.get(again.headers["Location"]).get_data(as_text=True)
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(StaffMember).where(
        StaffMember.employee_number == "7001", StaffMember.municipality_id == admin.municipality_id)) == 1
    course = make_course(owner_id=admin.id)
    survey = activities.create_activity(admin, course, activities.ActivityInput(kind=SURVEY, title="研修アンケート"))
    db.session.commit()
    question = {"kind": TEXT, "prompt": "感想をお書きください", "required": "y",
                "once": _token(client.get(f"/manage/activities/{survey.id}").get_data(as_text=True))}
    for _n in range(2):
        assert client.post(f"/manage/activities/{survey.id}/questions", data=question).status_code == 302
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(ActivityQuestion)
                             .where(ActivityQuestion.activity_id == survey.id)) == 1


def test_a_course_copied_three_times_at_once_is_copied_once(app, live_server, make_course):
    """Three copies of the same post arrive together: the second and third wait for the first
    one's transaction, then find its token used and are sent to the copy it made."""
    trainer = factories.make_user("trainer")
    course = make_course(owner_id=trainer.id, title="文書管理研修")
    course_id = course.id
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={factories.session_cookie(app, trainer)}"
    db.session.commit()
    answers = post_at_once(f"{live_server.url}/manage/courses/{course_id}/copy", cookie, {"once": once.new_token()})
    assert {status for status, _ in answers} == {302}
    assert len({location for _, location in answers}) == 1, answers
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(Course).where(Course.id != course_id)) == 1
