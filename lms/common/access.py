"""Access checks: one explicit step per route.

They read only the public face of the signed-in user (``has_role``, ``municipality_id``), so
this module needs no feature package. A refused cross-municipality attempt is announced
through ``access_denied``; the audit log records it.

An object (a staff member, an enrollment, a mail…) that is not the user's is answered
exactly like one that does not exist, 404 (``refuse_as_missing``, ``require_own_object``):
a 403 would tell which ids exist. Pages of a whole municipality (``?m=``) stay 403: the
municipalities are public knowledge.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn

from flask import abort
from flask_login import current_user, login_required

from lms.common.ids import parse_id
from lms.common.roles import MUNICIPAL_ADMIN, PLATFORM_ADMIN
from lms.common.signals import access_denied

ALL_MUNICIPALITIES = ("", "all")


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


def municipality_scope(
    user: Any, requested: object = None, *, exists: Callable[[int], bool] | None = None
) -> int | None:
    """The municipality a user's administrative queries are limited to (None: all of them).

    ``requested`` is the municipality a page was asked for (an id, or None / "" / "all").
    Platform admins get what they asked for: None when they asked for none (all
    municipalities, or "not chosen yet" where a page needs one), 404 for a value that is not
    the id of a municipality (``exists`` tells, where the caller wants unknown ids refused).
    Everyone else gets their own municipality: asking for another one, or being no
    municipal admin of a municipality, is a 403 (and an ``access.denied`` audit entry).
    """
    raw = "" if requested is None else str(requested).strip()
    if user.has_role(PLATFORM_ADMIN):
        if raw in ALL_MUNICIPALITIES:
            return None
        wanted = parse_id(raw)
        if wanted is None or (exists is not None and not exists(wanted)):
            abort(404)
        return wanted
    own = user.municipality_id
    if raw and raw != str(own):
        require_municipality(user, parse_id(raw))
    require_municipality(user, own)
    return own


def require_municipality(user: Any, municipality_id: int | None) -> None:
    """403 unless ``user`` may administer ``municipality_id``."""
    if user.has_role(PLATFORM_ADMIN):
        return
    if not user.has_role(MUNICIPAL_ADMIN) or municipality_id is None or municipality_id != user.municipality_id:
        access_denied.send(user, target_type="municipality", target_id=municipality_id)
        abort(403)


def refuse_as_missing(user: Any, target_type: str, target_id: object) -> NoReturn:
    """404, as for an id that names nothing, for an object that is not ``user``'s; the
    attempt is announced (an ``access.denied`` audit entry)."""
    access_denied.send(user, target_type=target_type, target_id=target_id)
    abort(404)


def require_own_object(user: Any, municipality_id: int | None, target_type: str, target_id: object) -> None:
    """404 (``refuse_as_missing``) unless ``user`` may administer the municipality an object
    belongs to (platform admins: any)."""
    if user.has_role(PLATFORM_ADMIN):
        return
    if not user.has_role(MUNICIPAL_ADMIN) or municipality_id is None or municipality_id != user.municipality_id:
        refuse_as_missing(user, target_type, target_id)
