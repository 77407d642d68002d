"""The dashboard summaries (CourseYearSummary, StaffYearSummary), kept in step with the data.

The summaries follow the domain events: lms/completion/receivers.py subscribes to
``enrollment_status_changed``, ``attendance_changed``, ``session_updated`` (a session
moved to another fiscal year or course) and ``staff_member_moved``, and
lms.completion.services reports every completion it writes (``update_for_completion``).
Each recomputes, at once and in the sender's transaction, the summary keys the change may
have touched: the summaries are committed with the change or not at all, and never stale.
Whatever writes those tables must publish the event (a Core write as much as an ORM one);
a bulk loader (``lms synth``, ``lms demo``) calls ``rebuild()`` at the end instead.

Keys are recomputed from the base tables, not adjusted by +1/-1: idempotent, and right
whatever the change. A change to a few enrollments only (an enrollment, a cancellation,
a promotion) recomputes each key with one INSERT … SELECT … ON CONFLICT statement; other
changes read the figures and write them.
On PostgreSQL each key is first locked (a transaction-scoped advisory lock; the keys of one
event are taken in a fixed order); the recomputation then runs under READ COMMITTED after
the lock, so it sees every change committed by an earlier holder of the key, and a later
writer of the key waits until we commit and then sees ours. A transaction that reports
several events (a roll call, a cancelled session) takes their keys event by event: two such
transactions can deadlock on keys they share (sessions of the same course and year), which
PostgreSQL detects and breaks; the victim's error is retryable
(``lms.common.database.is_retryable``): the enrollment operations, a session's update, a
roll call, an attendance correction and a Teams attendance import run again
(``run_in_transaction``). SQLite runs one
writer at a time anyway.

``check()`` compares the summaries with a fresh aggregate and ``rebuild()`` recomputes them
all (``flask lms completion-summary --check`` / ``--rebuild``: after rows were written
other than through the app, e.g. by SQL).
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    inspect,
    literal_column,
    select,
    text,
    tuple_,
    union_all,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from lms.attendance.models import Attendance
from lms.common.database import analyze
from lms.common.timeutil import as_utc, fiscal_year_bounds, fiscal_year_of
from lms.completion.models import (
    COMPLETED,
    VIA_ARCHIVE,
    VIA_BOTH,
    VIA_LIVE,
    VIA_MANUAL,
    Completion,
    CourseYearSummary,
    StaffYearSummary,
)
from lms.courses.models import TrainingSession
from lms.enrollment.models import CONFIRMED, Enrollment
from lms.roster.models import StaffMember

METHOD_COLUMNS = {VIA_LIVE: "completed_live", VIA_ARCHIVE: "completed_archive", VIA_BOTH: "completed_both",
                  VIA_MANUAL: "completed_manual"}
MONTH_COLUMNS = tuple(f"m{i}" for i in range(1, 13))
COURSE_COLUMNS = ("enrolled", "done", "attended", *METHOD_COLUMNS.values(), *MONTH_COLUMNS)
STAFF_COLUMNS = ("enrolled_courses", "completed_courses")
# Which base rows each group of CourseYearSummary columns is computed from: a change
# recomputes only the parts it can affect ("done" needs enrollments and completions).
PARTS = {
    "enrolled": ("enrolled", "done"),
    "completed": (*METHOD_COLUMNS.values(), *MONTH_COLUMNS),
    "attended": ("attended",),
}
ALL_PARTS = frozenset(PARTS)

# The base tables the figures are computed from (rebuild() gathers their statistics first).
_SOURCE_TABLES = (Enrollment.__table__, TrainingSession.__table__, Completion.__table__, Attendance.__table__,
                  StaffMember.__table__)

_LOCK_CLASS = 0x4D4E4253  # 'MNBS': the advisory-lock namespace of these keys


# ---------------------------------------------------------------- computing figures



def upsert_insert(dialect: str, table: Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT … ON CONFLICT for this database (PostgreSQL's and SQLite's share that API)."""
    return postgresql.insert(table) if dialect == "postgresql" else sqlite.insert(table)

