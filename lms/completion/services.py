"""Completion rules (修了判定), manual decisions, certificate serials and mandatory assignments.

A completion belongs to (staff member, course, fiscal year). It is recomputed whenever
attendance or viewing progress changes; the computation is idempotent: it looks at every
qualifying row, so running it twice changes nothing. A decision taken by a person
(manual completion or revocation) is never overturned by the automatic rule.
"""

from __future__ import annotations

import base64
import secrets
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import and_, func, or_, select

from lms.activities import services as activities
from lms.archives import progress
from lms.archives.models import Archive, ArchiveFile, ViewingProgress
from lms.attendance.models import MANUAL, Attendance
from lms.audit.services import record_action
from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, TRAINER
from lms.common.database import lock_table_for_writes
from lms.common.errors import Conflict, InvalidInput, NotAllowed, NotFound
from lms.common.signals import completion_changed, mandatory_assignment_changed
from lms.common.templating import format_date_jst
from lms.common.timeutil import as_utc, fiscal_year_bounds, fiscal_year_of, utcnow
from lms.completion import summary
from lms.completion.models import (
    COMPLETED,
    REVOKED,
    VIA_ARCHIVE,
    VIA_BOTH,
    VIA_LIVE,
    VIA_MANUAL,
    Completion,
    MandatoryAssignment,
)
from lms.courses.models import BY_ARCHIVE, BY_ATTENDANCE, BY_BOTH, Course, TrainingSession
from lms.courses.models import CANCELLED as SESSION_CANCELLED
from lms.extensions import db
from lms.roster.models import StaffMember

SERIAL_PREFIX = "MNB"
REASON_MAX = 1000


# ---------------------------------------------------------------- certificate serials


def new_certificate_serial(fiscal_year: int) -> str:
    """"MNB-2026-" + 16 base32 characters (80 random bits): unguessable, easy to read aloud."""
    token = base64.b32encode(secrets.token_bytes(10)).decode("ascii")
    return f"{SERIAL_PREFIX}-{fiscal_year}-{token}"


def normalise_serial(value: str) -> str:
    """A serial as typed or read aloud: full-width letters, digits and hyphens (ＭＮＢ－２０２６,
    as a Japanese input method writes them) read as ASCII, any case, spaces around it ignored."""
    return unicodedata.normalize("NFKC", value or "").strip().upper()[:40]


# ---------------------------------------------------------------- the rule


@dataclass(frozen=True)
class Basis:
    """The earliest qualifying evidence of one kind."""

    at: datetime
    session_id: int | None = None
    archive_id: int | None = None


def _counts_as_attended(threshold_pct):
    """Attendance that counts toward 修了: judged attended, at or above the course's threshold
    (an imported judgement is checked against today's threshold) — or judged attended by hand by
    the trainer (出欠の手動修正), whatever percentage was measured: their verdict decides."""
    return and_(Attendance.attended.is_(True),
                or_(Attendance.attended_pct >= threshold_pct, Attendance.source == MANUAL))


def live_basis(staff_member_id: int, course: Course, fiscal_year: int) -> Basis | None:
    """Attendance judged as attended, at or above the course threshold, in a session of the
    course held in the fiscal year and over by now. Qualifying time: the end of the earliest
    such session. (A roll call or check-in at reception records presence up to 30 minutes
    before the start; the training is completed, and its 修了証 issued, once the session has
    ended: ``completions_due_as_sessions_end`` finds those whose session has just ended.)

    A 連続講座 (sessions sharing ``series_id``) counts as a whole: once the parts attended —
    a make-up part for the part it replaces — reach ``series_threshold_pct`` of its parts
    (called-off parts not counted), at the end of the part that reached it."""
    start, end = fiscal_year_bounds(fiscal_year)
    rows = db.session.execute(
        select(TrainingSession.id, TrainingSession.ends_at, TrainingSession.series_id, TrainingSession.makeup_for_id)
        .join(Attendance, Attendance.session_id == TrainingSession.id)
        .where(
            Attendance.staff_member_id == staff_member_id,
            _counts_as_attended(course.attendance_threshold_pct),
            TrainingSession.course_id == course.id,
            TrainingSession.starts_at >= start,
            TrainingSession.starts_at < end,
            TrainingSession.ends_at <= utcnow(),
        )
        .order_by(TrainingSession.ends_at, TrainingSession.id)
    ).all()
    series_ids = {row.series_id for row in rows if row.series_id is not None}
    parts: dict[int, int] = {sid: int(n) for sid, n in db.session.execute(
        select(TrainingSession.series_id, func.count())
        .where(TrainingSession.series_id.in_(series_ids), TrainingSession.makeup_for_id.is_(None),
               TrainingSession.status != SESSION_CANCELLED)
        .group_by(TrainingSession.series_id)) if sid is not None} if series_ids else {}
    attended: dict[int, set[int]] = {}
    for row in rows:  # in order of their end: the first that qualifies is the basis
        if row.series_id is not None:
            done = attended.setdefault(row.series_id, set())
            done.add(row.makeup_for_id or row.id)
            total = parts.get(row.series_id, 0)
            if not total or len(done) * 100 < total * course.series_threshold_pct:
                continue
        ends_at = as_utc(row.ends_at)
        assert ends_at is not None  # a session always has an end
        return Basis(at=ends_at, session_id=row.id)
    return None


