"""In real Chromium: a trainer creates, schedules and publishes a course through the forms;
a learner finds it with a two-character search; the pages pass axe (WCAG 2.1 AA)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lms.courses.models import PUBLISHED, Course, TrainingSession
from tests import factories
from tests.conftest import require

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[1] / "node" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}  # the browser posts real forms


def _sign_in(page, base_url: str, user) -> None:
    page.goto(f"{base_url}/auth/demo")
    page.locator(f"#demo-user-{user.id}").check()
    page.get_by_role("button", name="サインイン", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("サインインしました")


def test_trainer_creates_and_publishes_then_learner_finds_it(live_server, page, db):
    trainer = factories.make_user("trainer", name="講師 一郎", is_demo=True)
    _sign_in(page, live_server.url, trainer)
    page.get_by_role("link", name="研修の管理").first.click()
    page.get_by_role("link", name="研修を作成").click()
    page.get_by_label("研修名").fill("Teams操作研修")
    page.get_by_label("概要（一覧に表示されます）").fill("会議とチャットの基本操作")
    page.get_by_label("選んだ自治体のみ").check()
    page.get_by_label("千代田区").check()
    page.get_by_label("新宿区").check()
    page.get_by_role("button", name="保存").click()
    expect(page.locator(".flash")).to_contain_text("下書きとして作成しました")

    page.get_by_role("link", name="回を追加").click()
    page.get_by_label("開始日時").fill("2030/12/3 14:00")  # typed as offices write it
    page.get_by_label("終了日時").fill("２０３０年１２月３日 １６時００分")  # full-width, 年月日 時分
    page.get_by_label("Teams 会議の参加リンク").fill("https://teams.microsoft.com/l/meetup-join/x")
    page.get_by_label("定員").fill("30")
    page.get_by_role("button", name="保存").click()
    expect(page.locator(".flash")).to_contain_text("回を追加しました（2030年12月3日(火) 14:00）")
    page.get_by_role("button", name="公開する").click()
    expect(page.locator(".flash")).to_contain_text("研修を公開しました")

    db.session.rollback()  # end the test's read transaction (opened by user.id above) to see the server's writes
    course = db.session.scalar(select(Course).where(Course.title == "Teams操作研修"))
    assert course.status == PUBLISHED and course.owner_id == trainer.id
    assert len(course.eligible_municipality_ids) == 2
    session = db.session.scalar(select(TrainingSession).where(TrainingSession.course_id == course.id))
    assert session.starts_at.strftime("%Y-%m-%d %H:%M") == "2030-12-03 05:00"  # UTC

    learner = factories.make_user("learner", "131016", is_demo=True)
    _sign_in(page, live_server.url, learner)
    page.get_by_role("link", name="研修を探す").first.click()
    page.get_by_label("キーワード").fill("操作")
    page.get_by_role("button", name="検索").click()
    page.get_by_role("link", name="Teams操作研修").click()
    expect(page.get_by_role("heading", name="Teams操作研修")).to_be_visible()
    expect(page.locator("table")).to_contain_text("2030年12月3日(火) 14:00")


@pytest.mark.browser_context_args(bypass_csp=True)
def test_course_pages_pass_axe(live_server, page, db):
    require(AXE.exists(), "axe-core (npm install in tests/node)")
    trainer = factories.make_user("trainer", is_demo=True)
    course = factories.make_course(title="アクセシビリティ研修", owner_id=trainer.id, description_md="## 内容\n- 一覧",
                                   eligible=["131016"])
    session = factories.make_session(course, quotas={"131016": 5})
    factories.make_session(course, starts_in=timedelta(days=40), capacity=1, confirmed_count=1)
    pages = {
        trainer: ["/manage/courses", f"/manage/courses/{course.id}", f"/manage/courses/{course.id}/edit",
                  f"/manage/courses/{course.id}/sessions/new", f"/manage/sessions/{session.id}/edit",
                  f"/manage/sessions/{session.id}/cancel", f"/manage/courses/{course.id}/cancel"],
        factories.make_user("learner", is_demo=True): ["/courses", "/courses?q=研修&free=1", f"/courses/{course.id}"],
    }
    for user, paths in pages.items():
        _sign_in(page, live_server.url, user)
        for path in paths:
            page.goto(live_server.url + path)
            page.add_script_tag(path=str(AXE))
            result = page.evaluate(
                "o => axe.run(document, o)",
                {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}},
            )
            assert result["violations"] == [], (path, [(v["id"], v["nodes"][0]["html"]) for v in result["violations"]])
