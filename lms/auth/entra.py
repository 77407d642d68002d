"""Microsoft Entra ID through MSAL. The only module of Manabi that imports ``msal``.

Sign-in is the authorization-code flow with PKCE (``initiate_auth_code_flow`` /
``acquire_token_by_auth_code_flow``). MSAL checks state, nonce and PKCE but does not verify
the ID token, so :func:`validate_id_token` does: signature against the provider's JWKS,
issuer (Entra's multi-tenant ``{tenantid}`` template resolved with the token's ``tid``),
audience, and ``exp``/``nbf``/``iat``. The tenant is then checked by the caller against the
tenant mappings.

Every HTTP call (MSAL's, discovery, JWKS) goes through one ``requests.Session`` that ignores
``REQUESTS_CA_BUNDLE``/proxies from the environment (``trust_env = False``) and verifies with
``ENTRA_CA_BUNDLE`` (a test provider's CA) or the system's trust store.

:func:`acquire_app_token` supplies app-only tokens (client credentials) to the Microsoft
Graph client; MSAL keeps them in its in-memory token cache until they near expiry.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
import msal
import requests
from flask import Flask, current_app

log = logging.getLogger(__name__)

# Hosts whose authorities are Entra's own (public and national clouds): passed to MSAL as
# ``authority=``; anything else is a plain OpenID Connect issuer (``oidc_authority=``).
ENTRA_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "login.microsoftonline.us",
        "login.partner.microsoftonline.cn",
    }
)
GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
# Clock skew tolerated between Manabi and the identity provider, in seconds.
LEEWAY_SECONDS = 60
_METADATA_TTL_SECONDS = 6 * 60 * 60
# A token signed with a key the cached JWKS lacks fetches the set again, at most this often.
_JWKS_REFETCH_COOLDOWN_SECONDS = 30
_HTTP_TIMEOUT = 15
GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

# Entra app-role values (the ``roles`` claim) → Manabi roles. Everyone is a learner.
APP_ROLES = {
    "Manabi.Trainer": "trainer",
    "Manabi.MunicipalAdmin": "municipal_admin",
    "Manabi.PlatformAdmin": "platform_admin",
}


class SignInError(Exception):
    """The sign-in cannot complete. ``reason`` is a short code for the audit log and the page."""

    def __init__(self, reason: str, detail: str = "", **context: Any):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.context = context


class ProviderUnavailable(SignInError):
    """The identity provider (discovery, JWKS or token endpoint) could not be reached."""

    def __init__(self, detail: str = ""):
        super().__init__("provider_unavailable", detail)


@dataclass(frozen=True)
class Identity:
    """The verified facts of an ID token that Manabi uses."""

    tenant_id: str
    object_id: str
    display_name: str
    username: str  # preferred_username (or email): a hint, never a key
    app_roles: frozenset[str] = field(default_factory=frozenset)

    @property
    def mail_domain(self) -> str:
        _, _, domain = self.username.rpartition("@")
        return domain.strip().lower()

    @property
    def roles(self) -> set[str]:
        """Manabi roles granted through Entra app roles (learner implicit, unknown values ignored)."""
        return {APP_ROLES[value] for value in self.app_roles if value in APP_ROLES}


# ---------------------------------------------------------------- configuration


def is_configured(app: Flask | None = None) -> bool:
    config = (app or current_app).config
    has_credential = bool(config.get("ENTRA_CLIENT_SECRET")) or bool(config.get("ENTRA_CLIENT_CERT_PATH"))
    return bool(config.get("ENTRA_CLIENT_ID")) and has_credential


def is_entra_authority(authority: str) -> bool:
    return (urlsplit(authority).hostname or "").lower() in ENTRA_HOSTS


def authority_origin(app: Flask) -> str | None:
    """``https://host[:port]`` of the configured authority (for the CSP form-action list)."""
    if not app.config.get("ENTRA_CLIENT_ID"):
        return None
    parts = urlsplit(app.config.get("ENTRA_AUTHORITY") or "")
    if parts.scheme != "https" or not parts.netloc:
        return None
    return f"https://{parts.netloc}"


