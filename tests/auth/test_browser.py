"""Sign-in and sign-out in real Chromium through the real OpenID Connect provider; axe on the pages.

The browser follows every redirect itself (Manabi → provider login and consent → Manabi), under
Manabi's real Content-Security-Policy (sign-out's redirect to the provider must be allowed by
form-action).
"""

from __future__ import annotations

import uuid

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lms.auth.models import User
from tests import factories
from tests.auth.conftest import entra_settings, serve_on_browser_port
from tests.browser import AXE
from tests.browser import axe_violations as _axe
from tests.conftest import require

pytestmark = pytest.mark.browser



@pytest.fixture
def app_config(app_config, oidc_provider):
    return {**app_config, **entra_settings(oidc_provider), "WTF_CSRF_ENABLED": True}


@pytest.fixture
def manabi_url(app, oidc_provider):
    with serve_on_browser_port(app, oidc_provider) as url:
        yield url


def _provider_sign_in(page, login: str) -> None:
    page.locator("input[name=login]").fill(login)
    page.locator("input[name=password]").fill("any-password")
    page.get_by_role("button", name="Sign-in").click()
    page.get_by_role("button", name="Continue").click()


def test_sign_in_and_out_in_a_real_browser(browser, manabi_url, db, oidc_provider, entra_account):
    tid = factories.tenant_for("131016")
    db.session.commit()
    login = entra_account(tid, roles=["Manabi.PlatformAdmin"], name="管理 太郎")
    context = browser.new_context(ignore_https_errors=True, locale="ja-JP")
    page = context.new_page()
    blocked = []
    page.on("console", lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None)

    page.goto(f"{manabi_url}/admin/tenants")  # a protected page: sent to sign in, then back
    expect(page.locator("input[name=login]")).to_be_visible()
    _provider_sign_in(page, login)

    expect(page.get_by_role("heading", level=1)).to_have_text("テナントと区市町村の対応")
    assert page.url == f"{manabi_url}/admin/tenants"
    expect(page.locator(".flash")).to_contain_text("管理 太郎 さん、ようこそ。")
    db.session.rollback()
    user = db.session.scalar(select(User).where(User.tenant_id == tid))
    assert user is not None and user.has_role("platform_admin")

    page.get_by_role("button", name="サインアウト").click()
    # The provider asks to confirm its own sign-out, then returns to Manabi's home page.
    page.get_by_role("button", name="Yes, sign me out").click()
    page.wait_for_url(f"{manabi_url}/")
    expect(page.get_by_role("link", name="サインイン", exact=True)).to_be_visible()
    assert blocked == []
    context.close()


def test_refused_tenant_page_in_a_real_browser_passes_axe(browser, manabi_url, db, oidc_provider, entra_account):
    require(AXE.exists(), "axe-core in tests/node (npm install)")
    stranger = str(uuid.uuid4())
    context = browser.new_context(ignore_https_errors=True, bypass_csp=True, locale="ja-JP")
    page = context.new_page()

    response_codes = []
    page.on("response", lambda r: response_codes.append(r.status) if "/auth/callback" in r.url else None)
    page.goto(f"{manabi_url}/auth/login")
    _provider_sign_in(page, entra_account(stranger))

    expect(page.get_by_role("heading", level=1)).to_have_text("この団体のアカウントではサインインできません")
    expect(page.locator("main")).to_contain_text(stranger)
    assert response_codes == [403]
    assert _axe(page) == []
    context.close()


def test_tenant_admin_page_passes_axe(browser, manabi_url, db, oidc_provider, entra_account):
    require(AXE.exists(), "axe-core in tests/node (npm install)")
    tid = factories.tenant_for("131016")
    db.session.commit()
    context = browser.new_context(ignore_https_errors=True, bypass_csp=True, locale="ja-JP")
    page = context.new_page()
    page.goto(f"{manabi_url}/auth/login")
    _provider_sign_in(page, entra_account(tid, roles=["Manabi.PlatformAdmin"]))
    page.goto(f"{manabi_url}/admin/tenants")
    assert _axe(page) == []

    page.get_by_label("テナント ID（ディレクトリ ID）").fill("not-a-guid")
    page.get_by_role("button", name="追加する").click()
    expect(page.locator(".error-summary")).to_contain_text("GUID")
    assert _axe(page) == []

    new_tenant = str(uuid.uuid4())
    page.get_by_label("テナント ID（ディレクトリ ID）").fill(new_tenant)
    page.get_by_label("区市町村").select_option("131130")
    page.get_by_role("button", name="追加する").click()
    expect(page.locator(".flash")).to_contain_text("テナントの対応付けを追加しました。")
    expect(page.locator("table")).to_contain_text(new_tenant)
    context.close()
