"""Signing a verified Entra identity in: tenant check, user upsert by (tid, oid), roles."""

from __future__ import annotations

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError

from lms.audit.services import record_action
from lms.auth.entra import Identity
from lms.auth.models import LEARNER, User, UserSession
from lms.common.errors import NotAllowed, NotFound
from lms.common.signals import user_signed_in
from lms.common.timeutil import utcnow
from lms.extensions import db
from lms.municipalities.models import TenantMapping
from lms.municipalities.services import municipality_for_tenant


class TenantRefused(NotAllowed):
    """The identity's tenant (or its mail domain in a shared tenant) is not allowed."""


class AccountDisabled(NotAllowed):
    """The user exists but has been deactivated."""


def record_refusal(identity: Identity) -> None:
    """Audit a refused tenant (nothing else is written for it)."""
    record_action(
        None,
        "auth.tenant_refused",
        "tenant",
        identity.tenant_id,
        None,
        object_id=identity.object_id,
        mail_domain=identity.mail_domain,
    )


def record_failure(reason: str, **details) -> None:
    record_action(None, "auth.sign_in_failed", "sign_in", reason, None, **details)


def sign_in_identity(identity: Identity, *, method: str = "entra") -> User:
    """The user for a verified identity, created or updated; raises TenantRefused/AccountDisabled.

    Users are keyed by (tenant id, object id), never by e-mail. Roles follow the token's
    ``roles`` claim at every sign-in; a change raises ``session_version`` (every other session
    of the user ends) and is audited. ``user_signed_in`` is announced (the roster links the
    user to their entry). The caller starts the session and commits.
    """
    municipality = municipality_for_tenant(
        identity.tenant_id, identity.mail_domain, current_app.config.get("ENTRA_TENANTS")
    )
    if municipality is None:
        raise TenantRefused(_("所属団体のテナントは、このシステムの利用が許可されていません。"))
    try:
        with db.session.begin_nested():
            user = _upsert_user(identity, municipality.id)
    except IntegrityError:
        # Two first sign-ins of the same person at once: the other request created the row.
        user = _upsert_user(identity, municipality.id)
    if not user.active:
        raise AccountDisabled(_("このアカウントは利用停止されています。研修担当にお問い合わせください。"))

    wanted = identity.roles
    old_roles = set(user.roles)
    if user.set_roles(wanted):
        new_roles = {LEARNER} | wanted
        user.session_version = (user.session_version or 1) + 1  # sign out everywhere
        record_action(
            user, "auth.roles_changed", "user", user.id, municipality.id,
            old_roles=sorted(old_roles), new_roles=sorted(new_roles),
        )
    user.last_login_at = utcnow()
    db.session.flush()
    user_signed_in.send(user)
    record_action(
        user, "auth.sign_in", "user", user.id, municipality.id,
        method=method, tenant_id=identity.tenant_id, roles=sorted(user.roles),
    )
    return user


def _upsert_user(identity: Identity, municipality_id: int) -> User:
    user = db.session.scalar(
        select(User).where(User.tenant_id == identity.tenant_id, User.object_id == identity.object_id)
    )
    if user is None:
        user = User(
            tenant_id=identity.tenant_id,
            object_id=identity.object_id,
            display_name=identity.display_name,
            email=identity.username,
            municipality_id=municipality_id,
            session_version=1,
        )
        db.session.add(user)
        db.session.flush()
        record_action(user, "auth.user_created", "user", user.id, municipality_id, tenant_id=identity.tenant_id)
        return user
    user.display_name = identity.display_name
    user.email = identity.username
    user.municipality_id = municipality_id
    return user


def tenant_mapping_reach(mapping_id: int) -> tuple[TenantMapping, int]:
    """A tenant mapping and how many active users sign in through it (of its tenant and, when
    it names a mail domain, with an address there): who its removal would lock out."""
    row = db.session.get(TenantMapping, mapping_id)
    if row is None:
        raise NotFound(_("対応付けが見つかりません。"))
    users = select(func.count()).select_from(User).where(User.tenant_id == row.tenant_id, User.active.is_(True))
    if row.mail_domain:
        users = users.where(func.lower(User.email).like(f"%@{row.mail_domain.lower()}"))
    return row, int(db.session.scalar(users) or 0)


def sign_out_everywhere(user: User, actor) -> int:
    """End every session of ``user``, on every device (the actor's own one too when ``actor``
    is ``user``): their server-side records go and ``session_version`` rises. Audited; the
    caller commits. Returns how many sessions were open."""
    sessions = db.session.scalar(select(func.count()).select_from(UserSession).where(UserSession.user_id == user.id))
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id))
    user.session_version = (user.session_version or 1) + 1
    record_action(
        actor, "auth.signed_out_everywhere", "user", user.id, user.municipality_id,
        sessions=sessions or 0, by_self=getattr(actor, "id", None) == user.id,
    )
    return sessions or 0