def _month_expression(dialect: str, column):
    """'YYYY-MM' of a UTC timestamp in Tokyo (no daylight saving: +9 hours on SQLite)."""
    # Constants as SQL literals, so that the same expression in GROUP BY matches the select list.
    if dialect == "postgresql":
        return func.to_char(func.timezone(literal_column("'Asia/Tokyo'"), column), literal_column("'YYYY-MM'"))
    return func.strftime(literal_column("'%Y-%m'"), column, literal_column("'+9 hours'"))


def fiscal_month(fiscal_year: int, month: str | None) -> int | None:
    """1 (April) … 12 (March) for a 'YYYY-MM' inside the fiscal year, else None."""
    if not month:
        return None
    y, m = int(month[:4]), int(month[5:7])
    index = (y - fiscal_year) * 12 + m - 3
    return index if 1 <= index <= 12 else None


_STATEMENTS: dict[tuple, object] = {}


def _statement(kind: str, dialect: str, by_course: bool, by_municipality: bool, by_staff: bool = False):
    """The figure queries, built once per shape with bound parameters (fy, start, end and
    expanding lists course_ids, municipality_ids, staff_ids): building them costs more
    than running them for one key."""
    shape = (kind, dialect, by_course, by_municipality, by_staff)
    if shape in _STATEMENTS:
        return _STATEMENTS[shape]

    fy = bindparam("fy", type_=Integer)
    in_year = and_(TrainingSession.starts_at >= bindparam("start"), TrainingSession.starts_at < bindparam("end"))
    courses = bindparam("course_ids", expanding=True, type_=Integer)
    municipalities = bindparam("municipality_ids", expanding=True, type_=Integer)
    staff = bindparam("staff_ids", expanding=True, type_=Integer)
    if kind == "enrolled":
        stmt = (
            select(Enrollment.municipality_id, TrainingSession.course_id, *_enrolled_counts())
            .select_from(_enrollments_with_completions(fy))
            .where(Enrollment.status == CONFIRMED, in_year)
            .group_by(Enrollment.municipality_id, TrainingSession.course_id)
        )
        course_col, municipality_col = TrainingSession.course_id, Enrollment.municipality_id
    elif kind == "completed":
        month = _month_expression(dialect, Completion.completed_at)
        stmt = (
            select(Completion.municipality_id, Completion.course_id, Completion.method, month, func.count())
            .where(Completion.fiscal_year == fy, Completion.status == COMPLETED)
            .group_by(Completion.municipality_id, Completion.course_id, Completion.method, month)
        )
        course_col, municipality_col = Completion.course_id, Completion.municipality_id
    elif kind == "attended":
        stmt = (
            select(StaffMember.municipality_id, TrainingSession.course_id,
                   func.count(func.distinct(Attendance.staff_member_id)))
            .select_from(Attendance)
            .join(TrainingSession, TrainingSession.id == Attendance.session_id)
            .join(StaffMember, StaffMember.id == Attendance.staff_member_id)
            .where(Attendance.attended.is_(True), in_year)
            .group_by(StaffMember.municipality_id, TrainingSession.course_id)
        )
        course_col, municipality_col = TrainingSession.course_id, StaffMember.municipality_id
    else:  # staff: courses enrolled in, completions
        enrolled: Select[*tuple[Any, ...]] = (
            select(Enrollment.municipality_id, Enrollment.staff_member_id,
                   func.count(func.distinct(TrainingSession.course_id)), literal_column("'enrolled_courses'"))
            .select_from(Enrollment)
            .join(TrainingSession, TrainingSession.id == Enrollment.session_id)
            .where(Enrollment.status == CONFIRMED, in_year)
            .group_by(Enrollment.municipality_id, Enrollment.staff_member_id)
        )
        completed: Select[*tuple[Any, ...]] = (
            select(Completion.municipality_id, Completion.staff_member_id, func.count(),
                   literal_column("'completed_courses'"))
            .where(Completion.fiscal_year == fy, Completion.status == COMPLETED)
            .group_by(Completion.municipality_id, Completion.staff_member_id)
        )
        if by_staff:
            enrolled = enrolled.where(Enrollment.staff_member_id.in_(staff))
            completed = completed.where(Completion.staff_member_id.in_(staff))
        _STATEMENTS[shape] = both = union_all(enrolled, completed)
        return both
    if by_course:
        stmt = stmt.where(course_col.in_(courses))
    if by_municipality:
        stmt = stmt.where(municipality_col.in_(municipalities))
    _STATEMENTS[shape] = stmt
    return stmt


