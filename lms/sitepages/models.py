"""Site pages: the few pages about the portal itself (アクセシビリティ方針, 個人情報の取扱い),
written in Markdown and edited by platform admins. A page without a row shows its default
text (lms.sitepages.defaults); the first edit writes the row."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model


class SitePage(Model):
    __tablename__ = "site_page"

    slug: Mapped[str] = mapped_column(String(40), primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    body_md: Mapped[str] = mapped_column(Text)
    # English version; empty: the English page shows the Japanese text (marked lang="ja").
    title_en: Mapped[str] = mapped_column(String(200), default="")
    body_md_en: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))

    updated_by = relationship("User")

    def __repr__(self) -> str:
        return f"<SitePage {self.slug}>"