def archive_basis(staff_member_id: int, course: Course, fiscal_year: int) -> Basis | None:
    """An archive of the course watched through (every part: ``progress.watched_through``) at
    the course's viewing threshold, within the fiscal year. Qualifying time: when the last part
    reached it; of several archives, the one watched through first."""
    start, end = fiscal_year_bounds(fiscal_year)
    found = progress.watched_through(staff_member_id, course.viewing_threshold_pct, course_id=course.id,
                                     start=start, end=end)
    return Basis(at=found[1], archive_id=found[0]) if found else None


def evaluate_rule(mode: str, live: Basis | None, archive: Basis | None) -> tuple[str, Basis, Basis | None] | None:
    """(method, primary basis, secondary basis) when the course's rule is met, else None."""
    if mode == BY_ATTENDANCE:
        return (VIA_LIVE, live, None) if live else None
    if mode == BY_ARCHIVE:
        return (VIA_ARCHIVE, archive, None) if archive else None
    if mode == BY_BOTH:
        if not (live and archive):
            return None
        # Completed once the second requirement was met.
        later, earlier = (live, archive) if live.at >= archive.at else (archive, live)
        return (VIA_BOTH, later, earlier)
    # either: the earliest of the two
    if live and (archive is None or live.at <= archive.at):
        return (VIA_LIVE, live, None)
    if archive:
        return (VIA_ARCHIVE, archive, None)
    return None


def recompute_completion(staff_member_id: int, course_id: int, fiscal_year: int) -> Completion | None:
    """Bring the completion of (staff, course, fiscal year) in line with the evidence.

    Idempotent. Never changes a decision taken by a person. An automatic completion whose
    evidence disappeared is revoked (and restored, with the same serial, if the evidence
    comes back). Does not commit.
    """
    course = db.session.get(Course, course_id)
    staff = db.session.get(StaffMember, staff_member_id)
    if course is None or staff is None:
        return None
    existing = db.session.scalar(
        select(Completion).where(
            Completion.staff_member_id == staff_member_id,
            Completion.course_id == course_id,
            Completion.fiscal_year == fiscal_year,
        )
    )
    if existing is not None and existing.decided_by_id is not None:
        return existing  # a person decided: manual completion or revocation stands
    counted = _counted(existing)
    verdict = evaluate_rule(
        course.completion_mode,
        live_basis(staff_member_id, course, fiscal_year),
        archive_basis(staff_member_id, course, fiscal_year),
    )
    last_done = None
    if verdict is not None:  # and every required activity (survey submitted, quiz passed, report confirmed)
        # (what became a requirement after the completion was first granted does not count)
        granted_at = _granted_at(existing)
        missing, last_done = activities.unmet_required(staff_member_id, course_id, fiscal_year, granted_at)
        if missing:
            verdict = None
    if verdict is None:
        if existing is not None and existing.status == COMPLETED:
            existing.status = REVOKED
            existing.revoked_at = utcnow()
            existing.reason = "basis_removed"
            _follow(existing, counted)
        return existing
    method, primary, secondary = verdict
    session_id = primary.session_id or (secondary.session_id if secondary else None)
    archive_id = primary.archive_id or (secondary.archive_id if secondary else None)
    if existing is None:
        existing = Completion(
            staff_member_id=staff_member_id,
            course_id=course_id,
            municipality_id=staff.municipality_id,
            fiscal_year=fiscal_year,
            certificate_serial=new_certificate_serial(fiscal_year),
            reason="",
        )
        db.session.add(existing)
    changes = {
        "status": COMPLETED,
        "method": method,
        "completed_at": max(primary.at, last_done) if last_done else primary.at,
        "session_id": session_id,
        "archive_id": archive_id,
        "revoked_at": None,
    }
    for key, value in changes.items():
        current = getattr(existing, key)
        if key == "completed_at":
            current = as_utc(current)
        if current != value:
            setattr(existing, key, value)
    if existing.reason == "basis_removed":
        existing.reason = ""
    if not existing.certificate_serial:
        existing.certificate_serial = new_certificate_serial(fiscal_year)
    db.session.flush()
    _follow(existing, counted)
    return existing


