"""Viewing progress: the unique seconds of a video a staff member actually watched, credited no
faster than real time. Completing a video publishes ``viewing_changed`` (lms.common.signals)."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from lms.archives.models import READY, VIDEO, ArchiveFile, ViewingProgress
from lms.common.errors import Conflict, InvalidInput
from lms.common.signals import viewing_changed
from lms.common.timeutil import as_utc, utcnow
from lms.extensions import db

REPORT_GAP_SECONDS = 120  # a pause longer than this starts a new wall-clock window
WALL_SLACK_SECONDS = 3  # timer granularity between the browser and us
MAX_INTERVALS = 200


def merge_intervals(intervals: Iterable[Sequence[int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for start, end in sorted((int(s), int(e)) for s, e in intervals if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def measure(intervals: Iterable[Iterable[int]]) -> int:
    return sum(end - start for start, end in intervals)


def _subtract(new: list[list[int]], covered: list[list[int]]) -> list[list[int]]:
    """Parts of ``new`` not in ``covered`` (both merged and sorted)."""
    result = []
    for start, end in new:
        cursor = start
        for cstart, cend in covered:
            if cend <= cursor or cstart >= end:
                continue
            if cstart > cursor:
                result.append([cursor, cstart])
            cursor = max(cursor, cend)
            if cursor >= end:
                break
        if cursor < end:
            result.append([cursor, end])
    return result


def parse_report(payload) -> dict:
    """Validate a progress report from the player; raises InvalidInput on anything odd."""
    bad = InvalidInput(_("視聴状況の送信内容が正しくありません。"))
    if not isinstance(payload, dict):
        raise bad
    report_id = payload.get("report_id")
    if not isinstance(report_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", report_id):
        raise bad
    raw = payload.get("intervals", [])
    if not isinstance(raw, list) or len(raw) > MAX_INTERVALS:
        raise bad
    intervals = []
    for item in raw:
        if not (isinstance(item, list | tuple) and len(item) == 2):
            raise bad
        start, end = item
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (start, end)):
            raise bad
        if start < 0 or end < start:
            raise bad
        intervals.append((int(round(start)), int(round(end))))
    position = payload.get("position", 0)
    if not isinstance(position, int | float) or isinstance(position, bool) or not math.isfinite(position) \
            or position < 0:
        raise bad
    duration = payload.get("duration")
    if duration is not None and (not isinstance(duration, int | float) or isinstance(duration, bool)
                                 or not math.isfinite(duration) or duration < 0):
        raise bad
    return {"report_id": report_id, "intervals": intervals, "position": float(position),
            "duration": float(duration) if duration else None}


def record_progress(actor, archive_file: ArchiveFile, report: dict, now: datetime | None = None) -> ViewingProgress:
    """Merge watched intervals of the actor's own staff record, credited no faster than real time.

    Idempotent by ``report_id``. Completion at the course's ``viewing_threshold_pct``."""
    now = now or utcnow()
    staff = getattr(actor, "staff_member", None)
    if staff is None:
        raise Conflict(_("職員名簿に登録されていないため、視聴状況を記録できません。"))
    if archive_file.kind != VIDEO or archive_file.status != READY:
        raise InvalidInput(_("この動画の視聴状況は記録できません。"))
    progress = _progress_row(staff.id, archive_file.id, now)
    if report["report_id"] == progress.last_report_id:
        return progress
    duration = archive_file.duration_seconds or progress.duration_seconds or 0
    if not duration and report.get("duration"):
        # Duration unreadable from the container: the first player figure is kept.
        duration = int(math.ceil(report["duration"]))
    progress.duration_seconds = duration
    # Wall-clock budget: time the server has seen pass between reports of one playback.
    last = as_utc(progress.last_report_at)
    if last is not None and progress.playback_started_at is not None:
        gap = (now - last).total_seconds()
        if 0 < gap <= REPORT_GAP_SECONDS:
            progress.credited_wall_seconds += int(math.ceil(gap))
        elif gap > REPORT_GAP_SECONDS:
            progress.playback_started_at = now
    else:
        progress.playback_started_at = now
    progress.last_report_at = now
    progress.last_report_id = report["report_id"]

    upper = duration if duration else None
    clipped = [(max(0, s), min(e, upper) if upper else e) for s, e in report["intervals"]]
    existing = merge_intervals(progress.intervals or [])
    fresh = _subtract(merge_intervals(clipped), existing)
    allowance = progress.credited_wall_seconds + WALL_SLACK_SECONDS - measure(existing)
    credited = []
    for start, end in fresh:
        if allowance <= 0:
            break
        take = min(end - start, allowance)
        credited.append([start, start + take])
        allowance -= take
    merged = merge_intervals([*existing, *credited])
    progress.intervals = merged
    progress.watched_seconds = measure(merged)
    position = report["position"]
    progress.last_position = int(min(position, duration) if duration else position)
    threshold = archive_file.archive.course.viewing_threshold_pct or 90
    if (
        progress.completed_at is None
        and duration > 0
        and progress.watched_seconds * 100 >= threshold * duration
    ):
        progress.completed_at = now
        viewing_changed.send(None, staff_member_id=staff.id, archive_id=archive_file.archive_id)
    return progress


def _progress_row(staff_member_id: int, archive_file_id: int, now: datetime) -> ViewingProgress:
    query = select(ViewingProgress).where(
        ViewingProgress.staff_member_id == staff_member_id, ViewingProgress.archive_file_id == archive_file_id
    )
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update()
    progress = db.session.scalar(query)
    if progress is not None:
        return progress
    progress = ViewingProgress(staff_member_id=staff_member_id, archive_file_id=archive_file_id, intervals=[],
                               watched_seconds=0, credited_wall_seconds=0, last_report_id="", duration_seconds=0,
                               last_position=0)
    try:
        with db.session.begin_nested():
            db.session.add(progress)
            db.session.flush()
    except IntegrityError:
        progress = db.session.scalar(query)
        if progress is None:
            raise
    return progress


def progress_for(staff_member_id: int | None, file_ids: list[int]) -> dict[int, ViewingProgress]:
    if staff_member_id is None or not file_ids:
        return {}
    rows = db.session.scalars(
        select(ViewingProgress).where(
            ViewingProgress.staff_member_id == staff_member_id, ViewingProgress.archive_file_id.in_(file_ids)
        )
    )
    return {row.archive_file_id: row for row in rows}


def archive_completed_at(staff_member_id: int, archive_id: int) -> datetime | None:
    """When the staff member completed the archive (every ready video watched to the
    course's threshold), or None. For the completion area."""
    videos = db.session.scalars(
        select(ArchiveFile.id).where(
            ArchiveFile.archive_id == archive_id, ArchiveFile.kind == VIDEO, ArchiveFile.status == READY
        )
    ).all()
    if not videos:
        return None
    done = db.session.execute(
        select(func.count(), func.max(ViewingProgress.completed_at)).where(
            ViewingProgress.staff_member_id == staff_member_id,
            ViewingProgress.archive_file_id.in_(videos),
            ViewingProgress.completed_at.is_not(None),
        )
    ).one()
    return as_utc(done[1]) if done[0] == len(videos) else None