def _enrollments_with_completions(fy):
    """Enrollments with their session, and the staff member's completion of that course in
    fiscal year ``fy`` for the same municipality (outer): what "enrolled" and "done" count."""

    return (
        Enrollment.__table__
        .join(TrainingSession.__table__, TrainingSession.id == Enrollment.session_id)
        .outerjoin(Completion.__table__, and_(
            Completion.staff_member_id == Enrollment.staff_member_id,
            Completion.course_id == TrainingSession.course_id,
            Completion.fiscal_year == fy,
            Completion.status == COMPLETED,
            Completion.municipality_id == Enrollment.municipality_id,
        ))
    )


def _enrolled_counts():
    """The "enrolled" and "done" figures over ``_enrollments_with_completions``."""

    return (func.count(func.distinct(Enrollment.staff_member_id)), func.count(func.distinct(Completion.staff_member_id)))


def course_figures(session: Session, fiscal_year: int, course_ids=None, municipality_ids=None,
                   parts=ALL_PARTS) -> dict:
    """{(municipality_id, course_id): {column: count}} computed from the base tables, for
    the given courses and municipalities (None: all) and the columns of ``parts``. Only
    rows with a non-zero count."""
    start, end = fiscal_year_bounds(fiscal_year)
    dialect = session.get_bind().dialect.name
    columns = [c for part in sorted(parts) for c in PARTS[part]]
    rows: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: dict.fromkeys(columns, 0))
    params = {"fy": fiscal_year, "start": start, "end": end}
    if course_ids is not None:
        params["course_ids"] = sorted(course_ids)
    if municipality_ids is not None:
        params["municipality_ids"] = sorted(municipality_ids)

    def run(kind):
        return session.execute(
            _statement(kind, dialect, course_ids is not None, municipality_ids is not None), params)

    if "enrolled" in parts:
        for mid, cid, n_enrolled, n_done in run("enrolled"):
            row = rows[(mid, cid)]
            row["enrolled"], row["done"] = n_enrolled, n_done
    if "completed" in parts:
        for mid, cid, method, month, n in run("completed"):
            row = rows[(mid, cid)]
            if method in METHOD_COLUMNS:
                row[METHOD_COLUMNS[method]] += n
            index = fiscal_month(fiscal_year, month)
            if index is not None:
                row[f"m{index}"] += n
    if "attended" in parts:
        for mid, cid, n in run("attended"):
            rows[(mid, cid)]["attended"] = n
    return {key: dict(row) for key, row in rows.items() if any(row.values())}


def staff_figures(session: Session, fiscal_year: int, staff_ids=None) -> dict:
    """{(municipality_id, staff_member_id): {column: count}} from the base tables (None: all)."""
    start, end = fiscal_year_bounds(fiscal_year)
    rows: dict[tuple[int, int], dict[str, int]] = defaultdict(lambda: dict.fromkeys(STAFF_COLUMNS, 0))
    params = {"fy": fiscal_year, "start": start, "end": end}
    if staff_ids is not None:
        params["staff_ids"] = sorted(staff_ids)
    stmt = _statement("staff", session.get_bind().dialect.name, False, False, by_staff=staff_ids is not None)
    for mid, sid, n, column in session.execute(stmt, params):
        rows[(mid, sid)][column] = n
    return {key: dict(row) for key, row in rows.items() if any(row.values())}


# ---------------------------------------------------------------- writing keys


def _lock(session: Session, keys: list[tuple]) -> None:
    """Transaction-scoped advisory locks on the keys (PostgreSQL), always in the same order."""
    if not keys or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(_LOCK_SQL, {"ns": _LOCK_CLASS, "keys": _lock_hashes(keys)})


def _chunks(items: list, size: int = 500):
    for i in range(0, len(items), size):
        yield items[i:i + size]


_UPSERTS: dict[tuple, object] = {}


