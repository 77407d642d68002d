"""The Teams personal tab's single sign-on (lms.teams.tab): a Teams token of the person, minted
by the real OpenID Connect provider for the Teams app's application ID URI, signs them in by the
web's tid/oid rules; tokens for another audience, expired, without the scope or from an unmapped
tenant are refused; only the tab's pages may be framed, and only by Teams' hosts."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from lms.auth.models import User, UserSession
from tests import factories
from tests.auth import conftest as auth_conftest
from tests.auth.conftest import TEAMS_RESOURCE, entra_settings, new_guid

oidc_provider = auth_conftest.oidc_provider
audit_actions = auth_conftest.audit_actions

TEAMS_HOSTS = "https://teams.microsoft.com"


@pytest.fixture
def app_config(app_config, oidc_provider):
    return {**app_config, **entra_settings(oidc_provider), "LMS_TEAMS_SSO_RESOURCE": TEAMS_RESOURCE}


@pytest.fixture
def teams_person(db, oidc_provider):
    """``teams_person(code, roles=…)`` → (login, oid) of a provider account in that municipality's tenant."""

    def make(code: str = "131016", *, roles=("Manabi.Learner",), tid: str | None = None, name: str = "千代田 花子"):
        tenant = tid or factories.tenant_for(code)
        db.session.commit()
        login, oid = f"teams-{new_guid()[:8]}", new_guid()
        oidc_provider.set_account(login, oid=oid, tid=tenant, roles=list(roles), name=name,
                                  preferred_username=f"{login}@city.example.lg.jp")
        return login, oid

    return make


def _sso(client, token, tab="mypage"):
    return client.post("/teams/tab/sso", json={"token": token, "tab": tab}, headers={"Accept": "application/json"})


def test_a_teams_token_signs_the_person_in(client, db, oidc_provider, teams_person, audit_actions):
    login, oid = teams_person("131016")
    page = client.get("/teams/tab?tab=catalogue")
    assert page.status_code == 200
    cookie = page.headers["Set-Cookie"]
    assert "SameSite=None" in cookie and "Secure" in cookie and "Partitioned" in cookie
    answer = _sso(client, oidc_provider.user_token(login), tab="catalogue")
    assert answer.status_code == 200, answer.get_data(as_text=True)
    assert answer.get_json() == {"next": "/courses"}
    user = db.session.scalar(select(User).where(User.object_id == oid))
    assert user is not None and user.municipality.code == "131016"
    assert db.session.scalar(select(UserSession).where(UserSession.user_id == user.id)).method == "teams"
    assert client.get("/me").status_code == 200  # signed in, in this frame's session
    assert "auth.sign_in" in [a.action for a in audit_actions()]
    # The same person again (the tab reopened): no new session.
    assert _sso(client, oidc_provider.user_token(login)).get_json() == {"next": "/me"}
    assert len(db.session.scalars(select(UserSession).where(UserSession.user_id == user.id)).all()) == 1
    # Sign-out ends the server's session and comes back to the tab, which does not sign in again by itself.
    out = client.post("/auth/logout")
    assert out.status_code == 302 and out.headers["Location"].endswith("/teams/tab?signed_out=1")
    assert db.session.scalars(select(UserSession).where(UserSession.user_id == user.id)).all() == []
    assert client.get("/me").status_code == 302
    assert "サインアウトしました" in client.get("/teams/tab?signed_out=1").get_data(as_text=True)


def test_roles_come_from_the_token(client, db, oidc_provider, teams_person):
    login, oid = teams_person("131016", roles=["Manabi.MunicipalAdmin"])
    assert _sso(client, oidc_provider.user_token(login)).status_code == 200
    assert db.session.scalar(select(User).where(User.object_id == oid)).has_role("municipal_admin")


