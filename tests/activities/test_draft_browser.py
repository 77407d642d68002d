"""What an activity page keeps in the browser, in real Chromium: answers typed after a saved
draft come back when the sign-in ended before they were saved; once submitted (an anonymous
survey included: it has no server-side draft) and after signing out, the browser holds no copy
of anyone's answers."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from lms.activities import services
from lms.activities.models import LONGTEXT, PREWORK, SCALE, SURVEY
from lms.auth.models import User
from tests import factories
from tests.activities.test_activities import build
from tests.activities.test_activities import world as world  # noqa: PLC0414  (the fixture)
from tests.browser import sign_in_browser

pytestmark = pytest.mark.browser

KEPT = "() => Object.keys(window.localStorage).filter(k => k.startsWith('manabi-activity-'))"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}


def _answer_field(page, prompt: str):
    return page.get_by_role("textbox", name=prompt)


def test_typed_answers_survive_a_lost_sign_in_and_go_once_submitted_or_signed_out(app, db, world, live_server, page):
    base, learner = live_server.url, world["learner"]
    prework = build(db, world, PREWORK, questions=[services.QuestionInput(kind=LONGTEXT, prompt="職場の課題")])
    survey = build(db, world, SURVEY, anonymous=True, questions=[
        services.QuestionInput(kind=SCALE, prompt="満足度"), services.QuestionInput(kind=LONGTEXT, prompt="ご意見")])
    sign_in_browser(app, page.context, base, learner)

    page.goto(f"{base}/activities/{prework.id}")
    _answer_field(page, "職場の課題").fill("文書の保存期間が部署ごとに違う。")
    page.get_by_role("button", name="下書きを保存").click()
    expect(page.locator(".flash").first).to_contain_text("下書きを保存しました")
    _answer_field(page, "職場の課題").fill("文書の保存期間が部署ごとに違う。\n決裁の電子化が進んでいない。")

    # The sign-in ends on the server (as after the idle timeout) before the learner saves.
    db.session.rollback()  # (a fresh transaction: the server has written since)
    user = db.session.get(User, learner.id)
    user.session_version += 1
    db.session.commit()
    page.get_by_role("button", name="下書きを保存").click()
    page.wait_for_load_state()
    db.session.rollback()
    assert "決裁の電子化" not in (services.place_of(prework, learner).submission.answers or {}).get(
        str(prework.questions[0].id), "")
    page.context.clear_cookies()
    sign_in_browser(app, page.context, base, db.session.get(User, learner.id))
    page.goto(f"{base}/activities/{prework.id}")
    expect(page.locator("#draft-restored")).to_be_visible()
    expect(_answer_field(page, "職場の課題")).to_have_value("文書の保存期間が部署ごとに違う。\n決裁の電子化が進んでいない。")
    page.get_by_role("button", name="提出する").click()
    expect(page.locator(".flash").first).to_contain_text("提出しました")
    assert page.evaluate(KEPT) == []  # submitted: the copy is gone

    # An anonymous survey keeps no draft on the server (no button to save one); what is typed
    # is kept in this browser only until it is submitted.
    page.goto(f"{base}/activities/{survey.id}")
    expect(page.get_by_role("button", name="下書きを保存")).to_have_count(0)
    page.locator(f"input[name='q{survey.questions[0].id}'][value='5']").check()
    _answer_field(page, "ご意見").fill("部長の会議運営に意見があります")
    assert len(page.evaluate(KEPT)) == 1
    page.get_by_role("button", name="提出する").click()
    expect(page.locator(".flash").first).to_contain_text("提出しました")
    assert page.evaluate(KEPT) == []  # an anonymous answer leaves nothing behind in the browser

    # Typed but never saved, then signed out: the next person at this PC finds nothing.
    db.session.rollback()
    other = build(db, world, PREWORK, questions=[services.QuestionInput(kind=LONGTEXT, prompt="研修で学びたいこと")])
    page.goto(f"{base}/activities/{other.id}")
    _answer_field(page, "研修で学びたいこと").fill("個人的なメモ")
    assert len(page.evaluate(KEPT)) == 1
    page.get_by_role("button", name="サインアウト").click()
    expect(page.locator(".flash").first).to_contain_text("サインアウト")
    assert page.evaluate(KEPT) == []
    factories.db.session.rollback()
