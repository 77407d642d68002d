"""Entra's multi-tenant issuer template: the ``{tenantid}`` of the discovery document is the token's tid.

The real provider of the other tests has one fixed issuer, so this one aspect is checked with
tokens signed here and the Entra metadata shape, served to Manabi's HTTP session by a
transport adapter (no network). The signing keys' cache is checked here too: an unknown key
id fetches the JWKS again, at most once per cooldown.
"""

from __future__ import annotations

import io
import json
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from lms.auth import entra

CLIENT_ID = str(uuid.uuid4())
AUTHORITY = "https://login.microsoftonline.com/organizations"
JWKS_URI = "https://login.microsoftonline.com/common/discovery/v2.0/keys"
METADATA = {
    "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
    "jwks_uri": JWKS_URI,
    "id_token_signing_alg_values_supported": ["RS256"],
}


class FakeEntra(requests.adapters.BaseAdapter):
    """Answers the discovery document and the JWKS; counts the JWKS fetches."""

    def __init__(self):
        super().__init__()
        self.keys: list[dict] = []
        self.jwks_fetches = 0

    def send(self, request, **kwargs):
        if request.url == f"{AUTHORITY}/v2.0/.well-known/openid-configuration":
            body: dict = METADATA
        elif request.url == JWKS_URI:
            self.jwks_fetches += 1
            body = {"keys": list(self.keys)}
        else:
            raise requests.ConnectionError(f"unexpected request to {request.url}")
        response = requests.Response()
        response.status_code = 200
        response.headers["Content-Type"] = "application/json"
        response.raw = io.BytesIO(json.dumps(body).encode())
        response.url = request.url
        response.request = request
        return response

    def close(self):
        pass


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ENTRA_CLIENT_ID": CLIENT_ID, "ENTRA_CLIENT_SECRET": "s" * 40,
            "ENTRA_AUTHORITY": AUTHORITY}


@pytest.fixture
def fake_entra(app):
    adapter = FakeEntra()
    entra.http_session(app).mount("https://login.microsoftonline.com/", adapter)
    return adapter


def _public_jwk(key, kid: str) -> dict:
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    public.update(kid=kid, use="sig", alg="RS256")
    return public


@pytest.fixture
def signing_key(fake_entra):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake_entra.keys = [_public_jwk(key, "entra-key")]
    return key


def _token(key, kid: str = "entra-key", **claims) -> str:
    now = int(time.time())
    tid = claims.pop("tid", str(uuid.uuid4()))
    payload = {
        "iss": f"https://login.microsoftonline.com/{tid}/v2.0",
        "aud": CLIENT_ID,
        "sub": "s",
        "iat": now,
        "nbf": now,
        "exp": now + 3600,
        "tid": tid,
        "oid": str(uuid.uuid4()),
        "preferred_username": "taro@city.example.lg.jp",
    }
    payload.update(claims)
    return jwt.encode({k: v for k, v in payload.items() if v is not None}, key, algorithm="RS256",
                      headers={"kid": kid})


def test_issuer_of_the_users_own_tenant_is_accepted(app, signing_key):
    tid = str(uuid.uuid4())
    claims = entra.validate_id_token(_token(signing_key, tid=tid), app=app)
    identity = entra.identity_from_claims(claims)
    assert identity.tenant_id == tid and identity.mail_domain == "city.example.lg.jp"


@pytest.mark.parametrize(
    "claims",
    [
        {"iss": f"https://login.microsoftonline.com/{uuid.uuid4()}/v2.0"},  # another tenant's issuer
        {"tid": None},
        {"tid": "organizations", "iss": "https://login.microsoftonline.com/organizations/v2.0"},
        {"iss": "https://sts.windows.net/x/"},
    ],
)
def test_issuer_not_matching_the_tenant_is_refused(app, signing_key, claims):
    with pytest.raises(entra.SignInError) as refused:
        entra.validate_id_token(_token(signing_key, **claims), app=app)
    assert refused.value.reason == "invalid_token"


def test_app_roles_map_to_manabi_roles():
    identity = entra.Identity(
        tenant_id="t", object_id="o", display_name="n", username="u@x.example",
        app_roles=frozenset({"Manabi.Trainer", "Manabi.PlatformAdmin", "Other.Role"}),
    )
    assert identity.roles == {"trainer", "platform_admin"}


def test_a_rotated_key_is_fetched_once_and_unknown_keys_do_not_hammer_the_provider(app, fake_entra, signing_key):
    entra.validate_id_token(_token(signing_key), app=app)
    assert fake_entra.jwks_fetches == 1
    entra.validate_id_token(_token(signing_key), app=app)
    assert fake_entra.jwks_fetches == 1  # cached

    # Within the cooldown after a fetch, an unknown key id is refused without asking again.
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake_entra.keys = [_public_jwk(signing_key, "entra-key"), _public_jwk(rotated, "rotated-key")]
    with pytest.raises(entra.SignInError) as refused:
        entra.validate_id_token(_token(rotated, kid="rotated-key"), app=app)
    assert refused.value.reason == "invalid_token" and fake_entra.jwks_fetches == 1

    # After it, the provider's new key is fetched once and accepted.
    keys = entra.signing_keys(app, JWKS_URI)
    keys.cooldown = 0
    entra.validate_id_token(_token(rotated, kid="rotated-key"), app=app)
    assert fake_entra.jwks_fetches == 2
    keys.cooldown = 3600
    for _ in range(3):
        with pytest.raises(entra.SignInError):
            entra.validate_id_token(_token(rotated, kid="made-up"), app=app)
    assert fake_entra.jwks_fetches == 2
