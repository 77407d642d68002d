"""The staff roster: linking entries to Entra identities, and staff for a signed-in user."""

from __future__ import annotations

from sqlalchemy import func, select

from lms.extensions import db
from lms.roster.models import ACTIVE, StaffMember


def staff_member_for(user, *, create: bool = True) -> StaffMember | None:
    """The roster entry of ``user``: linked already, or found by sign-in name in the user's own
    municipality (only when the user's tenant belongs to it: the caller resolved
    ``user.municipality_id`` from the tenant), or created (source "sign_in")."""
    member = db.session.scalar(select(StaffMember).where(StaffMember.user_id == user.id))
    if member is not None or user.municipality_id is None:
        return member
    name = (user.email or "").strip().lower()
    if name:
        member = db.session.scalar(
            select(StaffMember).where(
                StaffMember.municipality_id == user.municipality_id,
                func.lower(StaffMember.sign_in_name) == name,
                StaffMember.user_id.is_(None),
            )
        )
    if member is None:
        if not create:
            return None
        member = StaffMember(
            municipality_id=user.municipality_id,
            employee_number=f"U{user.id:08d}",
            full_name=user.display_name,
            sign_in_name=name,
            email=user.email or "",
            status=ACTIVE,
            source="sign_in",
        )
        db.session.add(member)
    member.user_id = user.id
    member.entra_tenant_id = user.tenant_id
    member.entra_object_id = user.object_id
    db.session.flush()
    return member