@pytest.mark.parametrize("case", ["other-audience", "expired", "no-scope", "api-token", "garbage", "missing"])
def test_tokens_that_are_not_the_tabs_are_refused(client, db, oidc_provider, teams_person, case):
    login, oid = teams_person("131016")
    token = {
        "other-audience": lambda: oidc_provider.user_token(login, instance="other-aud"),
        "expired": lambda: oidc_provider.user_token(login, instance="past-clock-api"),
        "no-scope": lambda: oidc_provider.user_token(login, scope="openid"),
        "api-token": lambda: oidc_provider.api_token("reader_a"),  # an application's, for the API
        "garbage": lambda: "not.a.token",
        "missing": lambda: "",
    }[case]()
    answer = _sso(client, token)
    assert answer.status_code == (400 if case == "missing" else 401), answer.get_data(as_text=True)
    body = answer.get_json()
    assert body["error"] in ("invalid_token", "no_token") and body["message"]
    assert db.session.scalar(select(User).where(User.object_id == oid)) is None
    assert client.get("/me").status_code == 302


def test_an_unmapped_tenant_is_refused(client, db, oidc_provider, teams_person):
    login, oid = teams_person(tid=new_guid())
    answer = _sso(client, oidc_provider.user_token(login))
    assert answer.status_code == 403
    assert "テナント" in answer.get_json()["message"]
    assert db.session.scalar(select(User).where(User.object_id == oid)) is None


def test_only_the_tab_and_its_learner_pages_may_be_framed_and_only_by_teams(client, db, login_as):
    course = factories.make_course(eligible=["131016"])
    factories.make_session(course)
    login_as("learner", "131016")
    for path in ("/teams/tab", "/me", "/courses", f"/courses/{course.id}", "/archives/", "/completion/history"):
        response = client.get(path)
        assert response.status_code == 200, path
        policy = response.headers["Content-Security-Policy"]
        assert f"frame-ancestors {TEAMS_HOSTS} " in policy, path
        assert "X-Frame-Options" not in response.headers, path
    for path in ("/", "/auth/login", "/admin/", "/teams/status", "/manage/courses", "/teams/tab/signed-in"):
        response = client.get(path)
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], path
        assert response.headers["X-Frame-Options"] == "DENY", path


def test_a_web_session_keeps_its_lax_cookie(client, make_user):
    response = client.get("/auth/login")
    cookie = response.headers.get("Set-Cookie", "")
    assert "SameSite=None" not in cookie and "Partitioned" not in cookie


def test_in_the_tab_pages_teams_may_not_frame_open_in_a_new_window(client, db, oidc_provider, teams_person):
    login, _oid = teams_person("131016", roles=["Manabi.MunicipalAdmin"])
    client.get("/teams/tab")
    assert _sso(client, oidc_provider.user_token(login)).status_code == 200
    page = client.get("/me").get_data(as_text=True)
    assert 'href="/courses" target' not in page  # framed by Teams too: opens in the tab
    assert 'href="/municipal" target' not in page  # the approvals (a notice's deep link) open in the tab
    assert 'href="/completion/dashboard" target="_blank" rel="noopener"' in page  # the other office pages: a window
    assert "新しいウィンドウで開きます" in page


def test_outside_the_tab_every_link_opens_in_place(client, login_as):
    login_as("municipal_admin", "131016")
    assert 'target="_blank"' not in client.get("/me").get_data(as_text=True).split("</nav>")[0]


def test_a_notices_deep_link_opens_its_page_in_the_tab(client, db, oidc_provider, teams_person):
    """An approval request's deep link carries subEntityId "approvals": after single sign-on
    the tab opens the training office's approvals, which Teams may frame; an unknown sub page
    opens the tab's own page."""
    login, _oid = teams_person("131016", roles=["Manabi.MunicipalAdmin"])
    client.get("/teams/tab")
    answer = client.post("/teams/tab/sso", json={"token": oidc_provider.user_token(login), "tab": "mypage",
                                                 "page": "approvals"})
    assert answer.get_json() == {"next": "/municipal"}
    framed = client.get("/municipal")
    assert framed.status_code == 200 and f"frame-ancestors {TEAMS_HOSTS} " in framed.headers["Content-Security-Policy"]
    for page in ("/admin/", "https://evil.example/", {"x": 1}, None):
        again = client.post("/teams/tab/sso", json={"token": oidc_provider.user_token(login), "tab": "mypage",
                                                    "page": page})
        assert again.get_json() == {"next": "/me"}, page