def _upsert_statement(dialect: str, table, keys: tuple[str, ...], columns: tuple[str, ...]):
    """INSERT … ON CONFLICT (key) DO UPDATE SET columns … RETURNING key and counts; built
    once per shape (its construction costs more than running it)."""
    shape = (dialect, table.name, keys, columns)
    stmt = _UPSERTS.get(shape)
    if stmt is None:
        stmt = upsert_insert(dialect, table)
        excluded = stmt.excluded
        counts = [c.name for c in table.c if c.name not in keys]
        stmt = _UPSERTS[shape] = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: excluded[c] for c in columns}
        ).returning(*(table.c[k] for k in keys), *(table.c[c] for c in counts))
    return stmt


def _upsert(session: Session, table, keys: tuple[str, ...], values: list[dict], columns: list[str]) -> None:
    """INSERT … ON CONFLICT (key) DO UPDATE of ``columns`` (both databases), one statement;
    rows left with every count zero are then deleted."""
    if not values:
        return
    stmt = _upsert_statement(session.get_bind().dialect.name, table, keys, tuple(columns))
    # Parameters passed separately: the statement stays the same (compiled once, cached),
    # and several rows go as one batch ("insertmanyvalues"), RETURNING included.
    zero = [tuple(row[:len(keys)]) for row in session.execute(stmt, values) if not any(row[len(keys):])]
    if zero:
        session.execute(delete(table).where(tuple_(*(table.c[k] for k in keys)).in_(zero)))


def refresh_course_keys(session: Session, keys: dict[tuple[int, int, int], set[str]]) -> None:
    """Recompute the given parts of CourseYearSummary rows, keyed (municipality_id,
    fiscal_year, course_id); the other columns of a row are kept. The caller holds the
    keys' locks."""
    groups: dict[tuple[int, frozenset], set[tuple[int, int]]] = defaultdict(set)
    for (mid, fy, cid), parts in keys.items():
        if mid is not None and fy is not None and cid is not None and parts:
            groups[(fy, frozenset(parts))].add((mid, cid))
    table = CourseYearSummary.__table__
    for (fy, part_set), pairs in sorted(groups.items(), key=lambda item: (item[0][0], sorted(item[0][1]))):
        columns = [c for part in sorted(part_set) for c in PARTS[part]]
        for chunk in _chunks(sorted(pairs)):
            figures = course_figures(session, fy, course_ids={c for _m, c in chunk},
                                     municipality_ids={m for m, _c in chunk}, parts=parts)
            values = []
            for m, c in chunk:
                fresh = figures.get((m, c), {})
                values.append({"municipality_id": m, "fiscal_year": fy, "course_id": c,
                               **dict.fromkeys(COURSE_COLUMNS, 0), **{k: fresh.get(k, 0) for k in columns}})
            _upsert(session, table, ("municipality_id", "fiscal_year", "course_id"), values, columns)


def refresh_staff_keys(session: Session, keys: set[tuple[int, int, int]]) -> None:
    """Recompute StaffYearSummary rows for (municipality_id, fiscal_year, staff_member_id) keys."""
    by_year: dict[int, set[tuple[int, int]]] = defaultdict(set)
    for mid, fy, sid in keys:
        if mid is not None and fy is not None and sid is not None:
            by_year[fy].add((mid, sid))
    table = StaffYearSummary.__table__
    for fy, pairs in sorted(by_year.items()):
        for chunk in _chunks(sorted(pairs)):
            figures = staff_figures(session, fy, staff_ids={s for _m, s in chunk})
            values = [{"municipality_id": m, "fiscal_year": fy, "staff_member_id": s,
                       **figures.get((m, s), dict.fromkeys(STAFF_COLUMNS, 0))} for m, s in chunk]
            _upsert(session, table, ("municipality_id", "fiscal_year", "staff_member_id"), values,
                    list(STAFF_COLUMNS))


# ---------------------------------------------------------------- what changed: the receivers' entry points


@dataclass
class Changes:
    """Changes to the rows the summaries count, as the events report them."""

    enrollments: set = field(default_factory=set)  # (municipality_id, session_id, staff_member_id)
    # Those of them that a confirmed enrollment left (its key's figures may fall to zero).
    enrollments_left: set = field(default_factory=set)
    attendance: set = field(default_factory=set)  # (staff_member_id, session_id)
    completions: set = field(default_factory=set)  # (municipality_id, fiscal_year, course_id, staff_member_id)
    sessions: set = field(default_factory=set)  # (session_id, course_id, starts_at) before and after
    staff_moves: set = field(default_factory=set)  # (staff_member_id, municipality_id) before and after

    def __bool__(self) -> bool:
        return bool(self.enrollments or self.attendance or self.completions or self.sessions or self.staff_moves)


