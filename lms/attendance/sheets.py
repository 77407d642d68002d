"""Printed lists of a session: the 出席簿 (a sign-in sheet with a 署名 column, for sessions
held on site) and the 受講者名簿 (everyone who applied, with their 申込状況).

Who sees whom: the course's trainer and platform admins see every participant; a municipal
admin sees only the participants their municipality enrolled, and only for a session that
concerns their municipality (open to it, or with its staff enrolled). Every printout of
these lists of people is audited, as an export is.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask_babel import gettext as _
from sqlalchemy import exists, select
from sqlalchemy.orm import contains_eager

from lms.attendance.services import can_manage_session
from lms.audit.services import record_access
from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN
from lms.common.errors import NotAllowed, NotFound
from lms.courses.models import TrainingSession
from lms.enrollment.models import ACTIVE_STATUSES, CONFIRMED, PENDING, WAITLISTED, Enrollment
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.roster.models import StaffMember, kana_order

SIGN_IN_SHEET = "sign_in_sheet"
PARTICIPANTS = "participants"
# 申込状況 in the order a 名簿 lists its counts.
STATUS_ORDER = (CONFIRMED, PENDING, WAITLISTED)


@dataclass(frozen=True)
class SheetAccess:
    session: TrainingSession
    municipality_id: int | None  # None: every municipality's participants


def concerns_municipality(session: TrainingSession, municipality_id: int) -> bool:
    """The session is open to the municipality, or some of its staff are enrolled."""
    if session.course.is_open_to(municipality_id):
        return True
    return bool(db.session.scalar(select(exists().where(
        Enrollment.session_id == session.id, Enrollment.municipality_id == municipality_id))))


def sheet_access(session_id: int, user, requested_municipality_id: int | None = None) -> SheetAccess:
    """Whose participants ``user`` may print for the session.

    ``requested_municipality_id``: a platform admin's narrowing to one municipality (the
    route resolves ``?m=`` with lms.common.access.municipality_scope); the course's trainer
    sees every municipality. A municipal admin is always limited to their own municipality;
    NotFound for a session that does not concern it (as the municipal session page answers).
    """
    session = db.session.get(TrainingSession, session_id)
    if session is None:
        raise NotFound(_("研修回が見つかりません。"))
    if can_manage_session(user, session):
        return SheetAccess(session, requested_municipality_id if user.has_role(PLATFORM_ADMIN) else None)
    if user.has_role(MUNICIPAL_ADMIN) and user.municipality_id is not None:
        if not concerns_municipality(session, user.municipality_id):
            raise NotFound(_("研修回が見つかりません。"))
        return SheetAccess(session, user.municipality_id)
    raise NotAllowed(_("この研修回の名簿を見る権限がありません。"))


def _enrollments(access: SheetAccess, statuses: tuple[str, ...]):
    query = (
        select(Enrollment)
        .join(StaffMember, StaffMember.id == Enrollment.staff_member_id)
        .join(Municipality, Municipality.id == Enrollment.municipality_id)
        .options(contains_eager(Enrollment.staff_member), contains_eager(Enrollment.municipality))
        .where(Enrollment.session_id == access.session.id, Enrollment.status.in_(statuses))
    )
    if access.municipality_id is not None:
        query = query.where(Enrollment.municipality_id == access.municipality_id)
    return query


def sign_in_sheet_rows(access: SheetAccess) -> list[Enrollment]:
    """Confirmed participants in 五十音順 of their kana (as they look for their line)."""
    return list(db.session.scalars(_enrollments(access, (CONFIRMED,)).order_by(*kana_order(), StaffMember.id)))


def participant_rows(access: SheetAccess) -> list[Enrollment]:
    """Everyone with an active application, by municipality, then 五十音順."""
    return list(db.session.scalars(
        _enrollments(access, ACTIVE_STATUSES).order_by(Municipality.sort_order, *kana_order(), StaffMember.id)))


def status_counts(rows: list[Enrollment]) -> dict[str, int]:
    counts = dict.fromkeys(STATUS_ORDER, 0)
    for row in rows:
        counts[row.status] = counts.get(row.status, 0) + 1
    return counts


def record_printed(actor, kind: str, access: SheetAccess, count: int) -> None:
    """The audit entry of a list of names made for printing, committed (``record_access``): once
    the page is made, before it leaves (the page reads the rows; ending the request's read
    transaction first would read each one again)."""
    record_access(actor, f"attendance.print_{kind}", "training_session", access.session.id,
                  access.municipality_id, rows=count)
