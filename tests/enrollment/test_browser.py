"""Enroll → waitlist → cancellation → promotion → notification, in real Chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lms.enrollment import services
from lms.enrollment.models import CONFIRMED, Enrollment
from lms.notifications.models import OutboxMail
from tests import factories

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
    page.on("dialog", lambda dialog: dialog.accept())

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
            "button", name=re.compile("申込を取り消す")
        ).click()
        expect(page.locator(".flash")).to_contain_text("受講申込を取り消しました")
        expect(page.locator(".my-sessions")).to_have_count(0)

        page_b.reload()
        card_b = page_b.locator(".my-sessions li").filter(has_text="Teams 会議の基本研修")
        expect(card_b.locator(".badge")).to_have_text("確定")
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
