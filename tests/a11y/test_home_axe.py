"""axe on each role's home page (its own sections: schedule, tasks, figures) in both languages."""

from __future__ import annotations

import pytest

from tests.a11y.conftest import ROLES, demo_user, run_axe, sign_in

PANELS = {"learner": None, "trainer": "#trainer-home", "municipal_admin": "#municipal-home",
          "platform_admin": "#platform-home"}


@pytest.mark.parametrize("lang", ["ja", "en"])
def test_each_roles_home_passes_axe(app, a11y_world, live_server, browser, lang):
    problems = {}
    for role, panel in PANELS.items():
        context = browser.new_context(locale="ja-JP" if lang == "ja" else "en-US", bypass_csp=True,
                                      timezone_id="Asia/Tokyo")
        page = context.new_page()
        try:
            sign_in(page, live_server.url, demo_user(*ROLES[role]))
            page.goto(live_server.url + "/")
            assert page.locator("html").get_attribute("lang") == lang
            if panel is not None:
                assert page.locator(panel).count() == 1, (role, panel)
            violations = run_axe(page)
            if violations:
                problems[role] = violations
        finally:
            context.close()
    assert not problems, problems
