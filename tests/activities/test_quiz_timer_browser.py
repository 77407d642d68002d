"""A timed quiz in real Chromium: the page counts down from the server's clock and, when the
time is up, submits the answers on the page; the server scores them as they stand."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from lms.activities import services
from lms.activities.models import QUIZ, SUBMITTED, ActivitySubmission
from tests.activities.test_activities import build, quiz_questions
from tests.activities.test_activities import world as world  # noqa: PLC0414  (the fixture)
from tests.browser import sign_in_browser

pytestmark = pytest.mark.browser


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}


def test_the_page_submits_when_the_time_is_up(app, db, world, live_server, page):
    base, learner = live_server.url, world["learner"]
    quiz = build(db, world, QUIZ, questions=quiz_questions(), max_attempts=2, time_limit_minutes=1)
    attempt = services.start_attempt(quiz.id, learner)
    db.session.commit()
    attempt.started_at -= timedelta(seconds=56)  # four seconds left
    db.session.commit()
    sign_in_browser(app, page.context, base, learner)
    page.goto(f"{base}/activities/{quiz.id}")
    remaining = page.locator("#quiz-remaining-time")
    assert remaining.inner_text() in {"0:04", "0:03"}  # counted from the server's clock
    page.get_by_label("規程").check()  # one answer given, the others not
    expect(page.locator(".flash").first).to_contain_text("制限時間になったため、その時点の回答で採点しました", timeout=15_000)
    time.sleep(0.2)
    db.session.rollback()
    row = db.session.get(ActivitySubmission, attempt.id)
    assert row.status == SUBMITTED and row.score_pct == 50


def test_a_long_time_left_reads_in_hours_and_a_far_close_shows_no_count(app, db, world, live_server, page):
    """An hour and a half left reads 1:29:5x, not 89:5x; an attempt with no time limit whose
    quiz closes days away shows no running count (it read 193137:15), only the closing time."""
    base, learner = live_server.url, world["learner"]
    timed = build(db, world, QUIZ, questions=quiz_questions(), max_attempts=2, time_limit_minutes=90)
    services.start_attempt(timed.id, learner)
    db.session.commit()
    sign_in_browser(app, page.context, base, learner)
    page.goto(f"{base}/activities/{timed.id}")
    expect(page.locator(".quiz-remaining")).to_be_visible()
    assert page.locator("#quiz-remaining-time").inner_text() in {"1:30:00", "1:29:59", "1:29:58"}

    untimed = build(db, world, QUIZ, questions=quiz_questions(), max_attempts=2)
    attempt = services.start_attempt(untimed.id, learner)
    db.session.commit()
    assert services.deadline_of(untimed, attempt) - attempt.started_at > timedelta(days=1)
    page.goto(f"{base}/activities/{untimed.id}")
    expect(page.locator("#quiz-deadline")).to_contain_text("回答の受付は")
    page.wait_for_timeout(1200)  # (a tick or two)
    expect(page.locator(".quiz-remaining")).to_be_hidden()
