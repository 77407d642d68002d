"""What the browser tests share: axe-core's WCAG 2.1 A/AA check of a page, and a signed-in
browser without going through the sign-in pages."""

from __future__ import annotations

from pathlib import Path

from tests import factories

AXE = Path(__file__).resolve().parent / "node" / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def axe_violations(page) -> list:
    """axe-core's WCAG 2.1 A/AA violations on the page: (rule, first three targets) each."""
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("o => axe.run(document, o)", {"runOnly": {"type": "tag", "values": TAGS}})
    return [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]


def sign_in_browser(app, context, base_url: str, user) -> None:
    """The browser context signed in as ``user`` (its session cookie, as lms.auth would set it)."""
    cookie = factories.session_cookie(app, user)
    context.add_cookies([{"name": app.config["SESSION_COOKIE_NAME"], "value": cookie, "url": base_url}])