def _authority(app: Flask) -> str:
    return (app.config.get("ENTRA_AUTHORITY") or "").rstrip("/")


def _state(app: Flask) -> dict:
    """Per-application caches (MSAL client, HTTP session, metadata, JWKS clients)."""
    return app.extensions.setdefault("manabi_entra", {"lock": threading.RLock()})


def http_session(app: Flask | None = None) -> requests.Session:
    app = app or current_app
    state = _state(app)
    with state["lock"]:
        session = state.get("http")
        if session is None:
            session = requests.Session()
            session.trust_env = False  # REQUESTS_CA_BUNDLE and proxies from the environment do not apply
            session.verify = app.config.get("ENTRA_CA_BUNDLE") or True
            # MSAL passes no timeout: a stalled provider must not hold a worker for ever.
            session.request = functools.partial(session.request, timeout=_HTTP_TIMEOUT)  # type: ignore[method-assign]
            state["http"] = session
        return session


def _credential(app: Flask) -> str | dict:
    secret = app.config.get("ENTRA_CLIENT_SECRET")
    cert_path = app.config.get("ENTRA_CLIENT_CERT_PATH")
    if cert_path:
        with open(cert_path, encoding="utf-8") as fh:
            pem = fh.read()
        credential: dict[str, str] = {"private_key": pem}
        certificate = re.search(r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", pem, re.S)
        if certificate:
            credential["public_certificate"] = certificate.group(0)
        thumbprint = app.config.get("ENTRA_CLIENT_CERT_THUMBPRINT")
        if thumbprint:
            credential["thumbprint"] = thumbprint.replace(":", "").strip()
        elif not certificate:
            raise SignInError("configuration", "ENTRA_CLIENT_CERT_PATH needs a certificate or ENTRA_CLIENT_CERT_THUMBPRINT")
        return credential
    if secret:
        return secret
    raise SignInError("configuration", "ENTRA_CLIENT_SECRET or ENTRA_CLIENT_CERT_PATH is not set")


def _client(app: Flask | None = None) -> msal.ConfidentialClientApplication:
    """The MSAL application, built once per Flask app (building it runs the authority's discovery)."""
    app = app or current_app
    state = _state(app)
    client = state.get("msal")
    if client is not None:
        return client
    session = http_session(app)
    authority = _authority(app)
    kwargs: dict[str, Any] = {
        "client_credential": _credential(app),
        "http_client": session,
        "token_cache": msal.TokenCache(),  # in memory: app-only tokens are reused until they near expiry
    }
    if is_entra_authority(authority):
        kwargs["authority"] = authority
    else:
        kwargs["oidc_authority"] = authority
    try:
        client = msal.ConfidentialClientApplication(app.config["ENTRA_CLIENT_ID"], **kwargs)
    except (requests.RequestException, ValueError) as exc:
        log.warning("identity provider discovery failed: %s", exc)
        raise ProviderUnavailable(str(exc)) from exc
    with state["lock"]:
        state.setdefault("msal", client)
        return state["msal"]


# ---------------------------------------------------------------- provider metadata and keys


def provider_metadata(app: Flask | None = None) -> dict:
    """The provider's openid-configuration (cached for a few hours)."""
    app = app or current_app
    state = _state(app)
    cached = state.get("metadata")
    if cached and cached[0] > time.monotonic():
        return cached[1]
    authority = _authority(app)
    url = f"{authority}/v2.0/.well-known/openid-configuration" if is_entra_authority(authority) else (
        f"{authority}/.well-known/openid-configuration"
    )
    try:
        response = http_session(app).get(url, timeout=_HTTP_TIMEOUT)
        response.raise_for_status()
        metadata = response.json()
    except (requests.RequestException, ValueError) as exc:
        log.warning("openid-configuration unavailable at %s: %s", url, exc)
        raise ProviderUnavailable(str(exc)) from exc
    if not isinstance(metadata, dict) or not metadata.get("issuer") or not metadata.get("jwks_uri"):
        raise ProviderUnavailable("openid-configuration without issuer or jwks_uri")
    state["metadata"] = (time.monotonic() + _METADATA_TTL_SECONDS, metadata)
    return metadata


class SigningKeys:
    """The provider's token-signing keys (its JWKS), fetched through Manabi's HTTP session.

    The set is kept for ``lifespan`` seconds. A token naming a key id the set lacks (the
    provider rotated its keys) fetches the set again at once, but at most once every
    ``cooldown`` seconds, so tokens with made-up key ids cannot hammer the provider.
    Built on PyJWT's public ``PyJWKSet``; errors are PyJWT's (``PyJWKClientConnectionError``
    when the endpoint cannot be read, ``PyJWKClientError`` for an unknown key).
    """

    def __init__(self, uri: str, session: requests.Session, *, lifespan: float = _METADATA_TTL_SECONDS,
                 cooldown: float = _JWKS_REFETCH_COOLDOWN_SECONDS):
        self.uri = uri
        self.session = session
        self.lifespan = lifespan
        self.cooldown = cooldown
        self._lock = threading.Lock()
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at: float | None = None

    def key_for_token(self, token: str) -> jwt.PyJWK:
        """The key that signed ``token`` according to its ``kid`` header (not yet verified)."""
        kid = jwt.get_unverified_header(token).get("kid")
        with self._lock:
            now = time.monotonic()
            if self._fetched_at is None or now - self._fetched_at >= self.lifespan or kid not in self._keys and now - self._fetched_at >= self.cooldown:
                self._fetch(now)
            key = self._keys.get(kid) if kid else None
        if key is None:
            raise jwt.PyJWKClientError(f"no signing key matches kid {kid!r}")
        return key

    def _fetch(self, now: float) -> None:
        try:
            response = self.session.get(self.uri, timeout=_HTTP_TIMEOUT, allow_redirects=False)
            response.raise_for_status()
            data = response.json()
        except (requests.RequestException, ValueError) as exc:
            raise jwt.PyJWKClientConnectionError(f"JWKS unavailable at {self.uri}: {exc}") from exc
        if not isinstance(data, dict):
            raise jwt.PyJWKClientError("the JWKS endpoint did not return a JSON object")
        keys = {
            key.key_id: key
            for key in jwt.PyJWKSet.from_dict(data).keys
            if key.key_id and key.public_key_use in ("sig", None)
        }
        if not keys:
            raise jwt.PyJWKClientError("the JWKS endpoint did not contain any signing keys")
        self._keys = keys
        self._fetched_at = now


def signing_keys(app: Flask, jwks_uri: str) -> SigningKeys:
    """The signing keys of ``jwks_uri``, one cache per application and endpoint."""
    state = _state(app)
    with state["lock"]:
        caches = state.setdefault("jwks", {})
        if jwks_uri not in caches:
            caches[jwks_uri] = SigningKeys(jwks_uri, http_session(app))
        return caches[jwks_uri]


def validate_id_token(id_token: str, *, nonce: str | None = None, app: Flask | None = None) -> dict:
    """Verify an ID token ourselves and return its claims; raise SignInError("invalid_token")."""
    app = app or current_app
    claims = verify_token(id_token, audience=app.config["ENTRA_CLIENT_ID"], require=("iss", "aud", "exp", "iat", "sub"),
                          app=app)
    if nonce is not None and claims.get("nonce") != hashlib.sha256(nonce.encode("ascii")).hexdigest():
        raise SignInError("invalid_token", "nonce mismatch")
    return claims


def validate_access_token(token: str, *, audience: str | list[str], app: Flask | None = None) -> dict:
    """Verify an app-only access token (client credentials) sent to Manabi's API and return
    its claims: the same keys, issuer and clock rules as ID tokens, for ``audience`` (the API's
    app ID URI or client id). A delegated token (one carrying ``scp``: a user's) is refused.
    Raises SignInError("invalid_token") or ProviderUnavailable."""
    app = app or current_app
    claims = verify_token(token, audience=audience, require=("iss", "aud", "exp", "iat"), app=app)
    if "scp" in claims:
        raise SignInError("invalid_token", "a delegated (user) token, not an application's")
    return claims


def verify_token(token: str, *, audience: str | list[str], require: tuple[str, ...], app: Flask) -> dict:
    """A JWT issued by the configured provider: signature against its JWKS, issuer (Entra's
    ``{tenantid}`` template resolved with the token's ``tid``), audience, ``exp``/``nbf``/``iat``."""
    metadata = provider_metadata(app)
    try:
        signing_key = signing_keys(app, metadata["jwks_uri"]).key_for_token(token)
    except jwt.PyJWKClientConnectionError as exc:
        raise ProviderUnavailable(str(exc)) from exc
    except jwt.PyJWTError as exc:
        raise SignInError("invalid_token", f"signing key: {exc}") from exc
    algorithms = [a for a in metadata.get("id_token_signing_alg_values_supported", ["RS256"]) if a != "none"]
    try:
        claims = jwt.decode(
            token,
            signing_key.key,
            algorithms=[a for a in algorithms if a.startswith(("RS", "PS", "ES"))] or ["RS256"],
            audience=audience,
            leeway=LEEWAY_SECONDS,
            options={"require": list(require)},
        )
    except jwt.PyJWTError as exc:
        raise SignInError("invalid_token", f"{type(exc).__name__}: {exc}") from exc
    if int(claims["iat"]) > time.time() + LEEWAY_SECONDS:
        raise SignInError("invalid_token", "issued in the future")
    tid = str(claims.get("tid") or "")
    expected_issuer = metadata["issuer"]
    if "{tenantid}" in expected_issuer:
        if not GUID.match(tid):
            raise SignInError("invalid_token", "tid missing or not a GUID")
        expected_issuer = expected_issuer.replace("{tenantid}", tid)
    if claims["iss"] != expected_issuer:
        raise SignInError("invalid_token", f"issuer {claims['iss']!r} is not {expected_issuer!r}")
    return claims


def identity_from_claims(claims: dict) -> Identity:
    tid = str(claims.get("tid") or "").lower()
    oid = str(claims.get("oid") or "").lower()
    if not GUID.match(tid) or not GUID.match(oid):
        raise SignInError("invalid_token", "tid/oid missing or not GUIDs")
    username = str(claims.get("preferred_username") or claims.get("email") or claims.get("upn") or "").strip()
    roles = claims.get("roles") or []
    if isinstance(roles, str):
        roles = [roles]
    return Identity(
        tenant_id=tid,
        object_id=oid,
        display_name=str(claims.get("name") or username or oid)[:200],
        username=username[:320],
        app_roles=frozenset(str(r) for r in roles),
    )


# ---------------------------------------------------------------- the sign-in flow


def begin_sign_in(redirect_uri: str, *, login_hint: str | None = None) -> dict:
    """Start the authorization-code flow (PKCE, state, nonce). Returns MSAL's flow dict;
    the caller keeps it in the signed session and sends the browser to ``flow["auth_uri"]``."""
    client = _client()
    # The response comes back as a query string (a top-level GET), not form_post: the flow is
    # bound to the browser by the SameSite=Lax session cookie, which a cross-site form_post
    # would not carry. The code is single-use, PKCE-bound, and the callback redirects at once
    # (Referrer-Policy: same-origin), so MSAL's advice to use form_post is declined knowingly.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="response_mode='form_post' is recommended", category=UserWarning)
        return client.initiate_auth_code_flow(scopes=[], redirect_uri=redirect_uri, login_hint=login_hint)


def complete_sign_in(flow: dict, auth_response: dict) -> Identity:
    """Redeem the code of ``auth_response`` for the flow and verify the ID token.

    Raises SignInError: "provider_error" (error=… from the provider), "state" (the response
    does not belong to the flow), "token_refused" (the token endpoint refused, e.g. a replayed
    code), "invalid_token" (our own validation), "provider_unavailable".
    """
    if auth_response.get("error"):
        raise SignInError(
            "provider_error",
            str(auth_response.get("error_description") or "")[:300],
            error=str(auth_response["error"])[:100],
        )
    client = _client()
    nonce = flow.get("nonce")
    try:
        result = client.acquire_token_by_auth_code_flow(dict(flow), auth_response)
    except ValueError as exc:  # state mismatch, neither code nor error
        raise SignInError("state", str(exc)[:300]) from exc
    except requests.RequestException as exc:
        raise ProviderUnavailable(str(exc)) from exc
    except RuntimeError as exc:  # MSAL's nonce check
        raise SignInError("invalid_token", str(exc)[:300]) from exc
    if "error" in result:
        raise SignInError(
            "token_refused",
            str(result.get("error_description") or "")[:300],
            error=str(result.get("error"))[:100],
        )
    id_token = result.get("id_token")
    if not id_token:
        raise SignInError("invalid_token", "no id_token in the token response")
    claims = validate_id_token(id_token, nonce=nonce)
    return identity_from_claims(claims)


def end_session_url(post_logout_redirect_uri: str, app: Flask | None = None) -> str | None:
    """The provider's end-session URL that returns to ``post_logout_redirect_uri``, or None."""
    app = app or current_app
    try:
        endpoint = provider_metadata(app).get("end_session_endpoint")
    except ProviderUnavailable:
        endpoint = None
    if not endpoint:
        authority = _authority(app)
        if not is_entra_authority(authority):
            return None
        endpoint = f"{authority}/oauth2/v2.0/logout"
    query = urlencode({"post_logout_redirect_uri": post_logout_redirect_uri, "client_id": app.config["ENTRA_CLIENT_ID"]})
    return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"


def admin_consent_url(tenant_id: str, redirect_uri: str, state: str | None = None, app: Flask | None = None) -> str:
    """The URL a municipality's tenant administrator opens to consent to Manabi for the tenant."""
    app = app or current_app
    params = {"client_id": app.config.get("ENTRA_CLIENT_ID") or "", "redirect_uri": redirect_uri}
    if state:
        params["state"] = state
    query = urlencode(params)
    return f"https://login.microsoftonline.com/{tenant_id}/adminconsent?{query}"


# ---------------------------------------------------------------- app-only tokens for Graph


def acquire_app_token(scopes: tuple[str, ...] = (GRAPH_DEFAULT_SCOPE,), tenant_id: str | None = None) -> str:
    """An app-only access token (client credentials) for ``scopes``.

    ``tenant_id`` asks the token of a municipality's own tenant (where Manabi has admin
    consent); None uses the configured authority. Tokens are cached in memory by MSAL.
    Raises SignInError("token_refused") or ProviderUnavailable.
    """
    app = current_app
    if tenant_id is not None:
        if not GUID.match(tenant_id):
            raise SignInError("configuration", f"not a tenant id: {tenant_id!r}")
        client = _tenant_client(app, tenant_id)
    else:
        client = _client(app)
    try:
        result = client.acquire_token_for_client(scopes=list(scopes))
    except requests.RequestException as exc:
        raise ProviderUnavailable(str(exc)) from exc
    if "access_token" not in result:
        raise SignInError(
            "token_refused",
            str(result.get("error_description") or "")[:300],
            error=str(result.get("error"))[:100],
        )
    return result["access_token"]


def _tenant_client(app: Flask, tenant_id: str) -> msal.ConfidentialClientApplication:
    authority = _authority(app)
    if not is_entra_authority(authority):
        # A test provider has no tenants: the configured authority serves them all.
        return _client(app)
    state = _state(app)
    clients = state.setdefault("tenant_clients", {})
    client = clients.get(tenant_id)
    if client is None:
        parts = urlsplit(authority)
        try:
            client = msal.ConfidentialClientApplication(
                app.config["ENTRA_CLIENT_ID"],
                client_credential=_credential(app),
                authority=f"{parts.scheme}://{parts.netloc}/{tenant_id}",
                http_client=http_session(app),
                token_cache=msal.TokenCache(),
            )
        except (requests.RequestException, ValueError) as exc:
            raise ProviderUnavailable(str(exc)) from exc
        with state["lock"]:
            client = clients.setdefault(tenant_id, client)
    return client
