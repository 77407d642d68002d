"""Attendance report files imported twice for one meeting (the Japanese and the English
download, before the import keyed records by the meeting) are merged: of each set the first
imported is kept, and each later copy's records are folded into it.

A copy's record of someone the kept report has too, with the very same times, goes (a hand
match it carries is kept on the kept record); a record of someone the kept report lacks (a row
left out at one import and matched at the other) moves into it. Every staff member keeps
exactly the times they had, so no attendance changes. A copy that cannot be merged so — someone
with other times, or matched to someone else, or unmatched by hand — is left as it is.

The meeting's title is not kept with the records, so two reports of one session are taken for
one meeting when they share participants and every shared participant has the same join and
leave times (which includes the first join the import keys the meeting by).

Revision ID: b6d1e8a3c5f2
Revises: b3f7d2a96c14
Create Date: 2026-12-07 02:00:00

"""
import unicodedata
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op


revision = 'b6d1e8a3c5f2'
down_revision = 'b3f7d2a96c14'
branch_labels = None
depends_on = None

_record = sa.table(
    "attendance_record",
    sa.column("id", sa.Integer), sa.column("session_id", sa.Integer), sa.column("report_id", sa.String),
    sa.column("record_id", sa.String), sa.column("email", sa.String), sa.column("display_name", sa.String),
    sa.column("intervals", sa.JSON), sa.column("staff_member_id", sa.Integer), sa.column("matched_by", sa.String),
    sa.column("matched_by_user_id", sa.Integer), sa.column("created_at", sa.DateTime),
)


def _person(row) -> str:
    """The participant, as the report reader tells them apart: address, else the name."""
    address = (row.email or "").strip().lower()
    if address:
        return address
    return "name:" + "".join(unicodedata.normalize("NFKC", row.display_name or "").split())


def _instant(text: str) -> datetime:
    value = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _times(row):
    try:
        return tuple(sorted((_instant(a), _instant(b)) for a, b in (row.intervals or [])))
    except (TypeError, ValueError):
        return None  # unreadable: never taken for a copy


def _reports(bind, session_id: int) -> list[tuple[str, dict]]:
    """The session's file reports, first imported first: (report id, {person: record})."""
    rows = bind.execute(sa.select(_record).where(_record.c.session_id == session_id,
                                                 _record.c.report_id.like("file:%"))
                        .order_by(_record.c.id)).all()
    reports: dict[str, dict] = {}
    for row in rows:
        people = reports.setdefault(row.report_id, {})
        people.setdefault(_person(row), []).append(row)
    return list(reports.items())  # ordered by each report's first record id (its import)


def _plan(kept: dict, copy: dict):
    """What merging ``copy`` into ``kept`` takes, or None when it is not the same meeting or
    cannot be merged without changing what anyone is credited with."""
    if any(len(rows) != 1 for rows in (*kept.values(), *copy.values())):
        return None
    shared = set(kept) & set(copy)
    if not shared:
        return None
    deletes, adopts, moves = [], [], []
    for person, (row,) in copy.items():
        if person not in kept:
            moves.append(row)
            continue
        (mine,) = kept[person]
        times = _times(row)
        if times is None or times != _times(mine):
            return None
        if row.staff_member_id == mine.staff_member_id:
            if row.matched_by == "manual" and mine.matched_by != "manual":
                adopts.append((mine, row))  # the hand match stays on record
            deletes.append(row)
        elif mine.staff_member_id is None and mine.matched_by_user_id is None:
            adopts.append((mine, row))
            deletes.append(row)
        elif row.staff_member_id is None and row.matched_by_user_id is None:
            deletes.append(row)  # the kept one is matched, this one never was
        else:
            return None  # matched to someone else, or unmatched by hand: a trainer decides
    return deletes, adopts, moves


def upgrade():
    bind = op.get_bind()
    sessions = bind.execute(sa.text(
        "SELECT session_id FROM attendance_record WHERE report_id LIKE 'file:%' "
        "GROUP BY session_id HAVING count(DISTINCT report_id) > 1 ORDER BY session_id")).scalars().all()
    for session_id in sessions:
        merged: set[str] = set()
        while True:
            reports = [r for r in _reports(bind, session_id) if r[0] not in merged]
            step = None
            for i, (kept_id, kept) in enumerate(reports):
                for copy_id, copy in reports[i + 1:]:
                    plan = _plan(kept, copy)
                    if plan is not None:
                        step = (kept_id, copy_id, plan)
                        break
                if step:
                    break
            if step is None:
                break
            kept_id, copy_id, (deletes, adopts, moves) = step
            for mine, row in adopts:
                bind.execute(_record.update().where(_record.c.id == mine.id).values(
                    staff_member_id=row.staff_member_id, matched_by=row.matched_by,
                    matched_by_user_id=row.matched_by_user_id))
            if deletes:
                bind.execute(_record.delete().where(_record.c.id.in_([r.id for r in deletes])))
            taken = set(bind.execute(sa.select(_record.c.record_id).where(_record.c.report_id == kept_id)).scalars())
            for row in moves:
                record_id = row.record_id if row.record_id not in taken else f"{row.record_id}-{row.id}"
                taken.add(record_id)
                bind.execute(_record.update().where(_record.c.id == row.id).values(
                    report_id=kept_id, record_id=record_id))
            merged.add(copy_id)


def downgrade():
    # (the copies merged are not made again; the schema is unchanged)
    pass
