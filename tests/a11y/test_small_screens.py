"""Small screens (320 × 844, the width WCAG 1.4.10 asks pages to reflow to): no page a
learner, trainer or municipal admin reaches scrolls sideways, in either language; the course page's sessions are cards with the 申込 button on screen; chart
labels stay legible; the changed pages pass axe at that width; at 1280 px tables are tables."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.a11y.conftest import demo_user, run_axe, sign_in
from tests.a11y.test_axe import _pages_for

pytestmark = pytest.mark.browser

PHONE = {"width": 320, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
SIDEWAYS = "document.documentElement.scrollWidth > window.innerWidth"
# What sticks out (for the failure message): the outermost elements past the right edge.
STICKING_OUT = """() => Array.from(document.querySelectorAll('body *')).filter(el => {
  const r = el.getBoundingClientRect();
  return r.right > window.innerWidth + 1
    && (!el.parentElement || el.parentElement.getBoundingClientRect().right <= window.innerWidth + 1);
}).slice(0, 5).map(el => el.tagName.toLowerCase() + (el.className ? '.' + String(el.className).split(' ').join('.') : '')
  + ' ' + Math.round(el.getBoundingClientRect().right) + ' in ' + el.parentElement.tagName + '.' + el.parentElement.className + ':' + getComputedStyle(el.parentElement).overflowX)"""
# The smallest rendered font size of the chart texts (SVG text, in CSS pixels).
# Lines each table header's text is laid out on (a header broken one character a line has as
# many lines as characters).
HEADER_LINES = """() => Array.from(document.querySelectorAll('table thead th')).filter(th => th.offsetParent)
  .map(th => { const r = document.createRange(); r.selectNodeContents(th);
    const tops = new Set(Array.from(r.getClientRects()).map(b => Math.round(b.top)));
    return [th.innerText.trim(), tops.size]; })"""
CHART_TEXT_PX = """() => Array.from(document.querySelectorAll('figure.chart svg text')).map(t => {
  const box = t.getBoundingClientRect(); return box.height; })"""

ROLES = {
    "learner": ("131016", "learner0"),
    "trainer": ("130001", "trainer"),
    "municipal_admin": ("131016", "admin"),
}


def _context(browser, viewport, locale="ja-JP"):
    # bypass_csp: only so that axe can be injected (as in test_axe.py).
    return browser.new_context(locale=locale, timezone_id="Asia/Tokyo", viewport=viewport, bypass_csp=True)


@pytest.mark.parametrize("locale", ["ja-JP", "en-US"])
@pytest.mark.parametrize("role", list(ROLES))
def test_no_page_scrolls_sideways_at_320px(app, a11y_world, live_server, browser, role, locale):
    from tests.a11y.conftest import ROLES as ALL_ROLES

    pages = _pages_for(app, role, a11y_world)
    assert len(pages) >= 5, pages
    context = _context(browser, PHONE, locale)
    page = context.new_page()
    sideways = {}
    try:
        sign_in(page, live_server.url, demo_user(*ALL_ROLES[role]))
        for url in pages:
            page.goto(live_server.url + url)
            if page.evaluate(SIDEWAYS):
                sideways[url] = page.evaluate(STICKING_OUT)
    finally:
        context.close()
    assert not sideways, f"{role} ({locale}): pages scrolling sideways at 320 px: {sideways}"


def test_course_page_sessions_are_cards_with_the_button_on_screen(a11y_world, live_server, browser):
    course = a11y_world["course"]
    session = a11y_world["session"]
    context = _context(browser, PHONE)
    page = context.new_page()
    try:
        sign_in(page, live_server.url, demo_user("131016", "learner0"))
        page.goto(f"{live_server.url}/courses/{course.id}")
        assert not page.evaluate(SIDEWAYS)
        button = page.locator(f"form[action='/sessions/{session.id}/enroll'] button")
        expect(button).to_be_visible()
        box = button.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], box
        # Each cell says what it is (its column's header), as the table's header row is hidden.
        cell = page.locator("table.table-cards td[data-label='空席']").first
        label = cell.evaluate("td => getComputedStyle(td, '::before').content")
        assert "空席" in label
        assert page.locator("table.table-cards thead").first.evaluate("h => getComputedStyle(h).position") == "absolute"
        assert page.evaluate("() => window.scrollX") == 0
        violations = run_axe(page)
        assert not violations, violations
        page.goto(f"{live_server.url}/me")
        assert not page.evaluate(SIDEWAYS)
        violations = run_axe(page)
        assert not violations, violations
    finally:
        context.close()


def test_at_1280px_the_sessions_are_still_a_table(a11y_world, live_server, browser):
    course = a11y_world["course"]
    context = _context(browser, DESKTOP)
    page = context.new_page()
    try:
        sign_in(page, live_server.url, demo_user("131016", "learner0"))
        page.goto(f"{live_server.url}/courses/{course.id}")
        table = page.locator("table.table-cards").first
        assert table.evaluate("t => getComputedStyle(t).display") == "table"
        header = page.locator("table.table-cards thead th").first
        expect(header).to_be_visible()
        assert table.locator("td").first.evaluate("td => getComputedStyle(td, '::before').content") in ("none", "normal")
    finally:
        context.close()


@pytest.mark.parametrize("role", ["municipal_admin"])
def test_dashboard_charts_are_legible_at_320px(a11y_world, live_server, browser, role):
    context = _context(browser, PHONE)
    page = context.new_page()
    try:
        sign_in(page, live_server.url, demo_user("131016", "admin"))
        page.goto(f"{live_server.url}/completion/dashboard")
        assert not page.evaluate(SIDEWAYS)
        sizes = page.evaluate(CHART_TEXT_PX)
        assert sizes, "the dashboard draws its charts"
        assert min(sizes) >= 11, sizes
        # The dashboard's tables keep their headers whole (keep-all; they scroll in their box).
        headers = page.evaluate(HEADER_LINES)
        assert headers
        broken = [(text, lines) for text, lines in headers if len(text) > 2 and (lines >= len(text) or lines > 3)]
        assert not broken, broken
        violations = run_axe(page)
        assert not violations, violations
        # The approval list and the roster are cards, every cell named, the action on screen.
        for path in ("/municipal", "/roster"):
            page.goto(live_server.url + path)
            assert not page.evaluate(SIDEWAYS), path
            rows = page.locator("table.table-cards tbody tr")
            assert rows.count() > 0, path
            assert rows.first.evaluate("tr => getComputedStyle(tr).display") == "block"
            labels = rows.first.locator("td").evaluate_all(
                "tds => tds.map(td => getComputedStyle(td, '::before').content)")
            assert labels and all(label not in ("none", "normal", '""') for label in labels), labels
            for link in rows.first.locator("a, button").all():
                box = link.bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (path, box)
            violations = run_axe(page)
            assert not violations, (path, violations)
    finally:
        context.close()


def test_the_session_form_fits_a_320px_screen(a11y_world, live_server, browser):
    """The session form's quota table scrolls inside its own box at 320 px (WCAG 1.4.10), in
    both languages: in a fieldset, which is as wide as its content by default, the English
    table pushed the whole page sideways."""
    course, session = a11y_world["course"], a11y_world["session"]
    for locale in ("ja-JP", "en-US"):
        context = _context(browser, PHONE, locale)
        page = context.new_page()
        try:
            sign_in(page, live_server.url, demo_user(*ROLES["trainer"]))
            for url in (f"/manage/courses/{course.id}/sessions/new", f"/manage/sessions/{session.id}/edit"):
                page.goto(live_server.url + url)
                expect(page.locator("fieldset table")).to_have_count(1)
                assert not page.evaluate(SIDEWAYS), (locale, url, page.evaluate(STICKING_OUT))
        finally:
            context.close()