def _counted(completion: Completion | None) -> tuple | None:
    """What the dashboard summaries count of a completion: its status, method and month."""
    if completion is None:
        return None
    return completion.status, completion.method, as_utc(completion.completed_at)


def _follow(completion: Completion, counted_before: tuple | None) -> None:
    """The summaries follow a completion written here (this module writes every completion),
    and a change of its status is announced (``completion_changed``)."""
    if _counted(completion) != counted_before:
        summary.update_for_completion(db.session(), completion.municipality_id, completion.fiscal_year,
                                      completion.course_id, completion.staff_member_id)
    old_status = counted_before[0] if counted_before else None
    if old_status != completion.status:
        completion_changed.send(completion, old_status=old_status, new_status=completion.status)


def recompute_for_session(staff_member_id: int, session_id: int) -> Completion | None:
    session = db.session.get(TrainingSession, session_id)
    if session is None:
        return None
    return recompute_completion(staff_member_id, session.course_id, fiscal_year_of(session.starts_at))


# How far back the worker looks for sessions that ended (it runs every few minutes; a day
# covers a worker stopped for a night).
ENDED_SESSIONS_WINDOW = timedelta(hours=24)


def completions_due_as_sessions_end(now: datetime | None = None) -> list[tuple[int, int, int]]:
    """(staff member, course, fiscal year) of attendance that qualifies (attended, at or above
    the course's threshold) in a session ended within ``ENDED_SESSIONS_WINDOW``, with no
    completion granted or decided by a person: presence recorded before the end counts from the
    end (``live_basis``), and nothing else recomputes then. Two statements; recomputing is
    idempotent. (Some of those found cannot complete yet — a required survey not submitted, a
    series not at its threshold — and are recomputed on each round for the day; a worker
    stopped for longer than the window leaves those it missed to their next change.)"""
    now = now or utcnow()
    rows = db.session.execute(
        select(Attendance.staff_member_id, TrainingSession.course_id, TrainingSession.starts_at)
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .join(Course, Course.id == TrainingSession.course_id)
        .where(_counts_as_attended(Course.attendance_threshold_pct),
               Course.completion_mode != BY_ARCHIVE,  # (attendance cannot complete those)
               TrainingSession.ends_at > now - ENDED_SESSIONS_WINDOW, TrainingSession.ends_at <= now)
    ).all()
    due = {(staff_id, course_id, fiscal_year_of(starts_at)) for staff_id, course_id, starts_at in rows}
    if not due:
        return []
    # Granted already, or decided by a person (a recomputation changes neither).
    granted = {(staff_id, course_id, year) for staff_id, course_id, year in db.session.execute(
        select(Completion.staff_member_id, Completion.course_id, Completion.fiscal_year)
        .where(or_(Completion.status == COMPLETED, Completion.decided_by_id.is_not(None)),
               Completion.course_id.in_({c for _s, c, _y in due}),
               Completion.staff_member_id.in_({s for s, _c, _y in due})))}
    return sorted(due - granted)


def not_completed_with_evidence(course_id: int) -> list[tuple[int, int]]:
    """(staff member, fiscal year) pairs of the course with attendance or viewing on record and
    no completion granted: those a requirement of the course can hold back (a requirement
    dropped may let them complete). Two statements."""
    pairs = {(staff_id, fiscal_year_of(starts_at)) for staff_id, starts_at in db.session.execute(
        select(Attendance.staff_member_id, TrainingSession.starts_at)
        .join(TrainingSession, TrainingSession.id == Attendance.session_id)
        .where(TrainingSession.course_id == course_id, Attendance.attended.is_(True)).distinct())}
    pairs |= {(staff_id, fiscal_year_of(moment)) for staff_id, completed_at, updated_at in db.session.execute(
        select(ViewingProgress.staff_member_id, ViewingProgress.completed_at, ViewingProgress.updated_at)
        .join(ArchiveFile, ArchiveFile.id == ViewingProgress.archive_file_id)
        .join(Archive, Archive.id == ArchiveFile.archive_id)
        .where(Archive.course_id == course_id, ViewingProgress.watched_seconds > 0))
        if (moment := completed_at or updated_at) is not None}
    granted = {(staff_id, year) for staff_id, year in db.session.execute(
        select(Completion.staff_member_id, Completion.fiscal_year)
        .where(Completion.course_id == course_id, Completion.status == COMPLETED))}
    return sorted(pairs - granted)


