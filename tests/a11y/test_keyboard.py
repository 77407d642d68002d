"""A keyboard-only journey in real Chromium: skip link, enroll, cancel, play an archive, with a
visible focus indicator on every element the Tab key reaches."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.a11y.conftest import demo_user, sign_in

pytestmark = pytest.mark.browser

FOCUS_INFO = """() => {
  const el = document.activeElement;
  const style = getComputedStyle(el);
  const outline = style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) > 0;
  const shadow = style.boxShadow && style.boxShadow !== 'none';
  const form = el.closest('form');
  return {tag: el.tagName.toLowerCase(), id: el.id, cls: el.className || '',
          text: (el.innerText || el.value || el.getAttribute('aria-label') || '').trim().slice(0, 60),
          action: form ? form.getAttribute('action') : '', href: el.getAttribute('href') || '',
          visible: outline || shadow, body: el === document.body};
}"""


def tab_to(page, matches, limit: int = 120) -> dict:
    """Press Tab until ``matches(info)``; every element reached must show its focus."""
    unfocused = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        info = page.evaluate(FOCUS_INFO)
        if not info["body"] and not info["visible"]:
            unfocused.append(info)
        if matches(info):
            assert not unfocused, f"focus not visible on: {unfocused}"
            return info
    raise AssertionError(f"never reached the target by Tab; unfocused: {unfocused}")


def test_keyboard_only_enroll_cancel_and_play(app, a11y_world, live_server, page, db):
    from lms.enrollment.models import CANCELLED, Enrollment

    learner = demo_user("131016", "learner0")
    session = a11y_world["session"]
    course = a11y_world["course"]
    archive = a11y_world["archive"]
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    sign_in(page, live_server.url, learner)

    # 1. The first Tab reaches the skip link, visible, and it moves focus to the content.
    page.goto(f"{live_server.url}/courses/{course.id}")
    page.keyboard.press("Tab")
    info = page.evaluate(FOCUS_INFO)
    assert "skip-link" in info["cls"] and info["visible"], info
    box = page.locator(".skip-link").bounding_box()
    assert box and box["y"] >= 0, "the focused skip link is on screen"
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"

    # 2. Enroll with the keyboard.
    enroll_action = f"/sessions/{session.id}/enroll"
    tab_to(page, lambda i: i["tag"] == "button" and i["action"] == enroll_action)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator(".flash").first).to_be_visible()
    flash = page.locator(".flash").first.inner_text()
    db.session.rollback()
    staff = learner.staff_member
    enrollment = db.session.scalar(select(Enrollment).where(Enrollment.session_id == session.id,
                                                            Enrollment.staff_member_id == staff.id))
    assert enrollment is not None and enrollment.status != CANCELLED, flash

    # 3. Cancel it from マイページ with the keyboard: the link opens the confirmation page,
    #    whose button (reached by Tab) cancels.
    page.goto(f"{live_server.url}/me")
    cancel_action = f"/enrollments/{enrollment.id}/cancel"
    tab_to(page, lambda i: i["tag"] == "a" and i["href"].startswith(cancel_action))
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("申込を取り消す")
    tab_to(page, lambda i: i["tag"] == "button" and i["action"] == cancel_action)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    expect(page.locator(".flash").first).to_be_visible()
    assert "/me" in page.url and dialogs == []
    db.session.rollback()
    assert db.session.get(Enrollment, enrollment.id).status == CANCELLED

    # 4. Play the archive with the keyboard.
    page.goto(f"{live_server.url}/archives/{archive.id}")
    page.wait_for_function("document.getElementById('player').readyState >= 1")
    tab_to(page, lambda i: i["tag"] == "video")
    page.keyboard.press("Space")
    page.wait_for_function("!document.getElementById('player').paused || "
                           "document.getElementById('player').currentTime > 0", timeout=10_000)
