"""Links to Entra's admin-consent page, and reading the tenant back from its answer.

A municipality's tenant administrator opens the link (listed on the admin tenant page),
consents, and Entra sends them back to the sign-in callback with ``admin_consent=True``,
the tenant and our signed ``state``: the tenant asked for, good for 30 days.
"""

from __future__ import annotations

from flask import current_app, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from lms.auth import entra

STATE_PREFIX = "consent."
_SALT = "manabi-admin-consent"
_MAX_AGE_SECONDS = 60 * 60 * 24 * 30


def callback_url() -> str:
    """The redirect URI registered with Entra: the sign-in callback (also the consent's)."""
    return current_app.config.get("ENTRA_REDIRECT_URI") or url_for("auth.callback", _external=True)


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def admin_consent_link(tenant_id: str) -> str:
    """The URL a tenant's administrator opens to consent to Manabi for ``tenant_id``."""
    state = STATE_PREFIX + _serializer().dumps(tenant_id)
    return entra.admin_consent_url(tenant_id, callback_url(), state=state)


def is_consent_state(state: str) -> bool:
    return state.startswith(STATE_PREFIX)


def tenant_of_consent_state(state: str) -> str | None:
    """The tenant a consent link was made for, or None (not ours, tampered with, too old)."""
    try:
        return str(_serializer().loads(state.removeprefix(STATE_PREFIX), max_age=_MAX_AGE_SECONDS))
    except BadSignature:
        return None
