"""Entra's multi-tenant issuer template: the ``{tenantid}`` of the discovery document is the token's tid.

The real provider of the other tests has one fixed issuer, so this one aspect is checked with
tokens signed here and the Entra metadata shape (keys pre-loaded in the JWKS cache, no network).
"""

from __future__ import annotations

import time
import uuid

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from lms.auth import entra

CLIENT_ID = str(uuid.uuid4())
JWKS_URI = "https://login.microsoftonline.com/common/discovery/v2.0/keys"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "ENTRA_CLIENT_ID": CLIENT_ID, "ENTRA_CLIENT_SECRET": "s" * 40,
            "ENTRA_AUTHORITY": "https://login.microsoftonline.com/organizations"}


@pytest.fixture
def signing_key(app):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    public.update(kid="entra-key", use="sig", alg="RS256")
    state = entra._state(app)
    state["metadata"] = (
        time.monotonic() + 600,
        {
            "issuer": "https://login.microsoftonline.com/{tenantid}/v2.0",
            "jwks_uri": JWKS_URI,
            "id_token_signing_alg_values_supported": ["RS256"],
        },
    )
    client = entra._jwks_client(app, JWKS_URI)
    client.jwk_set_cache.put({"keys": [public]})
    return key


def _token(key, **claims) -> str:
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
                      headers={"kid": "entra-key"})


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
