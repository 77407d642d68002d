"""Web security: CSRF on every state-changing route, CSP without unsafe-inline, cookie flags,
no open redirects."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from werkzeug.exceptions import HTTPException

from lms.common.web import TEAMS_FRAME_ANCESTORS, TEAMS_FRAME_ENDPOINTS
from tests.factories import make_user, sign_in
from tests.security.htmlcheck import crawl, dom_problems

STATE_CHANGING = {"POST", "PUT", "PATCH", "DELETE"}
# Routes that legitimately accept state-changing requests without a CSRF token, and why.
CSRF_EXEMPT = {
    # Microsoft Graph change notifications: server-to-server, no browser session; each
    # notification is authenticated by its clientState secret (lms/teams).
    "teams.graph_notifications",
    # The integration API: no cookies, each call authenticated by its bearer token (a browser
    # session counts for nothing there: tests/api/test_access.py).
    "api_v1.put_staff_member",
    "api_v1.post_staff_bulk",
}
# Exempt from the global check because they speak the tus upload protocol (fetch with
# headers, not forms): the view itself validates the X-CSRFToken header and answers 403.
CSRF_CHECKED_IN_VIEW = {
    "archives.tus_create",
    "archives.tus_resource",
    "archives.tus_options",  # OPTIONS only: changes nothing
}


def _sample(rule) -> str:
    return re.sub(r"<(?:([^:<>]+):)?([^<>]+)>",
                  lambda m: "1" if (m.group(1) in ("int", None) and "id" in m.group(2)) or m.group(1) == "int" else "x",
                  rule.rule)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}


@pytest.fixture
def superuser(db):
    return make_user({"trainer", "municipal_admin", "platform_admin"}, "130001", name="全権 テスト")


def test_every_state_changing_route_refuses_a_request_without_csrf_token(app, client, superuser):
    sign_in(client, superuser)
    checked, exempt_seen = [], set()
    for rule in app.url_map.iter_rules():
        methods = rule.methods & STATE_CHANGING
        if not methods:
            continue
        if rule.endpoint in CSRF_EXEMPT:
            exempt_seen.add(rule.endpoint)
            continue
        if rule.endpoint in CSRF_CHECKED_IN_VIEW:
            for method in sorted(methods):
                response = client.open(_sample(rule), method=method, headers={"Tus-Resumable": "1.0.0"})
                assert response.status_code == 403, (rule.endpoint, method, response.status_code)
                assert "ページの有効期限が切れました" in response.get_data(as_text=True), rule.endpoint
                checked.append((rule.endpoint, method))
            continue
        for method in sorted(methods):
            response = client.open(_sample(rule), method=method, data={"x": "1"},
                                   headers={"Accept": "text/html"})
            assert response.status_code == 400, (rule.endpoint, method, response.status_code)
            assert "フォームの有効期限が切れました" in response.get_data(as_text=True), rule.endpoint
            checked.append((rule.endpoint, method))
    assert len(checked) >= 20
    assert exempt_seen <= CSRF_EXEMPT


def test_a_wrong_csrf_token_is_refused_too(app, client, superuser):
    sign_in(client, superuser)
    response = client.post("/lang", data={"lang": "en", "csrf_token": "forged"})
    assert response.status_code == 400


def test_csrf_exemptions_are_only_the_declared_ones(app):
    from lms.extensions import csrf

    exempt_views = {name.rsplit(".", 1)[-1] for name in csrf._exempt_views}
    exempt_endpoints = {ep for ep, view in app.view_functions.items()
                        if f"{view.__module__}.{view.__name__}" in csrf._exempt_views}
    blueprints = set(csrf._exempt_blueprints)
    assert not blueprints, f"whole blueprints exempt from CSRF: {blueprints}"
    assert exempt_endpoints <= CSRF_EXEMPT | CSRF_CHECKED_IN_VIEW, exempt_endpoints - CSRF_EXEMPT - CSRF_CHECKED_IN_VIEW
    assert len(exempt_views) == len(exempt_endpoints)


def test_a_token_from_the_page_is_accepted(client):
    page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    response = client.post("/lang", data={"lang": "en", "next": "/", "csrf_token": token})
    assert response.status_code == 302


# ---------------------------------------------------------------- CSP and headers on every page


def _assert_csp(url, response):
    csp = response.headers.get("Content-Security-Policy", "")
    assert csp, url
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, url
    directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in csp.split(";") if d.strip())
    assert directives.get("script-src") == "'self'", url
    assert directives.get("style-src") == "'self'", url
    assert directives.get("object-src") == "'none'", url
    if _teams_frameable(url):  # the Teams tab and its learner pages: Teams' hosts only
        assert directives.get("frame-ancestors") == " ".join(TEAMS_FRAME_ANCESTORS), url
        assert "X-Frame-Options" not in response.headers, url
    else:
        assert directives.get("frame-ancestors") == "'none'", url
        assert response.headers.get("X-Frame-Options") == "DENY", url
    assert response.headers.get("X-Content-Type-Options") == "nosniff", url


def _teams_frameable(url: str) -> bool:
    from flask import current_app

    path = urlsplit(url).path
    try:
        endpoint, _args = current_app.url_map.bind("localhost").match(path)
    except HTTPException:
        return False
    return endpoint in current_app.extensions.get(TEAMS_FRAME_ENDPOINTS, ())


@pytest.fixture
def demo_data(db):
    from lms.demo import load_demo

    load_demo()
    db.session.commit()


def _demo_user(code: str, key: str):
    from sqlalchemy import select

    from lms.auth.models import User
    from lms.demo import demo_uuid
    from lms.extensions import db

    return db.session.scalar(select(User).where(User.object_id == demo_uuid("user", code, key)))


DEMO_ROLES = {
    "learner": ("131016", "learner0"),
    "trainer": ("130001", "trainer"),
    "municipal_admin": ("131016", "admin"),
    "platform_admin": ("130001", "platform"),
}


def test_every_reachable_page_has_a_strict_csp_and_no_inline_code(app, demo_data):
    pages = 0
    for role, (code, key) in [("anonymous", (None, None)), *DEMO_ROLES.items()]:
        browser = app.test_client()
        if code:
            sign_in(browser, _demo_user(code, key))
        found = crawl(browser, ["/", "/auth/login", "/auth/demo"], limit=120)
        for url, response in found.items():
            assert response.status_code < 500, (role, url, response.status_code)
            if response.mimetype == "text/html":
                _assert_csp(url, response)
                problems = dom_problems(response.get_data(as_text=True))
                assert not problems, (role, url, problems)
                pages += 1
    assert pages >= 30


def test_error_pages_have_the_csp(client):
    for response in (client.get("/no-such-page"), client.post("/healthz")):
        assert response.status_code in (404, 405)
        _assert_csp(response.request.path, response)


# ---------------------------------------------------------------- cookies


def _set_cookies(response) -> list[str]:
    return response.headers.getlist("Set-Cookie")


def test_session_cookie_is_httponly_and_samesite(client, db):
    from lms.demo import load_demo

    load_demo()
    db.session.commit()
    page = client.get("/auth/demo").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    user = _demo_user("131016", "learner0")
    response = client.post("/auth/demo", data={"user_id": user.id, "csrf_token": token})
    assert response.status_code == 302
    cookies = _set_cookies(response)
    assert cookies
    for cookie in cookies:
        flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
        assert "httponly" in flags, cookie
        assert "samesite" in flags, cookie
        assert re.search(r"SameSite=(Lax|Strict)", cookie), cookie


def test_production_cookies_are_secure(monkeypatch, database_url, tmp_path):
    from lms import create_app
    from lms.extensions import db

    monkeypatch.setenv("SECRET_KEY", "p" * 48)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/unused")
    monkeypatch.delenv("LMS_DEMO_LOGIN", raising=False)
    monkeypatch.delenv("ENTRA_CA_BUNDLE", raising=False)
    # (config.py read the environment when it was imported: the key is handed over here too.)
    app = create_app({"LMS_ENV": "production", "SQLALCHEMY_DATABASE_URI": database_url, "SECRET_KEY": "p" * 48,
                      "LMS_STORAGE_DIR": str(tmp_path / "a"), "LMS_LOG_REQUESTS": False})
    try:
        assert app.config["SESSION_COOKIE_SECURE"] and app.config["REMEMBER_COOKIE_SECURE"]
        client = app.test_client()
        response = client.get("/auth/login", base_url="https://manabi.example.lg.jp")
        cookies = _set_cookies(response)
        assert cookies, "the sign-in page sets the session cookie (CSRF token)"
        for cookie in cookies:
            assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=" in cookie, cookie
        assert "max-age=31536000" in response.headers["Strict-Transport-Security"]
    finally:
        with app.app_context():
            db.engine.dispose()
        from lms.common.logging import configure_logging

        configure_logging("text")


# ---------------------------------------------------------------- open redirects

EVIL_NEXT = [
    "//evil.example", "///evil.example", "////evil.example/path", "https://evil.example", "http://evil.example/",
    "https:evil.example", "http:/evil.example", "/\\evil.example", "\\\\evil.example", "\\/evil.example",
    "/\t/evil.example", "/\n/evil.example", " //evil.example", "%2F%2Fevil.example", "/%2F/evil.example",
    "javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,<script>alert(1)</script>",
    "//evil.example@manabi.example", "https://manabi.example.evil.example", "/.\\evil.example",
    "//%65vil.example", "〳〳evil.example", "／／evil.example", "http://127.0.0.1.evil.example",
]


def _assert_same_site(location: str, what):
    assert location, what
    parts = urlsplit(location)
    assert parts.scheme in ("", "http", "https"), (what, location)
    assert parts.netloc in ("", "localhost"), (what, location)
    assert not location.startswith(("//", "/\\", "\\")), (what, location)
    assert "evil" not in parts.netloc, (what, location)


@pytest.mark.parametrize("target", EVIL_NEXT)
def test_no_open_redirect_on_login_lang_and_demo(app, client, db, target):
    app.config["WTF_CSRF_ENABLED"] = False
    user = make_user("learner", is_demo=True)

    response = client.post("/lang", data={"lang": "en", "next": target})
    assert response.status_code == 302
    _assert_same_site(response.headers["Location"], ("lang", target))

    response = client.post("/auth/demo", data={"user_id": user.id, "next": target})
    assert response.status_code == 302
    _assert_same_site(response.headers["Location"], ("demo", target))

    # Signed in now: /auth/login?next= redirects straight away.
    response = client.get("/auth/login", query_string={"next": target})
    assert response.status_code == 302
    _assert_same_site(response.headers["Location"], ("login", target))

    page = client.get("/auth/demo", query_string={"next": target}).get_data(as_text=True)
    assert 'value="' + target + '"' not in page or target.startswith("/") and not target.startswith("//")


def test_safe_next_keeps_a_genuine_relative_target(app, client, db):
    app.config["WTF_CSRF_ENABLED"] = False
    response = client.post("/lang", data={"lang": "en", "next": "/courses?q=Teams"})
    assert response.headers["Location"] == "/courses?q=Teams"
