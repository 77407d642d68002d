"""Attendance: Teams reports, roll call, QR check-in and manual correction, one row per person.

Raw Teams records are kept as received (``AttendanceRecord``) and matched to a staff member
by Entra object id (with tenant) first and e-mail second, never by display name. The
per-person ``Attendance`` row is derived from the matched records (intervals merged and
clipped to the scheduled time) unless a trainer took the roll or corrected it by hand.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import UTC, datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, or_, select

from lms.attendance.models import MANUAL, QR_CHECKIN, ROLL_CALL, TEAMS_REPORT, Attendance, AttendanceRecord
from lms.attendance.series import ATTENDED, CALLED_OFF, MISSED, NOT_RECORDED
from lms.audit.services import record_action
from lms.auth.models import PLATFORM_ADMIN, TRAINER, User
from lms.common.database import ensure_writer, is_sqlite
from lms.common.errors import Conflict, InvalidInput, NotAllowed, NotFound
from lms.common.signals import attendance_changed
from lms.common.timeutil import as_utc, utcnow
from lms.courses.models import CANCELLED, HYBRID, ONSITE, TrainingSession
from lms.enrollment.models import CONFIRMED, Enrollment
from lms.extensions import db
from lms.municipalities.models import TenantMapping
from lms.roster.models import StaffMember, kana_order

DEFAULT_THRESHOLD_PCT = 75
CHECKIN_STEP_SECONDS = 60
# Codes of the last few minutes are accepted (the learner may first have to sign in).
CHECKIN_VALID_STEPS = 5
CHECKIN_EARLY = timedelta(minutes=30)
ONSITE_DELIVERIES = (ONSITE, HYBRID)

_FRACTION = re.compile(r"(\.\d{1,6})\d*")


# ---------------------------------------------------------------- who runs a session


def can_manage_session(user, session: TrainingSession) -> bool:
    """The course's owner (a trainer) and platform admins take the roll, correct attendance
    and run the session's Teams meeting."""
    if not getattr(user, "is_authenticated", False):
        return False
    if user.has_role(PLATFORM_ADMIN):
        return True
    return user.has_role(TRAINER) and session.course is not None and session.course.owner_id == user.id


def get_managed_session(session_id: int, user) -> TrainingSession:
    session = db.session.get(TrainingSession, session_id)
    if session is None:
        raise NotFound(_("研修回が見つかりません。"))
    if not can_manage_session(user, session):
        raise NotAllowed(_("この研修回を管理する権限がありません。"))
    return session