def update_for_enrollment(session: Session, municipality_id: int, session_id: int, staff_member_id: int,
                          old_status: str | None, new_status: str) -> None:
    """An enrollment changed status (``enrollment_status_changed``). Only a change to or
    from confirmed matters: the summaries count confirmed enrollments (a waitlisted or
    pending arrival, a cancellation of someone waiting change nothing in them)."""
    if CONFIRMED not in (old_status, new_status):
        return
    key = (municipality_id, session_id, staff_member_id)
    _apply_now(session, Changes(enrollments={key}, enrollments_left={key} if old_status == CONFIRMED else set()))


def update_for_attendance(session: Session, staff_member_id: int, session_id: int) -> None:
    """A staff member's attendance of a session changed (``attendance_changed``): the
    "attended" figure of their municipality, the session's course and year."""
    _apply_now(session, Changes(attendance={(staff_member_id, session_id)}))


def update_for_completion(session: Session, municipality_id: int, fiscal_year: int, course_id: int,
                          staff_member_id: int) -> None:
    """A completion was added, or changed what it counts for (status, method, month): called
    by lms.completion.services, which writes every completion."""
    _apply_now(session, Changes(completions={(municipality_id, fiscal_year, course_id, staff_member_id)}))


def update_for_session_move(session: Session, session_id: int, before: tuple[int, datetime],
                            after: tuple[int, datetime]) -> None:
    """A session moved to another course or start (``session_updated``), each given as
    (course_id, starts_at): its enrollments and attendance count for the fiscal year and
    course it is in now, no longer for the old ones. A move within its year and course
    changes nothing."""
    (old_course, old_start), (new_course, new_start) = before, after
    if old_course == new_course and fiscal_year_of(as_utc(old_start)) == fiscal_year_of(as_utc(new_start)):
        return
    _apply_now(session, Changes(sessions={(session_id, old_course, old_start), (session_id, new_course, new_start)}))


def update_for_staff_move(session: Session, staff_member_id: int, old_municipality_id: int | None,
                          new_municipality_id: int) -> None:
    """A staff member moved to another municipality (``staff_member_moved``): their
    attendance counts where they are now. (Enrollments and completions keep the
    municipality recorded on them.)"""
    if old_municipality_id == new_municipality_id:
        return
    moves = {(staff_member_id, mid) for mid in (old_municipality_id, new_municipality_id) if mid is not None}
    _apply_now(session, Changes(staff_moves=moves))


def _apply_now(session: Session, changes: Changes) -> None:
    # The figures are recomputed from the tables: the change itself must be in them first.
    session.flush()
    apply(session, changes)


def _loaded(session: Session, model, row_id: int, names: set[str]):
    """The row as this transaction holds it already (e.g. an enrollment's locked session),
    when the attributes ``names`` are loaded; else None."""
    obj = session.identity_map.get(identity_key(model, row_id))
    if obj is None or names & inspect(obj).unloaded:
        return None
    return obj


