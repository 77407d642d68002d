"""連続講座: each part of a series attended, made up (補講), missed or still to come, for a
learner (マイページ) and their training office; the series themselves are the enrollment
area's (lms.enrollment.series)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import select

from lms.attendance.models import Attendance
from lms.common.timeutil import as_utc, utcnow
from lms.courses.models import CANCELLED as SESSION_CANCELLED
from lms.courses.models import TrainingSession
from lms.extensions import db

ATTENDED, MADE_UP, MISSED, UPCOMING, CALLED_OFF = "attended", "made_up", "missed", "upcoming", "called_off"
NOT_RECORDED = "not_recorded"  # a single session ended with no attendance recorded yet (services.learner_outcomes)


@dataclass(frozen=True)
class PartState:
    session: TrainingSession
    state: str  # ATTENDED, MADE_UP (missed, attended its make-up), MISSED, UPCOMING, CALLED_OFF
    makeup: TrainingSession | None = None  # the make-up part attended (MADE_UP) or offered


@dataclass(frozen=True)
class SeriesProgress:
    parts: list[PartState]
    threshold_pct: int

    @property
    def counted(self) -> list[PartState]:
        return [p for p in self.parts if p.state != CALLED_OFF]

    @property
    def attended(self) -> int:
        return sum(1 for p in self.counted if p.state in (ATTENDED, MADE_UP))

    @property
    def missed(self) -> list[PartState]:
        return [p for p in self.counted if p.state == MISSED]

    @property
    def needed(self) -> int:
        """How many parts must be attended (the threshold's share, rounded up)."""
        total = len(self.counted)
        return -(-total * self.threshold_pct // 100)

    @property
    def enough(self) -> bool:
        return bool(self.counted) and self.attended >= self.needed


def progress(first_ids: list[int], staff_member_ids: list[int], threshold_pct: dict[int, int],
             now: datetime | None = None) -> dict[tuple[int, int], SeriesProgress]:
    """{(first session id, staff member id): SeriesProgress} — each part attended, made up,
    missed or still to come. Two statements whatever the numbers."""
    if not first_ids or not staff_member_ids:
        return {}
    now = as_utc(now or utcnow())
    sessions = list(db.session.scalars(
        select(TrainingSession).where(TrainingSession.series_id.in_(first_ids))
        .order_by(TrainingSession.starts_at, TrainingSession.id)))
    attended = {(int(sid), int(staff)) for sid, staff in db.session.execute(
        select(Attendance.session_id, Attendance.staff_member_id).where(
            Attendance.session_id.in_([s.id for s in sessions]), Attendance.staff_member_id.in_(staff_member_ids),
            Attendance.attended.is_(True)))}
    out: dict[tuple[int, int], SeriesProgress] = {}
    for first_id in first_ids:
        members = [s for s in sessions if s.series_id == first_id]
        main = [s for s in members if s.makeup_for_id is None]
        makeups = [s for s in members if s.makeup_for_id is not None]
        for staff_id in staff_member_ids:
            states = []
            for part in main:
                offered = [m for m in makeups if m.makeup_for_id == part.id and m.status != SESSION_CANCELLED]
                if part.status == SESSION_CANCELLED:
                    states.append(PartState(part, CALLED_OFF))
                elif (part.id, staff_id) in attended:
                    states.append(PartState(part, ATTENDED))
                elif made := next((m for m in offered if (m.id, staff_id) in attended), None):
                    states.append(PartState(part, MADE_UP, made))
                elif as_utc(part.ends_at) > now:
                    states.append(PartState(part, UPCOMING))
                else:
                    states.append(PartState(part, MISSED, offered[0] if offered else None))
            out[(first_id, staff_id)] = SeriesProgress(states, threshold_pct.get(first_id, 75))
    return out


def series_progress(first: TrainingSession, staff_member_ids) -> dict[int, SeriesProgress]:
    """{staff member id: SeriesProgress} in the series whose first part is ``first`` (pages
    call it as the template global ``series_progress``)."""
    ids = [int(i) for i in staff_member_ids]
    found = progress([first.id], ids, {first.id: first.course.series_threshold_pct})
    return {staff_id: found[(first.id, staff_id)] for staff_id in ids if (first.id, staff_id) in found}


def state_labels() -> dict[str, str]:
    return {ATTENDED: _("出席"), MADE_UP: _("補講で出席"), MISSED: _("欠席"), UPCOMING: _("これから"),
            CALLED_OFF: _("中止"), NOT_RECORDED: _("出欠の記録待ち")}
