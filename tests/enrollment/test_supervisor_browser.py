"""所属長 then 研修担当, in real Chromium: the learner requests, the department head approves on
their page, the training office approves on its own, the seat is confirmed; every page on the
way passes axe (WCAG 2.1 AA) in Japanese and in English, as does the choice of notices."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lms.enrollment.models import CONFIRMED, Enrollment
from tests import factories
from tests.browser import AXE, sign_in_browser
from tests.browser import axe_violations as _axe

pytestmark = pytest.mark.browser


def _as(app, context, base_url: str, user) -> None:
    context.clear_cookies()
    sign_in_browser(app, context, base_url, user)


@pytest.mark.browser_context_args(bypass_csp=True)
def test_a_request_passes_the_head_then_the_office(live_server, page, db):
    if not AXE.exists():
        pytest.skip("axe-core is not installed in tests/node (npm install)")
    course = factories.make_course(title="政策形成研修", supervisor_approval=True, requires_approval=True)
    factories.make_session(course, capacity=5)
    learner = factories.make_user("learner", name="青木 一郎")
    head = factories.make_user("learner", name="総務課長 佐藤")
    head.staff_member.department_head = True
    office = factories.make_user("municipal_admin", name="研修担当 高橋")
    db.session.commit()
    base, app, context = live_server.url, live_server.app, page.context

    _as(app, context, base, learner)
    page.goto(f"{base}/courses/{course.id}")
    page.get_by_role("button", name="申し込む（承認制）").first.click()
    expect(page.locator(".flash")).to_be_visible()
    page.goto(f"{base}/me")
    expect(page.get_by_text("所属長の承認待ち")).to_be_visible()
    assert _axe(page) == []

    _as(app, context, base, head)
    page.goto(f"{base}/me")
    page.get_by_role("link", name="所属長の承認（あなたの所属の職員の受講申込）").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("所属長の承認")
    assert _axe(page) == []
    page.get_by_role("row", name="青木 一郎").get_by_role("button", name="承認する", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("研修担当の承認に進みます")

    _as(app, context, base, office)
    page.goto(f"{base}/municipal")
    expect(page.get_by_text("所属長：承認")).to_be_visible()
    assert _axe(page) == []
    page.get_by_role("button", name="承認する", exact=True).first.click()
    expect(page.locator(".flash")).to_contain_text("承認しました")
    db.session.rollback()  # (a fresh snapshot: the server wrote in its own transactions)
    assert db.session.scalar(select(Enrollment.status).where(Enrollment.staff_member_id == learner.staff_member.id)) \
        == CONFIRMED

    # The choice of notices, and the head's page, in English too.
    for user in (learner, head):
        user.locale = "en"
    db.session.commit()
    _as(app, context, base, learner)
    page.goto(f"{base}/settings/notices")
    expect(page.get_by_role("heading", level=1)).to_have_text("How you receive notices")
    assert _axe(page) == []
    page.get_by_label("Mail only").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_be_visible()
    db.session.rollback()  # (a fresh snapshot: the server wrote in its own transactions)
    assert db.session.get(type(learner), learner.id).notice_channel == "mail"
    _as(app, context, base, head)
    page.goto(f"{base}/approvals")
    expect(page.get_by_role("heading", level=1)).to_have_text("Department head approval")
    assert _axe(page) == []
