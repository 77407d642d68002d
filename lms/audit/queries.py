"""Reading the audit log: filters shared by the page and its export."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import Select, String, cast, or_, select

from lms.audit.models import AuditLog
from lms.common.database import like_escaped
from lms.common.ids import parse_id
from lms.common.timeutil import TOKYO
from lms.extensions import db


@dataclass(frozen=True)
class AuditFilter:
    action: str = ""
    actor: str = ""
    municipality_id: int | None = None
    date_from: date | None = None  # Tokyo calendar days, both inclusive
    date_to: date | None = None
    target: str = ""

    def as_params(self) -> dict[str, str]:
        """The filter as query-string parameters (for pagination links and the export form)."""
        params = {
            "action": self.action,
            "actor": self.actor,
            "municipality": str(self.municipality_id or ""),
            "date_from": self.date_from.isoformat() if self.date_from else "",
            "date_to": self.date_to.isoformat() if self.date_to else "",
            "target": self.target,
        }
        return {k: v for k, v in params.items() if v}


def _tokyo_midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=TOKYO)


def select_entries(flt: AuditFilter) -> Select:
    """Entries matching ``flt``, newest first."""
    stmt = select(AuditLog)
    if flt.action:
        stmt = stmt.where(AuditLog.action == flt.action)
    if flt.actor:
        actor = flt.actor.strip()
        actor_id = parse_id(actor)
        if actor_id is not None:
            stmt = stmt.where(AuditLog.actor_id == actor_id)
        else:
            stmt = stmt.where(AuditLog.actor_label.ilike(f"%{like_escaped(actor)}%", escape="\\"))
    if flt.municipality_id:
        stmt = stmt.where(AuditLog.municipality_id == flt.municipality_id)
    if flt.date_from:
        stmt = stmt.where(AuditLog.occurred_at >= _tokyo_midnight(flt.date_from))
    if flt.date_to:
        stmt = stmt.where(AuditLog.occurred_at < _tokyo_midnight(flt.date_to + timedelta(days=1)))
    if flt.target:
        target = flt.target.strip()
        pattern = f"%{like_escaped(target)}%"
        stmt = stmt.where(
            or_(
                AuditLog.target_id == target,
                AuditLog.target_type == target,
                cast(AuditLog.target_type, String).concat(":").concat(AuditLog.target_id).ilike(pattern, escape="\\"),
            )
        )
    return stmt.order_by(AuditLog.occurred_at.desc(), AuditLog.id.desc())


def known_actions() -> list[str]:
    return list(db.session.scalars(select(AuditLog.action).distinct().order_by(AuditLog.action)))
