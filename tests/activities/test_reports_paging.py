"""The reports waiting for review (/reports) a page at a time: the oldest first, each page
with the app's pager; a page past the last leads to the last, a page that is no number is the
first; a review brings the reviewer back to the page they were on (the last, when theirs is
gone), a refused one shows that page again with what was typed; a training office still sees
its own municipality's reports only; and a page costs the same statements however many
activities its reports answer."""

from __future__ import annotations

import re

import pytest

from lms.activities import routes, services
from lms.activities.models import CONFIRMED, LONGTEXT, REPORT, SUBMITTED, ActivitySubmission
from lms.enrollment import services as enrollment
from tests import factories
from tests.activities import test_activities as base

build, form = base.build, base.form
world = base.world  # a trainer's course, a session, a learner with a place


def submit_report(db, world, report, code: str = "131016", person=None, text: str = "学んだこと。"):
    if person is None:
        person = factories.make_user("learner", code)
        enrollment.enroll_self(world["session"].id, person)
        db.session.commit()
    done, errors = services.save(report.id, person, form(report, text), submit=True)
    db.session.commit()
    assert not errors, errors
    return done


def shown(response) -> list[int]:
    """The reports on a page, in order."""
    return [int(n) for n in re.findall(r'<section class="panel" id="report-(\d+)"', response.get_data(as_text=True))]


