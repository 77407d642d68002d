"""Users: Entra identities keyed by (tenant ID, object ID), never by e-mail."""

from __future__ import annotations

from datetime import datetime

from flask_login import UserMixin
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

# The role names are common vocabulary (access checks use them); every area imports them from here.
from lms.common.roles import LEARNER, MUNICIPAL_ADMIN, PLATFORM_ADMIN, ROLES, TRAINER  # noqa: F401
from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model

# How a person wants their notices (申込の結果, 承認依頼, 前日のお知らせ, …): in their Teams
# activity feed, by mail, or both. Teams falls back to mail wherever it cannot reach them.
NOTICE_BOTH = "both"
NOTICE_TEAMS = "teams"
NOTICE_MAIL = "mail"
NOTICE_CHANNELS = (NOTICE_BOTH, NOTICE_TEAMS, NOTICE_MAIL)


class User(UserMixin, Model):
    __tablename__ = "user_account"
    __table_args__ = (UniqueConstraint("tenant_id", "object_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36))
    object_id: Mapped[str] = mapped_column(String(36))
    display_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320), default="")
    municipality_id: Mapped[int | None] = mapped_column(ForeignKey("municipality.id"), index=True)
    active: Mapped[bool] = mapped_column(default=True)
    # Raised whenever roles change or an admin signs the user out everywhere;
    # sessions carrying an older value are refused.
    session_version: Mapped[int] = mapped_column(default=1)
    locale: Mapped[str | None] = mapped_column(String(5))
    notice_channel: Mapped[str] = mapped_column(String(5), default=NOTICE_BOTH, server_default=NOTICE_BOTH)
    is_demo: Mapped[bool] = mapped_column(default=False)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    municipality = relationship("Municipality")
    role_rows: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )
    staff_member = relationship("StaffMember", back_populates="user", uselist=False)

    # Flask-Login
    @property
    def is_active(self) -> bool:
        return self.active

    def get_id(self) -> str:
        return f"{self.id}:{self.session_version}"

    @property
    def roles(self) -> set[str]:
        return {LEARNER} | {row.role for row in self.role_rows}

    def has_role(self, *roles: str) -> bool:
        return bool(self.roles & set(roles))

    def set_roles(self, roles: set[str]) -> bool:
        """Replace the granted roles (learner is implicit); True when anything changed."""
        wanted = set(roles) - {LEARNER}
        current = {row.role for row in self.role_rows}
        if wanted == current:
            return False
        self.role_rows = [row for row in self.role_rows if row.role in wanted] + [
            UserRole(role=role) for role in sorted(wanted - current)
        ]
        return True

    def __repr__(self) -> str:
        return f"<User {self.id} {self.display_name}>"


class UserRole(Model):
    __tablename__ = "user_role"

    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), primary_key=True)

    user: Mapped[User] = relationship(back_populates="role_rows")


class UserSession(Model):
    """One signed-in browser: its random id travels in the signed session cookie and every
    request must find this row. Signing out deletes it, so a copy of the cookie is refused
    at once; signing out everywhere deletes all of a user's rows (and raises the user's
    ``session_version``)."""

    __tablename__ = "user_session"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user_account.id", ondelete="CASCADE"), index=True)
    method: Mapped[str] = mapped_column(String(10))  # "entra" or "demo"
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