def recompute_for_archive(staff_member_id: int, archive_id: int) -> list[Completion]:
    """Viewing changed: recompute every fiscal year the viewing may count for, and any
    existing completion of the course (its basis may have been this video)."""
    archive = db.session.get(Archive, archive_id)
    if archive is None:
        return []
    years = {fiscal_year_of(utcnow())}
    times = db.session.execute(
        select(ViewingProgress.completed_at, ViewingProgress.updated_at)
        .join(ArchiveFile, ArchiveFile.id == ViewingProgress.archive_file_id)
        .where(ViewingProgress.staff_member_id == staff_member_id, ArchiveFile.archive_id == archive_id)
    ).all()
    for completed_at, updated_at in times:
        moment = completed_at or updated_at
        if moment is not None:
            years.add(fiscal_year_of(moment))  # naive (SQLite) is taken as UTC
    years.update(
        db.session.scalars(
            select(Completion.fiscal_year).where(
                Completion.staff_member_id == staff_member_id, Completion.course_id == archive.course_id
            )
        )
    )
    results = [recompute_completion(staff_member_id, archive.course_id, year) for year in sorted(years)]
    return [c for c in results if c is not None]


# ---------------------------------------------------------------- manual decisions


def can_decide(actor, course: Course) -> bool:
    """Trainers of the course (its owner) and platform admins."""
    if actor is None or not getattr(actor, "is_authenticated", True):
        return False
    if actor.has_role(PLATFORM_ADMIN):
        return True
    return actor.has_role(TRAINER) and course.owner_id == actor.id


def _clean_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("理由を入力してください。"), field="reason")
    if len(reason) > REASON_MAX:
        raise InvalidInput(_("理由は%(n)d文字以内で入力してください。", n=REASON_MAX), field="reason")
    return reason


# ---------------------------------------------------------------- fiscal years

# The fiscal years the completion area works with: what its pages and exports show (?fy=) and
# what its forms accept. Ten years back and the next one (mandatory assignments are planned a
# year ahead); a completion is never recorded for a year that has not begun.
YEARS_BACK = 10
YEARS_AHEAD = 1


def fiscal_year_range(*, future: bool = True) -> tuple[int, int]:
    """The first and last fiscal year shown and accepted; ``future=False`` ends at the current one."""
    current = fiscal_year_of(utcnow())
    return current - YEARS_BACK, current + (YEARS_AHEAD if future else 0)


def fiscal_year_range_message(*, future: bool = True) -> str:
    first, last = fiscal_year_range(future=future)
    return _("年度は%(first)dから%(last)dまでの数で入力してください。", first=first, last=last)


def check_fiscal_year(fiscal_year: int) -> None:
    """Refuse a year outside ``fiscal_year_range()``: it would be saved and never shown."""
    first, last = fiscal_year_range()
    if not first <= fiscal_year <= last:
        raise InvalidInput(fiscal_year_range_message(), field="fiscal_year")


