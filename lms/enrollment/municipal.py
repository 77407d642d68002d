"""The municipal admin's (研修担当) work: what needs deciding, quota use, sessions open to
the municipality, and nomination by CSV. Every change goes through the enrollment
services (one transaction each, audited there)."""

from __future__ import annotations

from dataclasses import dataclass, field

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from lms.common.errors import DomainError, InvalidInput
from lms.common.ids import parse_id
from lms.common.timeutil import utcnow
from lms.courses.models import PUBLISHED, SCHEDULED, Course, CourseEligibility, SessionQuota, TrainingSession
from lms.enrollment.models import ACTIVE_STATUSES, CSV, PENDING, Enrollment
from lms.enrollment.services import nominate
from lms.extensions import db
from lms.roster.models import ACTIVE, StaffMember, kana_order
from lms.roster.services import normalise_text, read_csv, staff_search_condition

SESSION_COLUMNS = ("研修回ID", "研修回 ID", "session_id", "session id", "Session ID")
MAX_NOMINATION_ROWS = 1_000  # each row is its own enrollment transaction


def pending_approvals(municipality_id: int) -> list[Enrollment]:
    return list(db.session.scalars(
        select(Enrollment)
        .options(joinedload(Enrollment.staff_member), joinedload(Enrollment.session).joinedload(TrainingSession.course))
        .where(Enrollment.municipality_id == municipality_id, Enrollment.status == PENDING)
        .order_by(Enrollment.requested_at, Enrollment.id)
    ).unique())


def quota_use(municipality_id: int) -> list[SessionQuota]:
    """割当人数 of upcoming sessions: seats held and used."""
    return list(db.session.scalars(
        select(SessionQuota)
        .join(TrainingSession, TrainingSession.id == SessionQuota.session_id)
        .options(joinedload(SessionQuota.session).joinedload(TrainingSession.course))
        .where(SessionQuota.municipality_id == municipality_id, TrainingSession.ends_at > utcnow(),
               TrainingSession.status == SCHEDULED)
        .order_by(TrainingSession.starts_at)
    ).unique())


def open_sessions_query(municipality_id: int):
    """Upcoming sessions of published courses open to the municipality."""
    eligible = select(CourseEligibility.course_id).where(CourseEligibility.municipality_id == municipality_id)
    return (
        select(TrainingSession)
        .join(Course, Course.id == TrainingSession.course_id)
        .options(joinedload(TrainingSession.course))
        .where(
            Course.status == PUBLISHED,
            TrainingSession.status == SCHEDULED,
            TrainingSession.starts_at > utcnow(),
            or_(Course.eligible_all.is_(True), Course.id.in_(eligible)),
        )
        .order_by(TrainingSession.starts_at, TrainingSession.id)
    )


def session_open_to(session: TrainingSession, municipality_id: int) -> bool:
    return session.course.is_open_to(municipality_id)


def municipality_enrollments(session_id: int, municipality_id: int) -> list[Enrollment]:
    return list(db.session.scalars(
        select(Enrollment)
        .options(joinedload(Enrollment.staff_member))
        .where(Enrollment.session_id == session_id, Enrollment.municipality_id == municipality_id,
               Enrollment.status.in_(ACTIVE_STATUSES))
        .order_by(Enrollment.status, Enrollment.arrival_seq)
    ).unique())


def search_staff(municipality_id: int, q: str, limit: int = 20) -> list[StaffMember]:
    if not normalise_text(q):
        return []
    return list(db.session.scalars(
        select(StaffMember)
        .where(StaffMember.municipality_id == municipality_id, StaffMember.status == ACTIVE,
               staff_search_condition(q))
        .order_by(*kana_order())
        .limit(limit)
    ))


def staff_by_number(municipality_id: int, employee_number: str) -> StaffMember | None:
    return db.session.scalar(select(StaffMember).where(
        StaffMember.municipality_id == municipality_id,
        StaffMember.employee_number == normalise_text(employee_number),
    ))


# ---------------------------------------------------------------- nomination by CSV

NOMINATED, ALREADY, REFUSED = "nominated", "already", "refused"
NOMINATION_LABELS = {NOMINATED: _l("申し込みました"), ALREADY: _l("変更なし（申込済み）"), REFUSED: _l("取込不可")}


@dataclass
class NominationRow:
    line: int
    session_id: str
    employee_number: str
    name: str
    outcome: str
    message: str


@dataclass
class NominationReport:
    encoding: str
    rows: list[NominationRow] = field(default_factory=list)

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(NOMINATION_LABELS, 0)
        for row in self.rows:
            counts[row.outcome] += 1
        return counts


def nominate_from_csv(municipality_id: int, data: bytes, actor) -> NominationReport:
    """Nominate every (研修回ID, 職員番号) row of a CSV; a per-row report of what was done.

    Each row is its own transaction (through ``nominate``), so a refused row never blocks
    the others; uploading the same file twice nominates nobody twice ("変更なし").
    """
    encoding, header, records = read_csv(data, ("職員番号",), max_rows=MAX_NOMINATION_ROWS)
    session_column = next((c for c in SESSION_COLUMNS if c in header), None)
    if session_column is None:
        raise InvalidInput(_("見出し行に必要な列がありません：%(columns)s（文字コード：%(encoding)s）", columns="研修回ID", encoding=encoding))
    report = NominationReport(encoding=encoding)
    seen: dict[tuple[int, str], int] = {}
    for line, raw in records:
        session_text = normalise_text(raw.get(session_column, ""))
        number = normalise_text(raw.get("職員番号", ""))
        row = NominationRow(line, session_text, number, "", REFUSED, "")
        report.rows.append(row)
        session_id = parse_id(session_text)
        if session_id is None:
            if not session_text:
                row.message = _("研修回IDがありません。")
            elif session_text.isascii() and session_text.isdigit():  # a number, but no id (0, too many digits)
                row.message = _("研修回ID %(id)s の研修回がありません。", id=session_text)
            else:
                row.message = _("研修回ID「%(value)s」は研修回の番号ではありません。研修回の一覧にある番号（1以上の整数）を入れてください。",
                                value=session_text)
            continue
        if not number:
            row.message = _("職員番号がありません。")
            continue
        if (session_id, number) in seen:
            row.outcome, row.message = ALREADY, _("ファイル内の %(line)s 行目と同じ内容のため、飛ばしました。", line=seen[(session_id, number)])
            continue
        seen[(session_id, number)] = line
        member = staff_by_number(municipality_id, number)
        if member is None:
            row.message = _("職員番号 %(number)s の職員が名簿にありません。", number=number)
            continue
        row.name = member.full_name
        session = db.session.get(TrainingSession, session_id)
        db.session.rollback()  # nominate() starts its own write transaction
        if session is None:
            row.message = _("研修回ID %(id)s の研修回がありません。", id=session_id)
            continue
        try:
            result = nominate(session_id, member.id, actor, source=CSV)
        except DomainError as exc:
            row.message = exc.message
            continue
        row.outcome = NOMINATED if result.created else ALREADY
        row.message = result.message
    return report
