"""Every route requires sign-in except /auth/*, static files and the explicit public list."""

from __future__ import annotations

import re

from lms.common.public import is_public_endpoint

# The short list of public views outside /auth/*: keep it short, and in step with @public.
EXPECTED_PUBLIC = {
    "main.home",
    "main.healthz",
    "main.readyz",
    "main.hello",
    "main.set_language",
    "completion.verify_certificate",
    "teams.graph_notifications",
    # Viva Learning's course thumbnail: shown by Viva Learning to the tenant's users.
    "teams_viva.thumbnail",
    # The Teams tab signs people in itself: its page (which asks Teams for a token), the
    # token's check, the pop-up window's start (the web sign-in) and the pop-up's hand-over.
    "teams_tab.tab",
    "teams_tab.sso",
    "teams_tab.sign_in_window",
    "teams_tab.redeem",
    # Archive media behind a short-lived signed link (user, viewer cookie, expiry): the
    # Python twin of nginx's secure_link check, which never sees the session either.
    "archives.media",
    # アクセシビリティ方針 and 個人情報の取扱い, linked from every page's footer.
    "site.accessibility",
    "site.privacy",
    # The integration API: no browser session; every view checks its bearer token itself
    # (lms.api.auth.requires: 401 problem without one; tests/api/test_matrix.py), and its
    # OpenAPI document and its browsable docs are public.
    "api-docs.openapi_json",
    "api-docs.openapi_rapidoc",
    "api_v1.municipalities",
    "api_v1.courses",
    "api_v1.sessions",
    "api_v1.staff",
    "api_v1.staff_member",
    "api_v1.put_staff_member",
    "api_v1.enrollments",
    "api_v1.enrollment",
    "api_v1.completions",
    "api_v1.attendance",
    "api_v1.viewing",
    "api_v1.post_staff_bulk",
    "api_v1.roster_job",
    "api_v1.roster_job_results",
}


def _sample_url(rule) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: "1" if "id" in m.group(1) else "x", rule.rule)


def test_public_views_are_exactly_the_declared_list(app):
    public = {
        ep for ep in app.view_functions
        if is_public_endpoint(app, ep) and ep != "static" and not ep.startswith("auth.")
    }
    assert public <= EXPECTED_PUBLIC, f"undeclared public views: {public - EXPECTED_PUBLIC}"


def test_every_other_route_sends_anonymous_users_to_sign_in(app, client):
    checked = 0
    for rule in app.url_map.iter_rules():
        if is_public_endpoint(app, rule.endpoint):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            response = client.open(_sample_url(rule), method=method)
            assert response.status_code in (302, 401), (rule.rule, method, response.status_code)
            if response.status_code == 302:
                assert "/auth/login" in response.headers["Location"], (rule.rule, method)
            checked += 1
    assert checked >= 1
