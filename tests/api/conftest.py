"""The integration API against the real OpenID Connect provider of the sign-in tests: every
token is minted by its client-credentials grant (tests/node/oidc/provider.mjs)."""

from __future__ import annotations

import pytest

from tests.auth import conftest as auth_conftest
from tests.auth.conftest import API_CLIENTS, API_RESOURCE, TENANT_A, TENANT_B, TENANT_P, entra_settings

# The sign-in tests' provider (one node process per test run and conftest).
oidc_provider = auth_conftest.oidc_provider

A, B, P = "131016", "132012", "130001"  # 千代田区, 八王子市, 東京都
_TOKENS: dict[tuple[str, str], str] = {}


@pytest.fixture
def app_config(app_config, oidc_provider):
    return {**app_config, **entra_settings(oidc_provider), "LMS_API_AUDIENCE": (API_RESOURCE,)}


@pytest.fixture
def token(oidc_provider):
    """``token("reader_a")`` → an access token of that API client (cached for the run:
    they last an hour); ``instance`` names a misbehaving provider."""

    def get(client: str, instance: str = "oidc") -> str:
        key = (client, instance)
        if key not in _TOKENS:
            _TOKENS[key] = oidc_provider.api_token(client, instance)
        return _TOKENS[key]

    return get


@pytest.fixture
def clients(db):
    """The tenants mapped to A, B and the prefecture, and the API clients registered
    (all but "unknown_a"; "revoked_a" revoked; "foreign_tenant" registered for A although
    its tokens come from B's tenant)."""
    from lms.api.services import register_client, revoke_client
    from lms.municipalities.models import TenantMapping
    from tests.factories import municipality

    for tid, code in ((TENANT_A, A), (TENANT_B, B), (TENANT_P, P)):
        db.session.add(TenantMapping(tenant_id=tid, mail_domain="", municipality=municipality(code), source="admin"))
    where = {"reader_a": A, "writer_a": A, "norole_a": A, "revoked_a": A, "reader_b": B, "foreign_tenant": A,
             "platform": None}
    registered = {}
    for name, code in where.items():
        registered[name] = register_client(API_CLIENTS[name][0], name, municipality(code).id if code else None, None)
    revoke_client(registered["revoked_a"].id, None)
    db.session.commit()
    return registered


@pytest.fixture
def api(client, token, clients):
    """``api("reader_a", "get", "/api/v1/staff", ...)`` → the response, with that client's token."""

    def call(who: str | None, method: str, path: str, *, instance: str = "oidc", headers=None, **kw):
        headers = dict(headers or {})
        if who is not None:
            headers["Authorization"] = f"Bearer {token(who, instance)}"
        return client.open(path, method=method.upper(), headers=headers, **kw)

    return call


def assert_problem(response, status: int, slug: str | None = None) -> dict:
    assert response.status_code == status, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == "application/problem+json"
    body = response.get_json(force=True)
    assert {"type", "title", "status", "detail", "instance"} <= set(body)
    assert body["status"] == status
    assert body["instance"] == response.request.path
    if slug:
        assert body["type"] == f"urn:manabi:problem:{slug}"
    return body