def apply(session: Session, changes: Changes) -> None:
    """Recompute every summary key the changes may have touched, in the caller's
    transaction (advisory locks on the keys first, on PostgreSQL)."""

    course_keys: dict[tuple[int, int, int], set[str]] = defaultdict(set)
    staff_keys: set[tuple[int, int, int]] = set()
    session_ids = {sid for _m, sid, _s in changes.enrollments} | {sid for _s, sid in changes.attendance}
    sessions = {}
    unknown = set()
    for sid in session_ids:
        # A session row this transaction holds already (an enrollment's, locked and flushed)
        # gives its course and start without reading it again.
        loaded = _loaded(session, TrainingSession, sid, {"course_id", "starts_at"})
        if loaded is not None:
            sessions[sid] = (loaded.course_id, fiscal_year_of(as_utc(loaded.starts_at)))
        else:
            unknown.add(sid)
    if unknown:
        for sid, cid, starts_at in session.execute(
            select(TrainingSession.id, TrainingSession.course_id, TrainingSession.starts_at)
            .where(TrainingSession.id.in_(sorted(unknown)))
        ):
            sessions[sid] = (cid, fiscal_year_of(as_utc(starts_at)))
    may_drop: set[tuple] = set()  # keys whose row may end with every figure zero
    for mid, sid, staff_id in changes.enrollments:
        if sid in sessions:
            cid, fy = sessions[sid]
            course_keys[(mid, fy, cid)].add("enrolled")
            staff_keys.add((mid, fy, staff_id))
            if (mid, sid, staff_id) in changes.enrollments_left:
                may_drop.update((("course", mid, fy, cid), ("staff", mid, fy, staff_id)))
    home: dict[int, int] = {}
    for staff_id, _sid in changes.attendance:
        member = _loaded(session, StaffMember, staff_id, {"municipality_id"})
        if member is not None:
            home[staff_id] = member.municipality_id
    missing = {s for s, _sid in changes.attendance} - set(home)
    if missing:
        for staff_id, mid in session.execute(
            select(StaffMember.id, StaffMember.municipality_id).where(StaffMember.id.in_(sorted(missing)))
        ):
            home[staff_id] = mid
    for staff_id, sid in changes.attendance:
        if sid in sessions and staff_id in home:
            cid, fy = sessions[sid]
            course_keys[(home[staff_id], fy, cid)].add("attended")
    for mid, fy, cid, staff_id in changes.completions:
        course_keys[(mid, fy, cid)].update(("enrolled", "completed"))  # "done" is enrolled and completed
        staff_keys.add((mid, fy, staff_id))
    moved: dict[int, set[tuple[int, datetime]]] = defaultdict(set)
    for sid, cid, starts_at in changes.sessions:
        if starts_at is not None and cid is not None:
            moved[sid].add((cid, starts_at))
    for sid, places in moved.items():
        # Moved to another year or course: every municipality and enrollee of the session,
        # for the year and course before and after.
        enrollees = session.execute(
            select(Enrollment.municipality_id, Enrollment.staff_member_id).where(Enrollment.session_id == sid)
        ).all()
        attending = session.scalars(
            select(StaffMember.municipality_id).distinct()
            .join(Attendance, Attendance.staff_member_id == StaffMember.id).where(Attendance.session_id == sid)
        ).all()
        for cid, starts_at in places:
            fy = fiscal_year_of(as_utc(starts_at))
            for mid, staff_id in enrollees:
                course_keys[(mid, fy, cid)].add("enrolled")
                staff_keys.add((mid, fy, staff_id))
                # The year or course it left may keep nothing.
                may_drop.update((("course", mid, fy, cid), ("staff", mid, fy, staff_id)))
            for mid in attending:
                course_keys[(mid, fy, cid)].add("attended")
    for staff_id, mid in changes.staff_moves:
        # Attendance counts for the staff member's municipality: before and after the move.
        for cid, starts_at in session.execute(
            select(TrainingSession.course_id, TrainingSession.starts_at)
            .join(Attendance, Attendance.session_id == TrainingSession.id)
            .where(Attendance.staff_member_id == staff_id)
        ):
            course_keys[(mid, fiscal_year_of(as_utc(starts_at)), cid)].add("attended")
    if not course_keys and not staff_keys:
        return
    lock_keys = [("course", *k) for k in course_keys] + [("staff", *k) for k in staff_keys]
    if len(lock_keys) <= _DEFER_KEYS and all(parts == {"enrolled"} for parts in course_keys.values()):
        # Enrollments only, a few keys (an enrollment, a cancellation with its promotion, a
        # swap): each key is recomputed and written by one statement.
        _write_enrolled_keys(session, lock_keys, course_keys, staff_keys, may_drop)
        return
    _lock(session, lock_keys)
    refresh_course_keys(session, course_keys)
    refresh_staff_keys(session, staff_keys)

_DEFER_KEYS = 16


def _lock_hashes(keys: list[tuple]) -> list[int]:
    return sorted({zlib.crc32(repr(key).encode()) - 2**31 for key in keys})


_LOCK_SQL = text("SELECT count(pg_advisory_xact_lock(:ns, k)) FROM (SELECT unnest(CAST(:keys AS integer[])) AS k "
                 "ORDER BY k) AS ordered")


