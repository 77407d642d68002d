"""Demo sign-in is never available in production; sign-in configuration edge cases."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from lms.auth.models import User
from tests import factories


def test_demo_sign_in_is_refused_in_production_even_if_flag_set(app, client, db):
    user = factories.make_user("platform_admin", "131016", is_demo=True)
    assert client.get("/auth/demo").status_code == 200
    app.config.update(LMS_ENV="production", LMS_DEMO_LOGIN=True)

    assert client.get("/auth/demo").status_code == 404
    response = client.post("/auth/demo", data={"user_id": user.id})
    assert response.status_code == 404
    with client.session_transaction() as sess:
        assert "_user_id" not in sess
    assert "デモ用サインイン" not in client.get("/auth/login").get_data(as_text=True)


def test_production_refuses_to_start_with_demo_sign_in(monkeypatch):
    from config import ConfigError
    from lms import create_app

    monkeypatch.setenv("SECRET_KEY", "p" * 48)
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/unused")
    monkeypatch.setenv("LMS_DEMO_LOGIN", "1")
    with pytest.raises(ConfigError, match="LMS_DEMO_LOGIN"):
        create_app("production")


def test_demo_sign_in_renews_session_and_ignores_off_site_next(client, db):
    user = factories.make_user("learner", "131016", is_demo=True)
    with client.session_transaction() as sess:
        sess["planted"] = "x"
    response = client.post("/auth/demo", data={"user_id": user.id, "next": "//evil.example/"})
    assert response.status_code == 302 and response.headers["Location"] == "/"
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess["_user_id"] == user.get_id()
        assert sess["auth_method"] == "demo"
    # A demo user signs out locally only (no identity provider involved).
    out = client.post("/auth/logout")
    assert out.headers["Location"] == "/"


def test_login_page_without_entra_explains_and_offers_demo(client):
    page = client.get("/auth/login").get_data(as_text=True)
    assert "まだ設定されていません" in page
    assert "/auth/demo" in page
    assert client.get("/auth/login/microsoft").status_code == 404
    assert client.get("/auth/callback?code=x&state=y").status_code == 404


@pytest.fixture
def unreachable_provider(app):
    app.config.update(
        ENTRA_CLIENT_ID="manabi",
        ENTRA_CLIENT_SECRET="s" * 40,
        ENTRA_AUTHORITY="https://127.0.0.1:9/oidc",  # nothing listens on the discard port
        LMS_DEMO_LOGIN=False,
    )


def test_unreachable_provider_gives_a_503_page_not_a_500(client, unreachable_provider):
    response = client.get("/auth/login")
    assert response.status_code == 503
    assert "サインインサービスに接続できません" in response.get_data(as_text=True)


def test_login_without_any_user_created_when_nothing_configured(client, db):
    client.get("/auth/login")
    assert db.session.query(User).count() == 0


# ---------------------------------------------------------------- redirect URI behind a proxy


def test_redirect_uri_stays_https_behind_a_proxy(app_config, oidc_provider, _schema):
    from lms import create_app
    from tests.auth.conftest import entra_settings

    app = create_app({**app_config, **entra_settings(oidc_provider), "LMS_PROXY_COUNT": 1})
    try:
        response = app.test_client().get(
            "/auth/login", headers={"X-Forwarded-Proto": "https", "X-Forwarded-Host": "manabi.example.lg.jp"}
        )
        assert response.status_code == 302
        query = parse_qs(urlsplit(response.headers["Location"]).query)
        assert query["redirect_uri"] == ["https://manabi.example.lg.jp/auth/callback"]
        for key in ("state", "nonce", "code_challenge"):
            assert query[key][0]
        assert query["code_challenge_method"] == ["S256"]
    finally:
        from lms.extensions import db

        with app.app_context():
            db.engine.dispose()


def test_configured_redirect_uri_wins(app, client, oidc_provider):
    from tests.auth.conftest import entra_settings

    app.config.update(entra_settings(oidc_provider), ENTRA_REDIRECT_URI="https://manabi.example.lg.jp/auth/callback")
    response = client.get("/auth/login")
    query = parse_qs(urlsplit(response.headers["Location"]).query)
    assert query["redirect_uri"] == ["https://manabi.example.lg.jp/auth/callback"]


# ---------------------------------------------------------------- app-only tokens for Graph


def test_acquire_app_token_uses_client_credentials_and_caches(app, oidc_provider):
    import requests

    from lms.auth import entra
    from tests.auth.conftest import entra_settings

    app.config.update(entra_settings(oidc_provider))
    with app.test_request_context():
        token = entra.acquire_app_token(scopes=("api.read",))
        assert token and isinstance(token, str)
        assert entra.acquire_app_token(scopes=("api.read",)) == token  # from MSAL's in-memory cache
        with pytest.raises(entra.SignInError):
            entra.acquire_app_token(scopes=("api.read",), tenant_id="not-a-tenant")
    # The provider knows the token: it is a real one.
    introspection = requests.post(
        f"{oidc_provider.issuer}/token/introspection",
        data={"token": token, "client_id": "manabi-test-client",
              "client_secret": "manabi-test-client-secret-0123456789abcdef"},
        verify=oidc_provider.ca, timeout=10,
    )
    assert introspection.status_code == 200
    assert introspection.json()["active"] is True
    assert introspection.json()["scope"] == "api.read"


def test_logout_needs_the_csrf_token(app, client, db):
    user = factories.make_user("learner", "131016", is_demo=True)
    factories.sign_in(client, user)
    app.config["WTF_CSRF_ENABLED"] = True
    assert client.post("/auth/logout").status_code == 400
    with client.session_transaction() as sess:
        assert sess["_user_id"] == user.get_id()