def parse_graph_datetime(value: str | None) -> datetime | None:
    """Graph's DateTimeOffset ("2021-10-05T04:38:27.6027225Z": 7 fraction digits) as aware UTC."""
    if not value:
        return None
    text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def merge_intervals(intervals: list[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    merged: list[tuple[datetime, datetime]] = []
    for start, end in sorted(i for i in intervals if i[1] > i[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def clip_intervals(intervals, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    clipped = [(max(a, start), min(b, end)) for a, b in intervals]
    return merge_intervals([(a, b) for a, b in clipped if b > a])


def threshold_of(session: TrainingSession) -> int:
    return session.course.attendance_threshold_pct or DEFAULT_THRESHOLD_PCT


def _lock_session(session: TrainingSession) -> None:
    """Serialise attendance writers of one session (SQLite: write lock; PostgreSQL: row lock)."""
    if is_sqlite():
        # Only while the transaction has written nothing: ending it then loses nothing (a
        # request's transaction has read the signed-in user; a reader turned writer would
        # fail at once while another request writes). After a write the transaction already
        # holds the lock, and the unique indexes refuse duplicates.
        ensure_writer()
        return
    db.session.execute(select(TrainingSession.id).where(TrainingSession.id == session.id).with_for_update())


# ---------------------------------------------------------------- matching Teams records


def _confirmed_staff_ids(session_id: int) -> set[int]:
    return set(db.session.scalars(
        select(Enrollment.staff_member_id).where(Enrollment.session_id == session_id, Enrollment.status == CONFIRMED)
    ))


def confirmed_staff_ids(session_id: int) -> set[int]:
    return _confirmed_staff_ids(session_id)


def lock_session(session: TrainingSession) -> None:
    _lock_session(session)


def match_identity(identity_id: str, tenant_id: str, email: str, enrolled: set[int]) -> tuple[int | None, str]:
    """(staff_member_id, "oid" | "email") or (None, "") — never by display name.

    Object id with tenant first (the roster's linked identity, or the signed-in user's);
    then e-mail against sign-in name or mail address, limited to the municipalities of
    that tenant where the tenant is known; an ambiguous e-mail is resolved only in favour
    of a confirmed enrollee, otherwise left for the trainer.
    """
    if identity_id:
        query = select(StaffMember.id).where(StaffMember.entra_object_id == identity_id)
        if tenant_id:
            query = query.where(or_(StaffMember.entra_tenant_id == tenant_id, StaffMember.entra_tenant_id.is_(None)))
        ids = set(db.session.scalars(query))
        user_query = select(StaffMember.id).join(User, User.id == StaffMember.user_id).where(User.object_id == identity_id)
        if tenant_id:
            user_query = user_query.where(User.tenant_id == tenant_id)
        ids |= set(db.session.scalars(user_query))
        if len(ids) == 1:
            return ids.pop(), "oid"
        if len(ids & enrolled) == 1:
            return (ids & enrolled).pop(), "oid"
    email = (email or "").strip().lower()
    if email and "@" in email:
        query = select(StaffMember.id).where(
            or_(func.lower(StaffMember.sign_in_name) == email, func.lower(StaffMember.email) == email)
        )
        if tenant_id:
            domain = email.rsplit("@", 1)[1]
            mappings = db.session.scalars(select(TenantMapping).where(TenantMapping.tenant_id == tenant_id)).all()
            municipalities = {m.municipality_id for m in mappings if not m.mail_domain or m.mail_domain.lower() == domain}
            if municipalities:
                query = query.where(StaffMember.municipality_id.in_(municipalities))
        ids = set(db.session.scalars(query))
        if len(ids) == 1:
            return ids.pop(), "email"
        if len(ids & enrolled) == 1:
            return (ids & enrolled).pop(), "email"
    return None, ""


def _record_values(session_id: int, report_id: str, record: dict) -> dict:
    identity = record.get("identity") or {}
    intervals = []
    for interval in record.get("attendanceIntervals") or []:
        joined = parse_graph_datetime(interval.get("joinDateTime"))
        left = parse_graph_datetime(interval.get("leaveDateTime"))
        if joined and left:
            intervals.append([joined.isoformat(), left.isoformat()])
    return {
        "session_id": session_id,
        "report_id": str(report_id),
        "record_id": str(record.get("id") or ""),
        "identity_id": str(identity.get("id") or "")[:64],
        "identity_tenant_id": str(identity.get("tenantId") or "")[:64],
        "email": str(record.get("emailAddress") or "")[:320],
        "display_name": str(identity.get("displayName") or "")[:300],
        "role": str(record.get("role") or "")[:40],
        "total_seconds": int(record.get("totalAttendanceInSeconds") or 0),
        "intervals": intervals,
        "raw": record,
    }


def apply_teams_reports(session: TrainingSession, fetched: list[tuple[dict, list[dict]]]) -> dict:
    """Store the fetched reports' records (once each) and derive attendance. Caller commits."""
    _lock_session(session)
    existing = {
        (r, i) for r, i in db.session.execute(
            select(AttendanceRecord.report_id, AttendanceRecord.record_id).where(AttendanceRecord.session_id == session.id)
        )
    }
    enrolled = _confirmed_staff_ids(session.id)
    added = matched = 0
    total = 0
    for report, records in fetched:
        for record in records:
            total += 1
            values = _record_values(session.id, report["id"], record)
            if not values["record_id"] or (values["report_id"], values["record_id"]) in existing:
                continue
            staff_id, how = match_identity(values["identity_id"], values["identity_tenant_id"], values["email"], enrolled)
            db.session.add(AttendanceRecord(**values, staff_member_id=staff_id, matched_by=how))
            existing.add((values["report_id"], values["record_id"]))
            added += 1
            matched += staff_id is not None
    db.session.flush()
    changed = recompute_attendance(session) if fetched else []
    if fetched:
        session.attendance_imported_at = session.attendance_imported_at or utcnow()
    unmatched = db.session.scalar(
        select(func.count()).select_from(AttendanceRecord).where(
            AttendanceRecord.session_id == session.id, AttendanceRecord.staff_member_id.is_(None)
        )
    )
    return {"reports": len(fetched), "records": total, "added": added, "matched": matched,
            "unmatched": unmatched, "attendance_changed": len(changed)}


def attendance_from_intervals(session: TrainingSession, intervals: list[tuple[datetime, datetime]]) -> dict:
    """The rule "attendance from minutes present": the times in the meeting, merged and
    clipped to the scheduled time, as seconds and a share of it; attended at the course's
    threshold. Used for Teams reports from Graph and from an uploaded file alike."""
    start, end = as_utc(session.starts_at), as_utc(session.ends_at)
    duration = max(int((end - start).total_seconds()), 1)
    spans = clip_intervals(merge_intervals(intervals), start, end)
    seconds = int(sum((b - a).total_seconds() for a, b in spans))
    pct = min(100, seconds * 100 // duration)
    return {
        "attended_seconds": seconds,
        "attended_pct": pct,
        "attended": pct >= threshold_of(session),
        "intervals": [[a.isoformat(), b.isoformat()] for a, b in spans],
    }


def recompute_attendance(session: TrainingSession, only_staff: set[int] | None = None) -> list[int]:
    """Derive Teams-based Attendance rows of confirmed enrollees from matched records.

    Rows taken by roll call / QR / manual correction are left alone (a trainer's word
    wins). Only rows whose values change are written; each change sends attendance_changed.
    """
    by_staff: dict[int, list[tuple[datetime, datetime]]] = {}
    for record in db.session.scalars(
        select(AttendanceRecord).where(AttendanceRecord.session_id == session.id,
                                       AttendanceRecord.staff_member_id.is_not(None))
    ):
        if record.staff_member_id is None:  # excluded by the query; says so to the type checker
            continue
        spans = by_staff.setdefault(record.staff_member_id, [])
        for joined, left in record.intervals or []:
            spans.append((as_utc(datetime.fromisoformat(joined)), as_utc(datetime.fromisoformat(left))))
    has_reports = db.session.scalar(
        select(func.count()).select_from(AttendanceRecord).where(AttendanceRecord.session_id == session.id)
    )
    rows = {a.staff_member_id: a for a in db.session.scalars(select(Attendance).where(Attendance.session_id == session.id))}
    changed: list[int] = []
    for staff_id in sorted(_confirmed_staff_ids(session.id)):
        if only_staff is not None and staff_id not in only_staff:
            continue
        row = rows.get(staff_id)
        if row is not None and row.corrected_by_id is not None:
            continue  # a trainer's correction wins
        # Hybrid: someone absent from the room may have attended online (Teams may upgrade
        # an onsite "absent", never downgrade an onsite "present").
        onsite_absent = (row is not None and row.source in (ROLL_CALL, QR_CHECKIN) and not row.attended
                         and session.delivery == HYBRID)
        if row is not None and row.source != TEAMS_REPORT and not onsite_absent:
            continue
        if staff_id not in by_staff and not has_reports:
            continue
        values = attendance_from_intervals(session, by_staff.get(staff_id, []))
        if onsite_absent and row is not None:
            if not values["attended"]:
                continue
            row.source = TEAMS_REPORT
        if row is None:
            row = Attendance(session_id=session.id, staff_member_id=staff_id, source=TEAMS_REPORT, **values)
            db.session.add(row)
            changed.append(staff_id)
        elif any(getattr(row, k) != v for k, v in values.items()):
            for k, v in values.items():
                setattr(row, k, v)
            changed.append(staff_id)
    db.session.flush()
    for staff_id in changed:
        attendance_changed.send(None, staff_member_id=staff_id, session_id=session.id)
    return changed


# ---------------------------------------------------------------- trainer actions


def match_record(record_id: int, staff_member_id: int | None, actor) -> AttendanceRecord:
    """A trainer links an unmatched (or wrongly matched) Teams record to a staff member."""
    record = db.session.get(AttendanceRecord, record_id)
    if record is None:
        raise NotFound(_("出席記録が見つかりません。"))
    session = record.session
    _lock_session(session)
    old = record.staff_member_id
    if staff_member_id is not None:
        if staff_member_id not in _confirmed_staff_ids(session.id):
            raise InvalidInput(_("この研修回の受講確定者から選んでください。"))
        record.matched_by = "manual"
    else:
        record.matched_by = ""
    record.staff_member_id = staff_member_id
    record.matched_by_user_id = actor.id
    db.session.flush()
    record_action(actor, "attendance.match", "attendance_record", record.id, None,
                  session_id=session.id, old_staff_member_id=old, new_staff_member_id=staff_member_id,
                  display_name=record.display_name, email=record.email)
    recompute_attendance(session, {s for s in (old, staff_member_id) if s is not None})
    if old is not None and old != staff_member_id:
        _reset_if_no_records(session, old)
    return record


def _reset_if_no_records(session: TrainingSession, staff_id: int) -> None:
    row = db.session.scalar(select(Attendance).where(Attendance.session_id == session.id,
                                                     Attendance.staff_member_id == staff_id))
    if row is not None and row.source == TEAMS_REPORT and row.corrected_by_id is None:
        recompute_attendance(session, {staff_id})


def correct_attendance(session: TrainingSession, staff_member_id: int, attended: bool, reason: str, actor,
                       attended_pct: int | None = None) -> Attendance:
    """A trainer sets the verdict by hand; the reason is required and the change audited."""
    _check_recordable(session)
    reason = (reason or "").strip()
    if not reason:
        raise InvalidInput(_("修正の理由を入力してください。"), field="reason")
    if staff_member_id not in _confirmed_staff_ids(session.id):
        raise InvalidInput(_("この研修回の受講確定者ではありません。"), field="staff_member_id")
    _lock_session(session)
    row = db.session.scalar(select(Attendance).where(Attendance.session_id == session.id,
                                                     Attendance.staff_member_id == staff_member_id))
    before = None
    if row is None:
        row = Attendance(session_id=session.id, staff_member_id=staff_member_id, source=MANUAL,
                         attended_seconds=0, attended_pct=0, intervals=[])
        db.session.add(row)
    else:
        before = {"attended": row.attended, "attended_pct": row.attended_pct, "source": row.source}
    row.attended = bool(attended)
    if attended_pct is not None:
        row.attended_pct = max(0, min(100, int(attended_pct)))
    row.source = MANUAL
    row.corrected_by_id = actor.id
    row.correction_reason = reason[:2000]
    db.session.flush()
    staff = db.session.get(StaffMember, staff_member_id)
    record_action(actor, "attendance.correct", "attendance", row.id, staff.municipality_id if staff else None,
                  session_id=session.id, staff_member_id=staff_member_id, before=before,
                  attended=row.attended, attended_pct=row.attended_pct, reason=row.correction_reason)
    attendance_changed.send(None, staff_member_id=staff_member_id, session_id=session.id)
    return row


def roll_call_opens_at(session: TrainingSession) -> datetime:
    """The roll call opens 30 minutes before the start (people arrive early)."""
    return as_utc(session.starts_at) - CHECKIN_EARLY


def roll_call_needs_reason(session: TrainingSession) -> bool:
    """Nobody counted heads in a room for a Teams-only session: its roll call is a
    correction by the trainer and states why, once for everyone."""
    return session.delivery not in ONSITE_DELIVERIES


def recordable_refusal(session: TrainingSession, now: datetime | None = None) -> str | None:
    """Why attendance cannot be recorded by hand for ``session`` now (None: it can).
    Attendance is a fact of a session held: none for a cancelled one, none before it opens."""
    if session.status == CANCELLED:
        return _("中止された研修回です。")
    if roll_call_opens_at(session) > (now or utcnow()):
        return _("出欠は研修回の開始 30 分前から記録できます。")
    return None


def _check_recordable(session: TrainingSession) -> None:
    """A roll call, a correction by hand: refused where ``recordable_refusal`` says why."""
    refusal = recordable_refusal(session)
    if refusal is not None:
        raise Conflict(refusal)


def record_roll_call(session: TrainingSession, present: set[int], actor, reason: str = "") -> list[int]:
    """The trainer's roll call: present or absent for every confirmed enrollee, with one
    optional reason for all (required for a Teams-only session, see roll_call_needs_reason)."""
    _check_recordable(session)
    reason = (reason or "").strip()[:2000]
    if not reason and roll_call_needs_reason(session):
        raise InvalidInput(_("オンラインの研修回の出欠を点呼で記録するには、理由を入力してください。"))
    enrolled = _confirmed_staff_ids(session.id)
    unknown = set(present) - enrolled
    if unknown:
        raise InvalidInput(_("受講確定者でない職員が含まれています。"))
    _lock_session(session)
    rows = {a.staff_member_id: a for a in db.session.scalars(select(Attendance).where(Attendance.session_id == session.id))}
    changed = []
    for staff_id in sorted(enrolled):
        is_present = staff_id in present
        row = rows.get(staff_id)
        if row is None:
            row = Attendance(session_id=session.id, staff_member_id=staff_id, source=ROLL_CALL,
                             attended_seconds=0, attended_pct=0, intervals=[])
            db.session.add(row)
        elif row.attended == is_present and row.source in (ROLL_CALL, QR_CHECKIN, MANUAL):
            continue
        elif row.source == TEAMS_REPORT and row.attended and not is_present and session.delivery == HYBRID:
            continue  # attended online: not being in the room does not make them absent
        row.source = ROLL_CALL
        row.attended = is_present
        row.attended_pct = 100 if is_present else 0
        row.attended_seconds = session.duration_seconds if is_present else 0
        row.corrected_by_id = actor.id if reason else None
        row.correction_reason = reason
        changed.append(staff_id)
    db.session.flush()
    record_action(actor, "attendance.roll_call", "training_session", session.id, None,
                  present=sorted(present), absent=sorted(enrolled - set(present)), changed=changed,
                  **({"reason": reason} if reason else {}))
    for staff_id in changed:
        attendance_changed.send(None, staff_member_id=staff_id, session_id=session.id)
    return changed


# ---------------------------------------------------------------- QR check-in


def ensure_checkin_secret(session: TrainingSession) -> str:
    if not session.checkin_token:
        # The session's lock first, then the token read again under it: two trainers' tabs
        # opening the QR page at once make one secret (the other tab's code stays valid).
        _lock_session(session)
        db.session.refresh(session, attribute_names=["checkin_token"])
        if not session.checkin_token:
            session.checkin_token = secrets.token_urlsafe(32)
    return session.checkin_token


def rotate_checkin_secret(session: TrainingSession, actor) -> None:
    ensure_writer()
    session.checkin_token = secrets.token_urlsafe(32)
    record_action(actor, "attendance.rotate_checkin", "training_session", session.id, None)


def checkin_code(session: TrainingSession, at: datetime | None = None, step_offset: int = 0) -> str:
    """The current check-in code: an HMAC of the session's secret and the minute (rotates)."""
    if not session.checkin_token:
        raise Conflict(_("QR コードによる受付が開始されていません。"))
    at = as_utc(at or utcnow())
    step = int(at.timestamp()) // CHECKIN_STEP_SECONDS + step_offset
    key = (current_app.config["SECRET_KEY"] + ":" + session.checkin_token).encode()
    digest = hmac.new(key, f"checkin:{session.id}:{step}".encode(), hashlib.sha256).hexdigest()
    return digest[:24]


def poster_code(session: TrainingSession) -> str:
    """The code of the printed poster: valid through the whole check-in window (a sheet of
    paper cannot follow a code that changes every minute). A photo of the poster works
    outside the room too, so the code is issued only when a trainer opens the poster (an
    audit entry), and "QR コードを作り直す" (a new secret) ends it."""
    if not session.checkin_token:
        raise Conflict(_("QR コードによる受付が開始されていません。"))
    key = (current_app.config["SECRET_KEY"] + ":" + session.checkin_token).encode()
    return "p" + hmac.new(key, f"checkin-poster:{session.id}".encode(), hashlib.sha256).hexdigest()[:24]


def issue_poster_code(session: TrainingSession, actor) -> str:
    ensure_writer()  # SQLite: the write lock before the audit entry (a GET that has only read)
    ensure_checkin_secret(session)
    record_action(actor, "attendance.qr_poster", "training_session", session.id, None)
    return poster_code(session)


def _current_code(session: TrainingSession, code: str, now: datetime) -> bool:
    if code.startswith("p"):
        return hmac.compare_digest(code, poster_code(session))
    return any(hmac.compare_digest(code, checkin_code(session, now, offset))
               for offset in range(0, -CHECKIN_VALID_STEPS, -1))


def checkin_window(session: TrainingSession) -> tuple[datetime, datetime]:
    return as_utc(session.starts_at) - CHECKIN_EARLY, as_utc(session.ends_at)


def check_in(session_id: int, code: str, user, at: datetime | None = None) -> Attendance:
    """A signed-in learner scans the QR: must be a confirmed enrollee, in the window, with a current code."""
    session = db.session.get(TrainingSession, session_id)
    if session is None or session.status == CANCELLED or session.delivery not in ONSITE_DELIVERIES:
        raise NotFound(_("受付できる研修回が見つかりません。"))
    now = as_utc(at or utcnow())
    opens, closes = checkin_window(session)
    if not opens <= now <= closes:
        raise Conflict(_("受付時間外です（開始 30 分前から終了時刻まで）。"))
    if not session.checkin_token or not code or not _current_code(session, code, now):
        raise NotAllowed(_("QR コードの有効期限が切れています。会場に表示されている最新の QR コードを読み取ってください。"))
    staff = db.session.scalar(select(StaffMember).where(StaffMember.user_id == user.id))
    if staff is None or staff.id not in _confirmed_staff_ids(session.id):
        raise NotAllowed(_("この研修回の受講が確定していないため、受付できません。"))
    _lock_session(session)
    row = db.session.scalar(select(Attendance).where(Attendance.session_id == session.id,
                                                     Attendance.staff_member_id == staff.id))
    if row is not None and row.checked_in_at is not None:
        return row
    if row is None:
        row = Attendance(session_id=session.id, staff_member_id=staff.id, source=QR_CHECKIN, intervals=[])
        db.session.add(row)
    row.checked_in_at = now
    if row.corrected_by_id is None:
        row.source = QR_CHECKIN
        row.attended = True
        row.attended_pct = 100
        row.attended_seconds = session.duration_seconds
    db.session.flush()
    attendance_changed.send(None, staff_member_id=staff.id, session_id=session.id)
    return row


# ---------------------------------------------------------------- reading


def attendance_rows(session: TrainingSession) -> list[dict]:
    """Confirmed enrollees with their attendance and matched Teams records, for the trainer."""
    staff = db.session.scalars(
        select(StaffMember).join(Enrollment, Enrollment.staff_member_id == StaffMember.id)
        .where(Enrollment.session_id == session.id, Enrollment.status == CONFIRMED)
        .order_by(StaffMember.municipality_id, *kana_order(), StaffMember.id)
    ).all()
    rows = {a.staff_member_id: a for a in db.session.scalars(select(Attendance).where(Attendance.session_id == session.id))}
    records: dict[int, list[AttendanceRecord]] = {}
    for record in db.session.scalars(select(AttendanceRecord).where(AttendanceRecord.session_id == session.id,
                                                                    AttendanceRecord.staff_member_id.is_not(None))):
        if record.staff_member_id is not None:  # always (the query's filter); for the type checker
            records.setdefault(record.staff_member_id, []).append(record)
    return [{"staff": s, "attendance": rows.get(s.id), "records": records.get(s.id, [])} for s in staff]


def learner_outcomes(staff_member_id: int, sessions) -> dict[int, str]:
    """{session id: ATTENDED, MISSED, CALLED_OFF or NOT_RECORDED (lms.attendance.series's
    states, worded by ``series.state_labels``)} for one learner's sessions that have ended (マイページ's history says
    what a confirmed place came to, not 受講確定 again). One statement."""
    now = utcnow()
    ended = [s for s in sessions if s.status == CANCELLED or (s.ends_at and as_utc(s.ends_at) <= now)]
    if not ended:
        return {}
    recorded = dict(db.session.execute(
        select(Attendance.session_id, Attendance.attended).where(
            Attendance.staff_member_id == staff_member_id, Attendance.session_id.in_([s.id for s in ended]))).all())
    out: dict[int, str] = {}
    for s in ended:
        if s.status == CANCELLED:
            out[s.id] = CALLED_OFF
        elif s.id in recorded:
            out[s.id] = ATTENDED if recorded[s.id] else MISSED
        else:
            out[s.id] = NOT_RECORDED
    return out