def _write_enrolled_keys(session: Session, lock_keys: list[tuple], course_keys: dict, staff_keys: set,
                        may_drop: set) -> None:
    """Take the advisory lock on the keys (PostgreSQL) and then for each key
    one INSERT … SELECT … ON CONFLICT DO UPDATE that recomputes its enrollment figures from
    the base tables, and, for a key that a confirmed enrollment left (``may_drop``), a
    DELETE of the row should every figure be zero (a key that only gained one keeps a
    count of at least one). The recomputation reads after the lock (READ COMMITTED)."""
    dialect = session.get_bind().dialect.name
    statements = _enrolled_statements(dialect)
    if dialect == "postgresql":
        session.execute(_LOCK_SQL, {"ns": _LOCK_CLASS, "keys": _lock_hashes(lock_keys)})
    for kind, keys, third in (("course", course_keys, "cid"), ("staff", staff_keys, "sid")):
        for mid, fy, other in sorted(k for k in keys if None not in k):
            start, end = fiscal_year_bounds(fy)
            key = {"mid": mid, "fy": fy, third: other}
            session.execute(statements[f"{kind}_upsert"], {**key, "start": start, "end": end})
            if (kind, mid, fy, other) in may_drop:
                session.execute(statements[f"{kind}_zero"], key)


_ENROLLED_STATEMENTS: dict[str, dict] = {}


def _enrolled_statements(dialect: str) -> dict:
    """The per-key statements of ``_write_enrolled_keys``, built once per dialect. Their
    figures are those of ``course_figures`` (the "enrolled" part) and ``staff_figures``."""
    statements = _ENROLLED_STATEMENTS.get(dialect)
    if statements is not None:
        return statements
    from sqlalchemy import true
    from sqlalchemy.types import DateTime


    e, ts, c = Enrollment.__table__, TrainingSession.__table__, Completion.__table__
    mid, fy = bindparam("mid", type_=Integer), bindparam("fy", type_=Integer)
    start, end = bindparam("start", type_=DateTime(timezone=True)), bindparam("end", type_=DateTime(timezone=True))
    in_year = and_(ts.c.starts_at >= start, ts.c.starts_at < end)

    table = CourseYearSummary.__table__
    cid = bindparam("cid", type_=Integer)
    others = [c for c in COURSE_COLUMNS if c not in PARTS["enrolled"]]
    figures = (
        select(mid, fy, cid, *_enrolled_counts(), *(literal_column("0") for _ in others))
        .select_from(_enrollments_with_completions(fy))
        .where(e.c.status == CONFIRMED, in_year, ts.c.course_id == cid, e.c.municipality_id == mid)
    )
    upsert = upsert_insert(dialect, table).from_select(
        ["municipality_id", "fiscal_year", "course_id", *PARTS["enrolled"], *others], figures)
    course_upsert = upsert.on_conflict_do_update(
        index_elements=["municipality_id", "fiscal_year", "course_id"],
        set_={name: upsert.excluded[name] for name in PARTS["enrolled"]},
    )
    course_zero = delete(table).where(
        table.c.municipality_id == mid, table.c.fiscal_year == fy, table.c.course_id == cid,
        *(table.c[name] == 0 for name in COURSE_COLUMNS))

    table = StaffYearSummary.__table__
    sid = bindparam("sid", type_=Integer)
    enrolled = (
        select(func.count(func.distinct(ts.c.course_id)))
        .select_from(e.join(ts, ts.c.id == e.c.session_id))
        .where(e.c.status == CONFIRMED, in_year, e.c.staff_member_id == sid, e.c.municipality_id == mid)
        .scalar_subquery()
    )
    completed = (
        select(func.count())
        .select_from(c)
        .where(c.c.fiscal_year == fy, c.c.status == COMPLETED, c.c.staff_member_id == sid, c.c.municipality_id == mid)
        .scalar_subquery()
    )
    # WHERE true: SQLite needs a WHERE in INSERT … SELECT … ON CONFLICT (its parser).
    upsert = upsert_insert(dialect, table).from_select(
        ["municipality_id", "fiscal_year", "staff_member_id", *STAFF_COLUMNS],
        select(mid, fy, sid, enrolled, completed).where(true()))
    staff_upsert = upsert.on_conflict_do_update(
        index_elements=["municipality_id", "fiscal_year", "staff_member_id"],
        set_={name: upsert.excluded[name] for name in STAFF_COLUMNS},
    )
    staff_zero = delete(table).where(
        table.c.municipality_id == mid, table.c.fiscal_year == fy, table.c.staff_member_id == sid,
        *(table.c[name] == 0 for name in STAFF_COLUMNS))
    statements = _ENROLLED_STATEMENTS[dialect] = {
        "course_upsert": course_upsert, "course_zero": course_zero,
        "staff_upsert": staff_upsert, "staff_zero": staff_zero,
    }
    return statements


