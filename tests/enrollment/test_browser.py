"""Enroll → waitlist → cancellation → promotion → notification, in real Chromium."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lms.enrollment import services
from lms.enrollment.models import CONFIRMED, Enrollment
from lms.notifications.models import OutboxMail
from tests import factories
from tests.conftest import require

pytestmark = pytest.mark.browser


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}  # the browser posts real forms


def _sign_in(page, base_url: str, user) -> None:
    page.goto(f"{base_url}/auth/demo")
    page.locator(f"#demo-user-{user.id}").check()
    page.get_by_role("button", name="サインイン", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("サインインしました")


def test_waitlisted_learner_is_promoted_when_the_seat_frees(live_server, browser, page, make_course, make_session,
                                                            make_user):
    course = make_course(title="Teams 会議の基本研修")
    session = make_session(course, capacity=2, location="都庁第一本庁舎 5階")
    holder = make_user(name="先客 花子")
    services.enroll(session.id, holder.staff_member.id, holder)
    a = make_user(name="受講 一郎", is_demo=True)
    b = make_user(name="受講 二郎", is_demo=True)
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))

    # A takes the last seat from the course page.
    _sign_in(page, live_server.url, a)
    page.goto(f"{live_server.url}/courses/{course.id}")
    page.locator(f"form[action='/sessions/{session.id}/enroll'] button").click()
    expect(page.locator(".flash")).to_contain_text("受講が確定しました")

    # B, in a browser of their own, is waitlisted and sees the position.
    context_b = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
    page_b = context_b.new_page()
    try:
        _sign_in(page_b, live_server.url, b)
        page_b.goto(f"{live_server.url}/courses/{course.id}")
        page_b.locator(f"form[action='/sessions/{session.id}/enroll'] button").click()
        expect(page_b.locator(".flash")).to_contain_text("キャンセル待ち 1 番目です")
        page_b.goto(f"{live_server.url}/me")
        card_b = page_b.locator(".my-sessions li").filter(has_text="Teams 会議の基本研修")
        expect(card_b).to_contain_text("キャンセル待ち")
        expect(card_b).to_contain_text("1 番目")
        expect(card_b.get_by_role("link", name="Teams 会議に参加する")).to_have_count(0)

        # A cancels on マイページ; the seat goes to B at once.
        page.goto(f"{live_server.url}/me")
        page.locator(".my-sessions li").filter(has_text="Teams 会議の基本研修").get_by_role(
            "link", name=re.compile("申込を取り消す")
        ).click()
        # Asked on a page of its own (no window.confirm): what, when, and that the seat passes on.
        expect(page.locator("h1")).to_have_text("申込を取り消す")
        expect(page.locator("main")).to_contain_text("Teams 会議の基本研修")
        expect(page.locator("main")).to_contain_text("キャンセル待ちの方")
        expect(page.locator("main")).to_contain_text("定員に達しています")
        page.get_by_role("button", name="申込を取り消す").click()
        expect(page.locator(".flash")).to_contain_text("受講申込を取り消しました")
        assert dialogs == []
        expect(page.locator(".my-sessions")).to_have_count(0)

        page_b.reload()
        card_b = page_b.locator(".my-sessions li").filter(has_text="Teams 会議の基本研修")
        expect(card_b.locator(".badge")).to_have_text("受講確定")
        expect(card_b.get_by_role("link", name="Teams 会議に参加する")).to_have_attribute("href", session.join_url)
        expect(card_b).to_contain_text("都庁第一本庁舎 5階")
    finally:
        context_b.close()

    factories.db.session.rollback()
    promoted = factories.db.session.scalar(
        select(Enrollment).where(Enrollment.staff_member_id == b.staff_member.id, Enrollment.session_id == session.id)
    )
    assert promoted.status == CONFIRMED
    mail = factories.db.session.scalar(
        select(OutboxMail).where(OutboxMail.enrollment_id == promoted.id, OutboxMail.kind == "promoted")
    )
    assert mail is not None and mail.to_address == b.email


AXE = Path(__file__).resolve().parents[1] / "node" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.mark.browser_context_args(bypass_csp=True)
def test_my_page_passes_axe(live_server, page, make_course, make_session, make_user):
    require(AXE.exists(), "axe-core in tests/node (npm install)")
    user = make_user(name="受講 三郎", is_demo=True)
    confirmed = make_session(make_course(title="Teams 会議の基本研修"), location="都庁第一本庁舎 5階")
    full = make_session(make_course(title="Excel 活用研修"), capacity=0, starts_in=timedelta(days=20))
    past = make_session(make_course(title="情報セキュリティ研修"), capacity=5, starts_in=timedelta(days=40))
    for s in (confirmed, full, past):
        services.enroll(s.id, user.staff_member.id, user)
    services.cancel_enrollment(
        factories.db.session.scalar(select(Enrollment.id).where(Enrollment.session_id == past.id)), user, "業務のため"
    )
    _sign_in(page, live_server.url, user)
    page.goto(f"{live_server.url}/me")
    expect(page.get_by_role("heading", name="マイページ")).to_be_visible()
    expect(page.locator(".my-sessions li")).to_have_count(2)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("o => axe.run(document, o)",
                           {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}})
    assert [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]] == []
