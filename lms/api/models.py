"""Client applications registered for the integration API."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model


class ApiClient(Model):
    """An Entra application (its application id, the token's ``azp``/``appid``) allowed to call
    the API for one municipality, or for all of them (``municipality_id`` NULL: the platform
    client of the metropolitan government). Revoked clients stay, for the audit log."""

    __tablename__ = "api_client"

    id: Mapped[int] = mapped_column(primary_key=True)
    application_id: Mapped[str] = mapped_column(String(36), unique=True)
    municipality_id: Mapped[int | None] = mapped_column(ForeignKey("municipality.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    municipality = relationship("Municipality")

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    @property
    def is_platform(self) -> bool:
        return self.municipality_id is None

    def __repr__(self) -> str:
        return f"<ApiClient {self.application_id} {self.name}>"