def complete_manually(staff_member_id: int, course_id: int, fiscal_year: int, actor, reason: str) -> Completion:
    """Mark a completion by hand (e.g. attended on site without a record). Audited."""
    course = db.session.get(Course, course_id)
    staff = db.session.get(StaffMember, staff_member_id)
    if course is None or staff is None:
        raise NotFound(_("対象の職員または研修が見つかりません。"))
    if not can_decide(actor, course):
        raise NotAllowed(_("この研修の修了を判定する権限がありません。"))
    reason = _clean_reason(reason)
    if fiscal_year > fiscal_year_of(utcnow()):  # (its certificate would be dated in the future)
        raise InvalidInput(_("まだ始まっていない年度の修了は登録できません。"), field="fiscal_year")
    if fiscal_year < fiscal_year_range()[0]:
        raise InvalidInput(fiscal_year_range_message(future=False), field="fiscal_year")
    completion = db.session.scalar(
        select(Completion).where(
            Completion.staff_member_id == staff_member_id,
            Completion.course_id == course_id,
            Completion.fiscal_year == fiscal_year,
        )
    )
    counted = _counted(completion)
    if completion is None:
        completion = Completion(
            staff_member_id=staff_member_id,
            course_id=course_id,
            municipality_id=staff.municipality_id,
            fiscal_year=fiscal_year,
            certificate_serial=new_certificate_serial(fiscal_year),
        )
        db.session.add(completion)
    now = utcnow()
    start, end = fiscal_year_bounds(fiscal_year)
    completion.status = COMPLETED
    completion.method = VIA_MANUAL
    completed_at = as_utc(completion.completed_at)
    if completed_at is None or not (start <= completed_at < end):
        completion.completed_at = min(max(now, start), end - timedelta(seconds=1))
    completion.decided_by_id = actor.id
    completion.reason = reason
    completion.revoked_at = None
    if not completion.certificate_serial:
        completion.certificate_serial = new_certificate_serial(fiscal_year)
    db.session.flush()
    _follow(completion, counted)
    record_action(
        actor, "completion.manual", "completion", completion.id, staff.municipality_id,
        staff_member_id=staff_member_id, course_id=course_id, fiscal_year=fiscal_year, reason=reason,
    )
    return completion


def revoke_completion(completion_id: int, actor, reason: str) -> Completion:
    """Revoke a completion (取消). The certificate then verifies as revoked. Audited."""
    completion = db.session.get(Completion, completion_id)
    if completion is None:
        raise NotFound(_("修了記録が見つかりません。"))
    if not can_decide(actor, completion.course):
        raise NotAllowed(_("この研修の修了を判定する権限がありません。"))
    reason = _clean_reason(reason)
    if completion.status == REVOKED and completion.decided_by_id is not None:
        raise InvalidInput(_("この修了はすでに取り消されています。"))
    counted = _counted(completion)
    completion.status = REVOKED
    completion.revoked_at = utcnow()
    completion.decided_by_id = actor.id
    completion.reason = reason
    db.session.flush()
    _follow(completion, counted)
    record_action(
        actor, "completion.revoke", "completion", completion.id, completion.municipality_id,
        staff_member_id=completion.staff_member_id, course_id=completion.course_id,
        fiscal_year=completion.fiscal_year, reason=reason,
    )
    return completion


# ---------------------------------------------------------------- mandatory assignments


def can_manage_assignment(actor, municipality_id: int | None) -> bool:
    if actor.has_role(PLATFORM_ADMIN):
        return True
    return actor.has_role(MUNICIPAL_ADMIN) and municipality_id is not None and municipality_id == actor.municipality_id


