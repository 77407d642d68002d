"""The results pages of a quiz (score bands) and of a report with attached files pass axe-core
(WCAG 2.1 A/AA) in real Chromium, in Japanese and English, on a desktop and a phone."""

from __future__ import annotations

import pytest

from lms.activities.models import QUIZ
from tests.activities.test_activities import build, quiz_questions
from tests.activities.test_activities import world as world  # noqa: PLC0414  (the fixture)
from tests.activities.test_results_page import HALF_WRONG, RIGHT, file_report, learner_in, submit_file, take
from tests.browser import axe_violations, sign_in_browser

pytestmark = pytest.mark.browser


def test_quiz_and_file_results_pass_axe(app, db, world, live_server, browser):
    quiz = build(db, world, QUIZ, questions=quiz_questions(), pass_pct=75, max_attempts=3)
    report = file_report(db, world)
    take(db, quiz, world["learner"], *HALF_WRONG)
    take(db, quiz, learner_in(db, world, "合格 花子"), *RIGHT)
    submit_file(db, report, world["learner"], "実践報告.pdf")
    base = live_server.url
    found = {}
    for lang in ("ja", "en"):
        context = browser.new_context(locale="ja-JP" if lang == "ja" else "en-US", bypass_csp=True,
                                      timezone_id="Asia/Tokyo")
        page = context.new_page()
        sign_in_browser(app, context, base, world["trainer"])
        for width in (1280, 390):
            page.set_viewport_size({"width": width, "height": 900})
            for activity in (quiz, report):
                page.goto(f"{base}/manage/activities/{activity.id}/results")
                assert page.locator("html").get_attribute("lang") == lang
                violations = axe_violations(page)
                if violations:
                    found[(lang, width, activity.kind)] = violations
                assert page.evaluate("() => document.documentElement.scrollWidth") <= width + 1, (lang, width, activity.kind)
        context.close()
    assert found == {}
