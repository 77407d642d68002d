"""Sign-in through a real OpenID Connect provider: the whole redirect dance, no mock of MSAL."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, select

from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, TRAINER, User
from lms.roster.models import StaffMember
from tests import factories
from tests.auth.conftest import (
    CLIENT_ID,
    browse_to_callback,
    entra_settings,
    new_browser,
    new_guid,
    sign_in,
    start_sign_in,
)


@pytest.fixture
def app_config(app_config, oidc_provider):
    return {**app_config, **entra_settings(oidc_provider)}


def _page(response) -> str:
    return response.get_data(as_text=True)


def _users(db) -> list[User]:
    db.session.rollback()
    return list(db.session.scalars(select(User).order_by(User.id)))


def _signed_in_user_id(client):
    with client.session_transaction() as sess:
        return sess.get("_user_id")


def test_first_sign_in_creates_user_in_municipality_with_roles_and_roster(
    client, db, oidc_provider, entra_account, audit_actions
):
    tid = factories.tenant_for("131016")  # 千代田区
    db.session.commit()
    oid = new_guid()
    login = entra_account(tid, oid=oid, roles=["Manabi.Trainer", "Manabi.Unknown"],
                          username="Hanako.Joho@City.Chiyoda.example.lg.jp", name="情報 花子")

    response = sign_in(client, oidc_provider, login, next_url="/admin/")

    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/"
    home = client.get("/")
    assert "情報 花子" in _page(home)
    [user] = _users(db)
    assert (user.tenant_id, user.object_id) == (tid, oid)
    assert user.municipality.code == "131016"
    assert user.roles == {"learner", TRAINER}
    assert user.email == "Hanako.Joho@City.Chiyoda.example.lg.jp"
    assert user.last_login_at is not None
    member = db.session.scalar(select(StaffMember).where(StaffMember.user_id == user.id))
    assert member is not None and member.municipality_id == user.municipality_id
    assert member.entra_object_id == oid
    assert [e.target_id for e in audit_actions("auth.sign_in")] == [str(user.id)]
    assert _signed_in_user_id(client) == user.get_id()


def test_second_sign_in_refreshes_roles_and_ends_other_sessions(
    app, db, oidc_provider, entra_account, audit_actions
):
    tid = factories.tenant_for("131032")  # 港区
    db.session.commit()
    oid = new_guid()
    login = entra_account(tid, oid=oid, roles=["Manabi.PlatformAdmin", "Manabi.MunicipalAdmin"])
    first, second = app.test_client(), app.test_client()

    assert sign_in(first, oidc_provider, login).status_code == 302
    assert first.get("/admin/").status_code == 200
    [user] = _users(db)
    assert user.roles == {"learner", PLATFORM_ADMIN, MUNICIPAL_ADMIN}
    version = user.session_version

    # The Entra admin removes both roles and grants Trainer; the user signs in elsewhere.
    oidc_provider.set_account(login, **{**oidc_provider.accounts[login], "roles": ["Manabi.Trainer"]})
    assert sign_in(second, oidc_provider, login).status_code == 302

    [user] = _users(db)
    assert user.roles == {"learner", TRAINER}
    assert user.session_version == version + 1
    # The old session is gone: sent to sign in again.
    old = first.get("/admin/")
    assert old.status_code == 302 and "/auth/login" in old.headers["Location"]
    assert second.get("/admin/").status_code == 403
    [change] = [e for e in audit_actions("auth.roles_changed") if e.details["old_roles"] != ["learner"]]
    assert change.details == {
        "old_roles": ["learner", "municipal_admin", "platform_admin"],
        "new_roles": ["learner", "trainer"],
    }


def test_unknown_tenant_is_refused_with_403_and_nothing_created(client, db, oidc_provider, entra_account, audit_actions):
    stranger = new_guid()
    login = entra_account(stranger, roles=["Manabi.PlatformAdmin"])

    response = sign_in(client, oidc_provider, login)

    assert response.status_code == 403
    page = _page(response)
    assert "この団体のアカウントではサインインできません" in page
    assert stranger in page
    assert _users(db) == []
    assert db.session.scalar(select(func.count()).select_from(StaffMember)) == 0
    [entry] = audit_actions("auth.tenant_refused")
    assert entry.target_id == stranger and entry.actor_id is None
    assert audit_actions("auth.sign_in") == []
    assert _signed_in_user_id(client) is None


def test_shared_tenant_maps_by_mail_domain_from_environment(app, db, oidc_provider, entra_account):
    shared = new_guid()
    app.config["ENTRA_TENANTS"] = (
        f"{shared}@city.shinjuku.example.lg.jp=131041, {shared}@metro.tokyo.example.lg.jp=130001"
    )
    shinjuku = entra_account(shared, username="a.user@City.Shinjuku.example.lg.jp")
    outsider = entra_account(shared, username="someone@elsewhere.example.jp")

    assert sign_in(app.test_client(), oidc_provider, shinjuku).status_code == 302
    assert sign_in(app.test_client(), oidc_provider, outsider).status_code == 403
    [user] = _users(db)
    assert user.municipality.code == "131041"  # 新宿区
    # The environment mapping is read, not written, at sign-in.
    from lms.municipalities.models import TenantMapping

    assert db.session.scalar(select(func.count()).select_from(TenantMapping).where(TenantMapping.tenant_id == shared)) == 0


def test_tampered_state_is_refused(client, db, oidc_provider, entra_account, audit_actions):
    tid = factories.tenant_for("131016")
    db.session.commit()
    login = entra_account(tid)
    callback = browse_to_callback(new_browser(oidc_provider), start_sign_in(client), login)
    parts = urlsplit(callback)
    query = parse_qs(parts.query)
    query["state"] = [query["state"][0][:-2] + "xx"]

    response = client.get(parts.path, query_string={k: v[0] for k, v in query.items()})

    assert response.status_code == 400
    assert "サインインを完了できませんでした" in _page(response)
    assert _users(db) == []
    assert [e.target_id for e in audit_actions("auth.sign_in_failed")] == ["state"]


def test_replayed_code_is_refused(app, client, db, oidc_provider, entra_account, audit_actions):
    tid = factories.tenant_for("131016")
    db.session.commit()
    login = entra_account(tid)
    callback = browse_to_callback(new_browser(oidc_provider), start_sign_in(client), login)
    cookie_with_flow = client.get_cookie("manabi_session").value
    parts = urlsplit(callback)
    url = f"{parts.path}?{parts.query}"
    assert client.get(url).status_code == 302  # signed in

    # The same browser replays the callback: the flow was used up.
    again = client.get(url)
    assert again.status_code == 400
    # Someone holding the old cookie (flow and code) replays it: the provider refuses the code.
    attacker = app.test_client()
    attacker.set_cookie("manabi_session", cookie_with_flow)
    stolen = attacker.get(url)
    assert stolen.status_code == 400
    assert "サインインを完了できませんでした" in _page(stolen)
    assert _signed_in_user_id(attacker) is None
    assert len(_users(db)) == 1
    reasons = [e.target_id for e in audit_actions("auth.sign_in_failed")]
    assert reasons == ["state", "token_refused"]
    assert audit_actions("auth.sign_in_failed")[-1].details["error"] == "invalid_grant"


def test_provider_error_shows_japanese_page(client, db, oidc_provider, entra_account, audit_actions):
    login = entra_account(new_guid())
    callback = browse_to_callback(new_browser(oidc_provider), start_sign_in(client), login, abort=True)
    parts = urlsplit(callback)
    assert "error=access_denied" in parts.query

    response = client.get(f"{parts.path}?{parts.query}")

    assert response.status_code == 400
    assert "サインインが拒否されました" in _page(response)
    [entry] = audit_actions("auth.sign_in_failed")
    assert entry.target_id == "provider_error" and entry.details["error"] == "access_denied"
    assert _users(db) == []


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:alert(1)"])
def test_next_pointing_off_site_is_ignored(client, db, oidc_provider, entra_account, target):
    tid = factories.tenant_for("131016")
    db.session.commit()
    response = sign_in(client, oidc_provider, entra_account(tid), next_url=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/"


def test_sign_in_renews_the_session(client, db, oidc_provider, entra_account):
    tid = factories.tenant_for("131016")
    db.session.commit()
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
    auth_uri = start_sign_in(client)
    before = client.get_cookie("manabi_session").value
    callback = browse_to_callback(new_browser(oidc_provider), auth_uri, entra_account(tid))
    parts = urlsplit(callback)
    assert client.get(f"{parts.path}?{parts.query}").status_code == 302
    after = client.get_cookie("manabi_session").value
    assert after != before
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess["_user_id"]
        assert "entra_flows" not in sess


@pytest.mark.parametrize("stamp", ["last_seen", "signed_in_at"])
def test_idle_and_absolute_timeouts_end_the_session(app, client, db, oidc_provider, entra_account, stamp):
    tid = factories.tenant_for("131016")
    db.session.commit()
    login = entra_account(tid, roles=["Manabi.PlatformAdmin"])
    assert sign_in(client, oidc_provider, login).status_code == 302
    assert client.get("/admin/").status_code == 200
    limit = app.config["LMS_SESSION_IDLE_MINUTES" if stamp == "last_seen" else "LMS_SESSION_ABSOLUTE_MINUTES"]
    with client.session_transaction() as sess:
        sess[stamp] = int(time.time()) - limit * 60 - 5

    response = client.get("/admin/")

    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    assert _signed_in_user_id(client) is None
    # The tenant pages (under /auth/ before they moved to /admin/) obey the same limits.
    assert sign_in(client, oidc_provider, login).status_code == 302
    with client.session_transaction() as sess:
        sess[stamp] = int(time.time()) - limit * 60 - 5
    tenants = client.get("/admin/tenants")
    assert tenants.status_code == 302 and "/auth/login" in tenants.headers["Location"]


def test_logout_clears_session_and_ends_provider_session(client, db, oidc_provider, entra_account):
    tid = factories.tenant_for("131016")
    db.session.commit()
    browser = new_browser(oidc_provider)
    assert sign_in(client, oidc_provider, entra_account(tid), browser=browser).status_code == 302
    assert _signed_in_user_id(client)

    response = client.post("/auth/logout")

    assert response.status_code == 302
    location = urlsplit(response.headers["Location"])
    assert f"https://{location.netloc}{location.path}" == f"{oidc_provider.issuer}/session/end"
    query = parse_qs(location.query)
    assert query["post_logout_redirect_uri"] == ["http://localhost/"]
    assert query["client_id"] == [CLIENT_ID]
    assert _signed_in_user_id(client) is None
    assert client.get("/admin/").status_code == 302
    # The provider ends its own session and sends the browser back to Manabi's home page.
    back = browse_to_callback(browser, response.headers["Location"], None)
    assert back.startswith("http://localhost/")


def test_logout_after_idle_timeout_still_ends_provider_session(app, client, db, oidc_provider, entra_account):
    tid = factories.tenant_for("131016")
    db.session.commit()
    assert sign_in(client, oidc_provider, entra_account(tid)).status_code == 302
    with client.session_transaction() as sess:
        sess["last_seen"] = int(time.time()) - app.config["LMS_SESSION_IDLE_MINUTES"] * 60 - 5
    response = client.post("/auth/logout")
    assert response.headers["Location"].startswith(f"{oidc_provider.issuer}/session/end?")
    assert _signed_in_user_id(client) is None


def test_logout_form_action_allowed_by_csp(client, oidc_provider):
    csp = client.get("/").headers["Content-Security-Policy"]
    assert f"form-action 'self' {oidc_provider.base}" in csp


@pytest.mark.parametrize(
    ("instance", "why"),
    [("other-key", "signed by another key"), ("other-aud", "another audience"), ("past-clock", "expired")],
)
def test_invalid_id_tokens_are_refused(app, client, db, oidc_provider, entra_account, audit_actions, instance, why):
    app.config.update(entra_settings(oidc_provider, instance))
    tid = factories.tenant_for("131016")
    db.session.commit()
    login = entra_account(tid, roles=["Manabi.PlatformAdmin"])

    response = sign_in(client, oidc_provider, login)

    assert response.status_code == 400, why
    assert "サインイン情報を確認できませんでした" in _page(response)
    assert _users(db) == []
    assert _signed_in_user_id(client) is None
    [entry] = audit_actions("auth.sign_in_failed")
    assert entry.target_id == "invalid_token"
    expected = {"other-key": "InvalidSignatureError", "other-aud": "InvalidAudienceError",
                "past-clock": "ExpiredSignatureError"}[instance]
    assert expected in entry.details["detail"]


def test_login_page_offers_both_when_demo_is_on(app, client, oidc_provider):
    app.config["LMS_DEMO_LOGIN"] = True
    page = client.get("/auth/login?next=/admin/")
    assert page.status_code == 200
    html = _page(page)
    assert "Microsoft アカウントでサインイン" in html
    assert "/auth/login/microsoft?next=/admin/" in html
    assert "/auth/demo?next=/admin/" in html
    start = client.get("/auth/login/microsoft?next=/admin/")
    assert start.status_code == 302
    assert start.headers["Location"].startswith(f"{oidc_provider.issuer}/auth?")
    assert "code_challenge_method=S256" in start.headers["Location"]


def test_sign_in_with_a_client_certificate_instead_of_a_secret(app, client, db, oidc_provider, entra_account):
    from tests.auth.conftest import CERT_CLIENT_ID

    app.config.update(
        ENTRA_CLIENT_ID=CERT_CLIENT_ID, ENTRA_CLIENT_SECRET=None, ENTRA_CLIENT_CERT_PATH=oidc_provider.client_pem
    )
    tid = factories.tenant_for("131016")
    db.session.commit()

    response = sign_in(client, oidc_provider, entra_account(tid, roles=["Manabi.Trainer"]))

    assert response.status_code == 302
    [user] = _users(db)
    assert user.roles == {"learner", TRAINER}
