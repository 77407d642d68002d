"""axe-core (WCAG 2.1 A/AA) in real Chromium on every page each role reaches, in Japanese and
English, plus forms showing their errors: zero violations."""

from __future__ import annotations

import pytest

from tests.a11y.conftest import ROLES, demo_user, pattern, report_run, run_axe, sign_in
from tests.factories import sign_in as sign_in_client
from tests.security.htmlcheck import crawl

pytestmark = pytest.mark.browser

SKIP = ("/auth/logout", "/static/", "/hello", "/healthz")
PER_ROLE = 50

# (role, url, how): pages showing validation errors ("clear-post": its fields emptied first).
FORMS_WITH_ERRORS = [
    ("trainer", "/manage/courses/new", "post"),
    ("trainer", "/archives/manage/new", "post"),
    ("municipal_admin", "/roster/new", "post"),
    ("platform_admin", "/completion/assignments/new", "post"),
    ("platform_admin", "/admin/audit/?date_from=2026-05-01&date_to=2026-04-01", "get"),
    ("platform_admin", "/admin/pages/privacy", "clear-post"),
    ("municipal_admin", "/admin/webhooks", "post"),
]


def _extra(role, world) -> list[str]:
    """Pages reached by forms or the player rather than by links, and the footer's pages."""
    site = ["/accessibility", "/privacy"]
    if role == "anonymous":
        return [*site, "/teams/tab"]  # (the Teams tab's page, opened outside Teams)
    archive = world["archive"]
    onsite = f"/attendance/sessions/{world['onsite_session'].id}"
    by_role = {
        # The Shift_JIS export's warning page (a name outside Windows-31J in the world), and
        # the printed lists of the municipality's participants.
        "municipal_admin": ["/roster/export.csv?encoding=cp932", f"{onsite}/participants", f"{onsite}/sign-in-sheet",
                            "/reports"],
        "learner": [f"/activities/{world['survey'].id}", f"/activities/{world['prework'].id}"],
        # The printed lists and the check-in QR codes of a session held on site.
        "trainer": [f"{onsite}/sign-in-sheet", f"{onsite}/participants", f"{onsite}/qr", f"{onsite}/qr/poster",
                    f"/manage/courses/{world['course'].id}/prerequisites",
                    f"/sessions/{world['selection_session'].id}/selection",
                    f"/manage/courses/{world['course'].id}/activities", f"/manage/activities/{world['survey'].id}",
                    f"/manage/activity-questions/{world['survey'].questions[0].id}",
                    f"/manage/activities/{world['survey'].id}/results", f"/manage/activities/{world['quiz'].id}",
                    f"/manage/courses/{world['course'].id}/question-bank"],
        "platform_admin": ["/admin/pages/accessibility", "/manage/paths", "/manage/paths/new", "/teams/app",
                           "/teams/viva/"],
    }
    return site + by_role.get(role, []) + ["/settings/notices", "/approvals", "/courses?q=Teams",
                                           f"/courses/{world['course'].id}", "/archives/",
                                           f"/archives/{archive.id}", "/archives/search?q=会議"]


def _pages_for(app, role, world) -> list[str]:
    """Every HTML page the role reaches by links (one per kind of page), found with the test client."""
    client = app.test_client()
    if ROLES[role]:
        sign_in_client(client, demo_user(*ROLES[role]))
    starts = ["/", "/auth/login", "/auth/demo"] if role == "anonymous" else ["/", *_extra(role, world)]
    found = crawl(client, starts, limit=200, skip=SKIP)
    pages, kinds = [], set()
    for url, response in found.items():
        if response.status_code != 200 or response.mimetype != "text/html":
            continue
        kind = pattern(url)
        if kind in kinds:
            continue
        kinds.add(kind)
        pages.append(url)
    return pages[:PER_ROLE]


@pytest.fixture
def browser_context_args(browser_context_args):
    return {**browser_context_args, "bypass_csp": True}


@pytest.mark.parametrize("lang", ["ja", "en"])
@pytest.mark.parametrize("role", list(ROLES))
def test_every_page_passes_axe(app, a11y_world, live_server, browser, role, lang):
    pages = _pages_for(app, role, a11y_world)
    assert len(pages) >= (3 if role == "anonymous" else 5), pages
    context = browser.new_context(locale="ja-JP" if lang == "ja" else "en-US", bypass_csp=True,
                                  timezone_id="Asia/Tokyo")
    page = context.new_page()
    problems = {}
    try:
        if ROLES[role]:
            sign_in(page, live_server.url, demo_user(*ROLES[role]))
        for url in pages:
            page.goto(live_server.url + url)
            assert page.locator("html").get_attribute("lang") == lang, url
            violations = run_axe(page)
            if violations:
                problems[url] = violations
    finally:
        context.close()
    print(f"axe: {role} {lang}: {len(pages)} pages")
    report_run(f"pages-{role}", lang, [(role, url) for url in pages], {(role, url): v for url, v in problems.items()},
               browser)
    assert not problems, problems


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_forms_with_errors_pass_axe(app, a11y_world, live_server, browser, lang):
    problems, checked = {}, []
    routes = app.url_map.bind("localhost")
    for role in ("trainer", "municipal_admin", "platform_admin"):
        forms = [(url, how) for r, url, how in FORMS_WITH_ERRORS if r == role and routes.test(url.split("?")[0])]
        context = browser.new_context(locale="ja-JP" if lang == "ja" else "en-US", bypass_csp=True)
        page = context.new_page()
        try:
            sign_in(page, live_server.url, demo_user(*ROLES[role]))
            for url, how in forms:
                page.goto(live_server.url + url)
                if how == "clear-post":
                    page.evaluate("() => document.querySelectorAll('main form[method=post i] :is(input[type=text], "
                                  "textarea)').forEach(e => { e.value = ''; })")
                if how in ("post", "clear-post"):
                    page.evaluate("() => document.querySelectorAll('form').forEach(f => f.noValidate = true)")
                    page.locator("main form[method=post i] :is(button:not([type]), button[type=submit], "
                                 "input[type=submit])").last.click()
                    page.wait_for_load_state()
                assert page.locator(".error-summary, .error-message, [aria-invalid=true]").count() > 0, \
                    f"{url}: no error shown after an empty submit"
                violations = run_axe(page)
                checked.append((role, url))
                if violations:
                    problems[(role, url)] = violations
        finally:
            context.close()
    report_run("forms", lang, checked, problems, browser, with_errors=True)
    assert len(checked) >= 4
    assert not problems, problems
