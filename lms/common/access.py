"""Access checks: one explicit step per route."""

from __future__ import annotations

from functools import wraps

from flask import abort
from flask_login import current_user, login_required

from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN


def role_required(*roles: str):
    """Require a signed-in user holding one of ``roles`` (403 otherwise)."""

    def decorator(view):
        @wraps(view)
        @login_required
        def wrapped(*args, **kwargs):
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapped

    return decorator


def municipality_scope(user) -> int | None:
    """The municipality a user's administrative queries are limited to.

    None means "all municipalities" (platform admins). Municipal admins get their own
    municipality; anyone else gets their own as well (services decide what they may see).
    """
    if user.has_role(PLATFORM_ADMIN):
        return None
    return user.municipality_id


def require_municipality(user, municipality_id: int | None) -> None:
    """403 unless ``user`` may administer ``municipality_id``."""
    if user.has_role(PLATFORM_ADMIN):
        return
    if not user.has_role(MUNICIPAL_ADMIN) or municipality_id is None or municipality_id != user.municipality_id:
        from lms.audit.services import record_denied

        record_denied(user, "municipality", municipality_id)
        abort(403)