def save_mandatory_assignment(
    actor,
    *,
    course_id: int,
    fiscal_year: int,
    municipality_id: int | None,
    department: str = "",
    job_title: str = "",
    new_staff_fiscal_year: int | None = None,
    due_on: date,
    note: str = "",
    assignment_id: int | None = None,
) -> MandatoryAssignment:
    """Create or change a mandatory assignment. Municipal admins: own municipality only;
    platform admins: any municipality or all (None)."""
    if not can_manage_assignment(actor, municipality_id):
        raise NotAllowed(_("この区市町村の必修指定を変更する権限がありません。"))
    if db.session.get(Course, course_id) is None:
        raise InvalidInput(_("研修が見つかりません。"))
    check_fiscal_year(fiscal_year)
    # From the year's 1 April to the end of the following fiscal year.
    first, last = date(fiscal_year, 4, 1), date(fiscal_year + 2, 3, 31)
    if due_on < first:
        raise InvalidInput(_("期限が早すぎます。期限は%(first)sから%(last)sまでの日付にしてください。",
                             first=format_date_jst(first), last=format_date_jst(last)), field="due_on")
    if due_on > last:
        raise InvalidInput(_("期限が遅すぎます。期限は%(first)sから%(last)sまでの日付にしてください。",
                             first=format_date_jst(first), last=format_date_jst(last)), field="due_on")
    department = (department or "").strip()[:200]
    job_title = (job_title or "").strip()[:100]
    # One assignment per course, year and group (the unique indexes of the model): the check and
    # the write one transaction at a time, so two posts at once make one, the other told why.
    lock_table_for_writes(MandatoryAssignment.__tablename__)
    same = db.session.scalar(
        select(MandatoryAssignment).where(
            MandatoryAssignment.course_id == course_id,
            MandatoryAssignment.fiscal_year == fiscal_year,
            _is(MandatoryAssignment.municipality_id, municipality_id),
            MandatoryAssignment.department == department,
            MandatoryAssignment.job_title == job_title,
            _is(MandatoryAssignment.new_staff_fiscal_year, new_staff_fiscal_year),
            MandatoryAssignment.id != (assignment_id or 0),
        ).order_by(MandatoryAssignment.id).limit(1)
    )
    if same is not None:
        raise Conflict(
            _("同じ研修・年度・対象の必修指定がすでにあります（期限：%(due)s）。期限やメモを変えるときは、その必修指定を編集してください。",
              due=format_date_jst(same.due_on)),
            existing_id=same.id,
        )
    if assignment_id is not None:
        assignment = db.session.get(MandatoryAssignment, assignment_id)
        if assignment is None:
            raise NotFound(_("必修指定が見つかりません。"))
        if not can_manage_assignment(actor, assignment.municipality_id):
            raise NotAllowed(_("この区市町村の必修指定を変更する権限がありません。"))
        action = "completion.assignment_update"
        before = (assignment.course_id, assignment.fiscal_year)
    else:
        before = None
        assignment = MandatoryAssignment(created_by_id=actor.id)
        db.session.add(assignment)
        action = "completion.assignment_create"
    assignment.course_id = course_id
    assignment.fiscal_year = fiscal_year
    assignment.municipality_id = municipality_id
    assignment.department = department
    assignment.job_title = job_title
    assignment.new_staff_fiscal_year = new_staff_fiscal_year
    assignment.due_on = due_on
    assignment.note = (note or "").strip()[:1000]
    db.session.flush()
    record_action(
        actor, action, "mandatory_assignment", assignment.id, municipality_id,
        course_id=course_id, fiscal_year=fiscal_year, department=assignment.department,
        job_title=assignment.job_title, new_staff_fiscal_year=new_staff_fiscal_year, due_on=due_on.isoformat(),
    )
    mandatory_assignment_changed.send(assignment, actor=actor, action="updated" if before else "created",
                                      before=before)
    return assignment


def _is(column, value):
    """``column = value``, NULL matching NULL."""
    return column.is_(None) if value is None else column == value


def delete_mandatory_assignment(actor, assignment_id: int) -> None:
    assignment = db.session.get(MandatoryAssignment, assignment_id)
    if assignment is None:
        raise NotFound(_("必修指定が見つかりません。"))
    if not can_manage_assignment(actor, assignment.municipality_id):
        raise NotAllowed(_("この区市町村の必修指定を変更する権限がありません。"))
    record_action(
        actor, "completion.assignment_delete", "mandatory_assignment", assignment.id, assignment.municipality_id,
        course_id=assignment.course_id, fiscal_year=assignment.fiscal_year,
    )
    mandatory_assignment_changed.send(assignment, actor=actor, action="deleted", before=None)
    db.session.delete(assignment)
    db.session.flush()


def assignment_members_filter(assignment: MandatoryAssignment, municipality_id: int | None):
    """The roster condition for an assignment's group (active staff), within a scope."""
    conditions = [StaffMember.status == "active"]
    if assignment.municipality_id is not None:
        conditions.append(StaffMember.municipality_id == assignment.municipality_id)
    if municipality_id is not None:
        conditions.append(StaffMember.municipality_id == municipality_id)
    if assignment.department:
        conditions.append(StaffMember.department == assignment.department)
    if assignment.job_title:
        conditions.append(StaffMember.job_title == assignment.job_title)
    if assignment.new_staff_fiscal_year is not None:
        conditions.append(StaffMember.hired_on >= date(assignment.new_staff_fiscal_year, 4, 1))
        conditions.append(StaffMember.hired_on < date(assignment.new_staff_fiscal_year + 1, 4, 1))
    return and_(*conditions)


def _granted_at(completion: Completion | None):
    """When a completion was first granted (its certificate issued), or None."""
    return completion.created_at if completion is not None and completion.certificate_serial else None


def first_granted(staff_member_id: int, course_ids: list[int]) -> dict:
    """{(course_id, fiscal_year): when first granted} of the staff member's completions."""
    if not course_ids:
        return {}
    rows = db.session.scalars(select(Completion).where(Completion.staff_member_id == staff_member_id,
                                                       Completion.course_id.in_(course_ids)))
    return {(row.course_id, row.fiscal_year): granted for row in rows if (granted := _granted_at(row)) is not None}