@pytest.fixture
def waiting(db, world, monkeypatch):
    """Five reports of 131016's staff (three pages of two) and two of 132012's."""
    monkeypatch.setattr(routes, "REPORTS_PER_PAGE", 2)
    report = build(db, world, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと")])
    mine = [submit_report(db, world, report, person=world["learner"])]
    mine += [submit_report(db, world, report) for _n in range(4)]
    theirs = [submit_report(db, world, report, "132012") for _n in range(2)]
    return {"report": report, "mine": [s.id for s in mine], "theirs": [s.id for s in theirs]}


def test_the_reports_come_a_page_at_a_time_with_the_pager(waiting, client, login_as):
    mine = waiting["mine"]
    login_as("municipal_admin")
    first = client.get("/reports")
    assert first.status_code == 200 and shown(first) == mine[:2]
    html = first.get_data(as_text=True)
    assert '<nav class="pagination"' in html and 'href="/reports?page=2"' in html and 'rel="next"' in html
    assert '<span aria-current="page">1</span>' in html and 'href="/reports?page=3"' in html
    assert "確認待ちの報告は全部で5件あります" in html
    second = client.get("/reports?page=2")
    assert shown(second) == mine[2:4]
    assert 'href="/reports?page=1" rel="prev"' in second.get_data(as_text=True)
    assert '<span aria-current="page">2</span>' in second.get_data(as_text=True)
    last = client.get("/reports?page=3")
    assert shown(last) == mine[4:] and 'rel="next"' not in last.get_data(as_text=True)


def test_a_page_past_the_last_leads_to_the_last_and_no_page_value_fails(waiting, client, login_as):
    login_as("municipal_admin")
    for value in ("4", "99", "99999999999999999999999"):
        response = client.get(f"/reports?page={value}")
        assert response.status_code == 302, value
        assert response.headers["Location"].endswith("/reports?page=3"), value
    for value in ("abc", "0", "-1", "", "２", "1.5"):
        response = client.get(f"/reports?page={value}")
        assert response.status_code == 200, value
        assert shown(response) == waiting["mine"][:2], value


def test_the_scope_is_kept_on_every_page(waiting, client, login_as):
    """A training office sees its own municipality's reports only; the platform admin everyone's."""
    mine, theirs = waiting["mine"], waiting["theirs"]
    login_as("municipal_admin", "132012")
    other = client.get("/reports")
    assert shown(other) == theirs and '<nav class="pagination"' not in other.get_data(as_text=True)
    assert client.get("/reports?page=2").headers["Location"].endswith("/reports?page=1")
    login_as("municipal_admin")
    seen = [n for page in (1, 2, 3) for n in shown(client.get(f"/reports?page={page}"))]
    assert seen == mine
    login_as("platform_admin")
    everyone = [n for page in (1, 2, 3, 4) for n in shown(client.get(f"/reports?page={page}"))]
    assert everyone == mine + theirs


def test_a_review_comes_back_to_the_page_it_was_made_on(db, waiting, client, login_as):
    mine = waiting["mine"]
    login_as("municipal_admin")
    page = client.get("/reports?page=2").get_data(as_text=True)
    assert f'action="/reports/{mine[2]}?page=2"' in page  # the form says which page it is on
    done = client.post(f"/reports/{mine[2]}?page=2", data={"decision": "confirm"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/reports?page=2")
    db.session.expire_all()
    assert db.session.get(ActivitySubmission, mine[2]).status == CONFIRMED
    # Four wait now (two pages): the last page's report goes, and with it that page.
    assert shown(client.get("/reports?page=2")) == [mine[3], mine[4]]
    done = client.post(f"/reports/{mine[4]}?page=2", data={"decision": "return", "comment": "もう少し詳しく。"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/reports?page=2")
    done = client.post(f"/reports/{mine[3]}?page=2", data={"decision": "confirm"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/reports")  # the only page left
    # On the first page (no page in the address), it stays the first.
    done = client.post(f"/reports/{mine[0]}", data={"decision": "confirm"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/reports")
    # A page value that is no number is the first page, never an error.
    done = client.post(f"/reports/{mine[1]}?page=abc", data={"decision": "confirm"})
    assert done.status_code == 302 and done.headers["Location"].endswith("/reports")


def test_a_refused_review_shows_the_page_it_was_made_on_with_what_was_typed(db, waiting, client, login_as):
    mine = waiting["mine"]
    login_as("municipal_admin")
    refused = client.post(f"/reports/{mine[3]}?page=2", data={"decision": "return", "comment": "  "})
    html = refused.get_data(as_text=True)
    assert refused.status_code == 422 and shown(refused) == mine[2:4]
    assert f'href="#comment-{mine[3]}"' in html and f'aria-describedby="comment-{mine[3]}-error"' in html
    assert '<span aria-current="page">2</span>' in html
    long = "あ" * 2001
    too_long = client.post(f"/reports/{mine[4]}?page=3", data={"decision": "return", "comment": long})
    assert too_long.status_code == 422 and shown(too_long) == mine[4:] and long in too_long.get_data(as_text=True)
    # A page past the last (the list shrank meanwhile) shows the last, with the error: no redirect
    # of a post, nothing typed lost.
    past = client.post(f"/reports/{mine[4]}?page=9", data={"decision": "return", "comment": long})
    assert past.status_code == 422 and shown(past) == mine[4:] and long in past.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(ActivitySubmission, mine[4]).status == SUBMITTED


def test_a_page_of_reports_costs_the_same_however_many_activities_it_shows(db, world, client, login_as,
                                                                            make_course, make_session, monkeypatch):
    monkeypatch.setattr(routes, "REPORTS_PER_PAGE", 10)
    first = build(db, world, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt="学んだこと")])
    submit_report(db, world, first, person=world["learner"])
    login_as("municipal_admin")

    def run():
        assert client.get("/reports").status_code == 200

    run()
    few = factories.count_statements(run)
    for n in range(3):
        course = make_course(title=f"別の研修{n}", owner_id=world["trainer"].id, completion_mode="attendance")
        other = {**world, "course": course, "session": make_session(course, capacity=20)}
        report = build(db, other, REPORT, questions=[services.QuestionInput(kind=LONGTEXT, prompt=f"学んだこと{n}"),
                                                     services.QuestionInput(kind=LONGTEXT, prompt="次に活かすこと")])
        for _m in range(2):
            person = factories.make_user("learner")
            enrollment.enroll_self(other["session"].id, person)
            db.session.commit()
            done, errors = services.save(report.id, person, form(report, "学んだ。", "活かす。"), submit=True)
            db.session.commit()
            assert not errors, errors
    assert len(shown(client.get("/reports"))) == 7
    assert factories.count_statements(run) == few