# ---------------------------------------------------------------- rebuild and check


def fiscal_years(session: Session) -> list[int]:
    """Every fiscal year with sessions or completions."""

    first, last = session.execute(select(func.min(TrainingSession.starts_at), func.max(TrainingSession.starts_at))).one()
    years = set(session.scalars(select(Completion.fiscal_year).distinct()))
    if first is not None:
        years.update(range(fiscal_year_of(as_utc(first)), fiscal_year_of(as_utc(last)) + 1))
    years.update(session.scalars(select(CourseYearSummary.fiscal_year).distinct()))
    years.update(session.scalars(select(StaffYearSummary.fiscal_year).distinct()))
    return sorted(years)


def _stored(session: Session, model, key_names: tuple[str, str], columns: tuple[str, ...], fiscal_year: int) -> dict:
    table = model.__table__
    return {
        (row[0], row[1]): dict(zip(columns, row[2:], strict=True))
        for row in session.execute(
            select(*(table.c[n] for n in key_names), *(table.c[c] for c in columns))
            .where(table.c.fiscal_year == fiscal_year)
        )
    }


@dataclass
class CheckReport:
    course_rows: int = 0
    staff_rows: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def check(session: Session, limit: int = 20) -> CheckReport:
    """Compare every summary row with a fresh aggregate of the base tables."""
    report = CheckReport()
    for fy in fiscal_years(session):
        for kind, model, keys, columns, fresh in (
            ("course", CourseYearSummary, ("municipality_id", "course_id"), COURSE_COLUMNS,
             course_figures(session, fy)),
            ("staff", StaffYearSummary, ("municipality_id", "staff_member_id"), STAFF_COLUMNS,
             staff_figures(session, fy)),
        ):
            stored = _stored(session, model, keys, columns, fy)
            if kind == "course":
                report.course_rows += len(stored)
            else:
                report.staff_rows += len(stored)
            for key in sorted(set(stored) | set(fresh)):
                if stored.get(key) != fresh.get(key):
                    report.differences.append(
                        f"{kind} fy={fy} {keys[0]}={key[0]} {keys[1]}={key[1]}: "
                        f"stored {stored.get(key)} fresh {fresh.get(key)}")
        if len(report.differences) >= limit:
            break
    return report


def rebuild(session: Session) -> tuple[int, int]:
    """Recompute every summary row from the base tables (in the caller's transaction).
    Returns (course rows, staff rows)."""
    # Statistics first: a rebuild follows bulk loads (synth, SQL imports) of the tables it reads.
    analyze(session, [t.name for t in _SOURCE_TABLES])
    if session.get_bind().dialect.name == "postgresql":
        # Writers recomputing a key wait until the rebuild has committed, then recompute it.
        session.execute(text("LOCK TABLE completion_course_summary, completion_staff_summary IN EXCLUSIVE MODE"))
    session.execute(delete(CourseYearSummary.__table__))
    session.execute(delete(StaffYearSummary.__table__))
    n_course = n_staff = 0
    for fy in fiscal_years(session):
        course_rows = [{"municipality_id": m, "fiscal_year": fy, "course_id": c, **v}
                       for (m, c), v in course_figures(session, fy).items()]
        for chunk in _chunks(course_rows, 5000):
            session.execute(insert(CourseYearSummary.__table__), chunk)
        staff_rows = [{"municipality_id": m, "fiscal_year": fy, "staff_member_id": s, **v}
                      for (m, s), v in staff_figures(session, fy).items()]
        for chunk in _chunks(staff_rows, 5000):
            session.execute(insert(StaffYearSummary.__table__), chunk)
        n_course += len(course_rows)
        n_staff += len(staff_rows)
    return n_course, n_staff
