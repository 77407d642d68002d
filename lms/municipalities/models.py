"""The prefecture and its municipalities (区市町村), and the Entra tenants that belong to them."""

from __future__ import annotations

from datetime import datetime

from flask_babel import lazy_gettext as _l
from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model

KINDS = ("都道府県", "特別区", "市", "町", "村")
# What a page shows for a kind (a group heading: 市 → Cities in English); the stored values
# are KINDS, whatever the language.
KIND_LABELS = {"都道府県": _l("都道府県"), "特別区": _l("特別区"), "市": _l("市"), "町": _l("町"), "村": _l("村")}


def kind_label(kind: str) -> str:
    """The kind's label in the page's language (an unknown kind as stored)."""
    label = KIND_LABELS.get(kind)
    return str(label) if label is not None else kind


class Municipality(Model):
    __tablename__ = "municipality"

    id: Mapped[int] = mapped_column(primary_key=True)
    # 全国地方公共団体コード: 6 digits including the check digit, e.g. 131016 千代田区.
    code: Mapped[str] = mapped_column(String(6), unique=True)
    name: Mapped[str] = mapped_column(String(40))
    kana: Mapped[str] = mapped_column(String(80))
    kind: Mapped[str] = mapped_column(String(8))
    sort_order: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)

    tenants: Mapped[list[TenantMapping]] = relationship(back_populates="municipality")

    @property
    def kind_label(self) -> str:
        return kind_label(self.kind)

    @property
    def is_prefecture(self) -> bool:
        return self.kind == "都道府県"

    def __repr__(self) -> str:
        return f"<Municipality {self.code} {self.name}>"


class TenantMapping(Model):
    """An allowed Entra tenant, mapped to a municipality.

    A tenant shared by several municipalities (the prefecture's own) has one row per
    mail domain; ``mail_domain`` empty means "every user of this tenant".
    """

    __tablename__ = "tenant_mapping"
    __table_args__ = (UniqueConstraint("tenant_id", "mail_domain"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    tenant_id: Mapped[str] = mapped_column(String(36), index=True)
    mail_domain: Mapped[str] = mapped_column(String(255), default="")
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), index=True)
    # Where the row came from: "env" (ENTRA_TENANTS) or "admin".
    source: Mapped[str] = mapped_column(String(10), default="admin")
    consented_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    municipality: Mapped[Municipality] = relationship(back_populates="tenants")
