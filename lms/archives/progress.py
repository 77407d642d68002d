"""Viewing progress: the unique seconds of a video a staff member actually watched, credited
from the server's own facts only. Completing a video publishes ``viewing_changed``
(lms.common.signals).

* The length of a video is the server's: read from its container, or measured by the worker
  when the container does not state it (``lms.archives.durations``). Until it is known, a
  report is accepted (the player goes on) but counts nothing. The player's own idea of the
  duration is never stored or used.
* Credit follows the wall clock, with one clock per learner (``ViewingClock``) for every
  video, tab and archive together. A report is credited at most the whole seconds of wall
  clock since the clock's mark (``credited_until``), which then moves on by exactly what was
  credited (a fraction left over carries to the next report; nothing is rounded up). The mark
  never lags more than ``WALL_SLACK_SECONDS`` behind the latest report, so nothing can be
  saved up; after a pause of more than ``REPORT_GAP_SECONDS`` without a report it starts
  again that far behind.

  Hence: over any stretch of time, the seconds credited to one learner, summed over all
  their videos, never exceed the wall-clock time between their first and last report of it
  plus ``WALL_SLACK_SECONDS``. Bursts of reports, parallel tabs and several videos played at
  once all draw on the one clock.

The time source is ``wall_time()`` (tests replace it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError

from lms.archives.models import READY, VIDEO, Archive, ArchiveFile, ViewingClock, ViewingProgress
from lms.common.errors import Conflict, InvalidInput
from lms.common.signals import viewing_changed
from lms.common.timeutil import as_utc, utcnow
from lms.courses.models import Course
from lms.extensions import db

# A pause longer than this without a report starts the learner's clock again (the time away
# is not credited).
REPORT_GAP_SECONDS = 120
# The most by which total credit may exceed elapsed wall-clock time: the first report of a
# viewing (or the first after a pause) may carry this much, for the timers of the browser and
# the server that do not tick together. Also the most the clock's mark may lag behind.
WALL_SLACK_SECONDS = 3
MAX_INTERVALS = 200
NEVER = datetime(2000, 1, 1, tzinfo=UTC)
MAX_POSITION = 24 * 3600  # a resume position beyond any video (lms.archives.containers.MAX_SECONDS)


def wall_time() -> datetime:
    """Now, as the credit rule sees it (replaced in tests)."""
    return utcnow()


def watched_percent(watched_seconds: int, duration_seconds: int | None) -> int:
    """The share of a video watched, in whole percent, rounded down: shown anywhere it is
    shown, so that 90% never appears for 89.97% of a 90% threshold (completion compares the
    seconds themselves, in ``record_progress``). 0 while the length is unknown."""
    if not duration_seconds:
        return 0
    return min(100, watched_seconds * 100 // duration_seconds)


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


def _finite(value) -> float | None:
    """A JSON number as a float; None for anything else (true, a string, NaN, an integer too
    large for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


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
        start, end = _finite(item[0]), _finite(item[1])
        if start is None or end is None or start < 0 or end < start:
            raise bad
        intervals.append((int(round(start)), int(round(end))))
    position = _finite(payload.get("position", 0))
    if position is None or position < 0:
        raise bad
    # A "duration" sent by older players is ignored: the length of a video is the server's.
    return {"report_id": report_id, "intervals": intervals, "position": position}


@dataclass
class Recorded:
    """The outcome of a report: the progress row, and whether the video's viewing counts."""

    progress: ViewingProgress
    counting: bool


def record_progress(actor, archive_file: ArchiveFile, report: dict, now: datetime | None = None) -> Recorded:
    """Merge watched intervals into the actor's own staff record, credited against the
    learner's wall clock (see the module's docstring). Idempotent by ``report_id``. Completion
    at the course's ``viewing_threshold_pct`` of the video's known length. A video whose length
    the server does not know yet records the position only (``counting`` False)."""
    staff = getattr(actor, "staff_member", None)
    if staff is None:
        raise Conflict(_("職員名簿に登録されていないため、視聴状況を記録できません。"))
    if archive_file.kind != VIDEO or archive_file.status != READY:
        raise InvalidInput(_("この動画の視聴状況は記録できません。"))
    # The learner's clock first, then the file's row (always in this order: no deadlock):
    # every report of one learner waits here for the one before it.
    clock = _clock_row(staff.id)
    now = now or wall_time()
    progress = _progress_row(staff.id, archive_file.id)
    duration = archive_file.duration_seconds or 0
    if report["report_id"] == progress.last_report_id:
        return Recorded(progress, duration > 0)
    progress.last_report_at = now
    progress.last_report_id = report["report_id"]
    if not duration:
        # Not known yet: the position is kept for resuming, nothing is credited (the clock
        # is left alone: time spent here may be credited to a video that counts).
        progress.last_position = int(min(report["position"], MAX_POSITION))
        return Recorded(progress, False)

    existing = merge_intervals(progress.intervals or [])
    clipped = [(max(0, s), min(e, duration)) for s, e in report["intervals"]]
    fresh = _subtract(merge_intervals(clipped), existing)
    allowance = _allowance(clock, now)
    credited = []
    for start, end in fresh:
        if allowance <= 0:
            break
        take = min(end - start, allowance)
        credited.append([start, start + take])
        allowance -= take
    _spend(clock, measure(credited), now)
    merged = merge_intervals([*existing, *credited])
    progress.intervals = merged
    progress.watched_seconds = measure(merged)
    progress.last_position = int(min(report["position"], duration))
    threshold = archive_file.archive.course.viewing_threshold_pct or 90
    if progress.completed_at is None and progress.watched_seconds * 100 >= threshold * duration:
        progress.completed_at = now
        viewing_changed.send(None, staff_member_id=staff.id, archive_id=archive_file.archive_id)
    return Recorded(progress, True)


def _allowance(clock: ViewingClock, now: datetime) -> int:
    """Whole seconds of wall clock since the learner's mark (a long pause restarts it)."""
    mark = as_utc(clock.credited_until)
    assert mark is not None  # the column is NOT NULL
    since = (now - mark).total_seconds()
    if since > REPORT_GAP_SECONDS + WALL_SLACK_SECONDS:
        clock.credited_until = now - timedelta(seconds=WALL_SLACK_SECONDS)
        since = WALL_SLACK_SECONDS
    return max(0, math.floor(since))


def _spend(clock: ViewingClock, seconds: int, now: datetime) -> None:
    """Move the mark on by what was credited, and to at most WALL_SLACK_SECONDS behind now
    (what was not used cannot be saved up)."""
    mark = as_utc(clock.credited_until)
    assert mark is not None
    clock.credited_until = max(mark + timedelta(seconds=seconds), now - timedelta(seconds=WALL_SLACK_SECONDS))


def _locked(query):
    return query.with_for_update() if db.engine.dialect.name == "postgresql" else query


def _clock_row(staff_member_id: int) -> ViewingClock:
    """The learner's clock, locked (PostgreSQL: FOR UPDATE; SQLite: the caller holds the write
    lock). A new clock starts long ago: its first report restarts it (``_allowance``)."""
    query = _locked(select(ViewingClock).where(ViewingClock.staff_member_id == staff_member_id))
    clock = db.session.scalar(query)
    if clock is not None:
        return clock
    clock = ViewingClock(staff_member_id=staff_member_id, credited_until=NEVER)
    try:
        with db.session.begin_nested():
            db.session.add(clock)
            db.session.flush()
    except IntegrityError:  # PostgreSQL: another report of the learner created it just now
        clock = db.session.scalar(query)
        if clock is None:
            raise
    return clock


def _progress_row(staff_member_id: int, archive_file_id: int) -> ViewingProgress:
    query = _locked(select(ViewingProgress).where(
        ViewingProgress.staff_member_id == staff_member_id, ViewingProgress.archive_file_id == archive_file_id
    ))
    progress = db.session.scalar(query)
    if progress is not None:
        return progress
    progress = ViewingProgress(staff_member_id=staff_member_id, archive_file_id=archive_file_id, intervals=[],
                               watched_seconds=0, last_report_id="", last_position=0)
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


def watched_through(staff_member_id: int, threshold_pct: int, *, archive_id: int | None = None,
                    course_id: int | None = None, start: datetime | None = None,
                    end: datetime | None = None) -> tuple[int, datetime] | None:
    """(archive id, when) of the staff member's first archive watched through — of the course's
    archives (``course_id``), or the one ``archive_id`` — reached within [``start``, ``end``)
    when given; None if none.

    An archive is watched through once every ready video of it with a length the server read
    is watched to ``threshold_pct`` (a recording split in parts: every part); a video whose
    length is unknown cannot be credited and holds nothing back. When: the time the last of
    them reached it (its progress's completed_at, else its last update). A part added after
    that time does not undo it (a completion granted stays); it is required of anyone who had
    not yet watched the others through."""
    watched = ViewingProgress.watched_seconds * 100 >= ArchiveFile.duration_seconds * threshold_pct
    countable = (ArchiveFile.kind == VIDEO, ArchiveFile.status == READY, ArchiveFile.duration_seconds > 0)
    mine = and_(ViewingProgress.archive_file_id == ArchiveFile.id, ViewingProgress.staff_member_id == staff_member_id)
    scope = ArchiveFile.archive_id == archive_id if archive_id is not None else Archive.course_id == course_id
    reached = (
        select(ArchiveFile.archive_id.label("archive_id"),
               func.max(func.coalesce(ViewingProgress.completed_at, ViewingProgress.updated_at)).label("at"))
        .join(Archive, Archive.id == ArchiveFile.archive_id)
        .join(ViewingProgress, mine)
        .where(scope, *countable, watched)
        .group_by(ArchiveFile.archive_id)
        .subquery("reached")
    )
    # A video ready by then and not watched to the threshold: not watched through (yet).
    missing = (
        select(ArchiveFile.id)
        .outerjoin(ViewingProgress, mine)
        .where(ArchiveFile.archive_id == reached.c.archive_id, *countable,
               func.coalesce(ArchiveFile.completed_at, ArchiveFile.created_at) <= reached.c.at,
               or_(ViewingProgress.id.is_(None), ~watched))
    )
    query = select(reached.c.archive_id, reached.c.at).where(~missing.exists())
    if start is not None:
        query = query.where(reached.c.at >= start)
    if end is not None:
        query = query.where(reached.c.at < end)
    row = db.session.execute(query.order_by(reached.c.at, reached.c.archive_id).limit(1)).first()
    if row is None:
        return None
    at = datetime.fromisoformat(row.at) if isinstance(row.at, str) else row.at  # (SQLite: coalesce() is text)
    return int(row.archive_id), as_utc(at)


def archive_completed_at(staff_member_id: int, archive_id: int) -> datetime | None:
    """When the staff member watched the archive through (``watched_through``, at its course's
    viewing threshold), or None."""
    threshold = db.session.scalar(select(Course.viewing_threshold_pct).join(Archive, Archive.course_id == Course.id)
                                  .where(Archive.id == archive_id))
    if threshold is None:
        return None
    found = watched_through(staff_member_id, threshold, archive_id=archive_id)
    return found[1] if found else None
