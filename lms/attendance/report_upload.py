"""Attendance from a Teams attendance report file (for sessions without a Graph connection).

The trainer uploads the file Teams lets the organiser download; it is read
(``teams_file``), each participant matched to the session's confirmed enrollees, and kept
server-side (``AttendanceUpload``) for a preview. On confirmation the rows become
``AttendanceRecord`` rows like the ones Graph delivers, and the same rule derives the
attendance (``services.recompute_attendance``), in one transaction.
"""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, func, select

from lms.attendance import services
from lms.attendance.models import AttendanceRecord, AttendanceUpload
from lms.attendance.teams_file import Report, ReportError, normalise_name, parse_report
from lms.audit.services import record_action
from lms.common.errors import Conflict, InvalidInput, NotAllowed
from lms.common.filenames import sanitise_filename
from lms.common.templating import format_datetime_jst
from lms.common.timeutil import as_utc, utcnow
from lms.courses.models import CANCELLED, TrainingSession
from lms.extensions import db
from lms.roster.models import StaffMember

REPORT_PREFIX = "file:"


def _ttl() -> timedelta:
    return timedelta(minutes=current_app.config["LMS_ATTENDANCE_REPORT_TTL_MINUTES"])


def enrolled_staff(session: TrainingSession) -> dict[int, StaffMember]:
    ids = services.confirmed_staff_ids(session.id)
    if not ids:
        return {}
    return {s.id: s for s in db.session.scalars(select(StaffMember).where(StaffMember.id.in_(ids)))}


def match_person(email: str, upn: str, name: str, enrolled: dict[int, StaffMember]) -> tuple[int | None, str]:
    """UPN, then e-mail (the Graph import's rule), then the name — only when exactly one
    confirmed enrollee has it (NFKC, spaces removed). A match outside the enrollees is none."""
    ids = set(enrolled)
    for address in (upn, email):
        if address and "@" in address:
            staff_id, how = services.match_identity("", "", address, ids)
            if staff_id in ids:
                return staff_id, how
    wanted = normalise_name(name)
    if wanted:
        same = [s.id for s in enrolled.values() if normalise_name(s.full_name) == wanted]
        if len(same) == 1:
            return same[0], "name"
    return None, ""


def walk_in(email: str, upn: str, enrolled: dict[int, StaffMember]) -> int | None:
    """A staff member without a confirmed place whom the row's address names (as the Graph
    import matches them): recorded as a walk-in (飛び入り), never counted, never offered to be
    matched to an enrollee in their place."""
    for address in (upn, email):
        if address and "@" in address:
            staff_id, _how = services.match_identity("", "", address, set(enrolled))
            if staff_id is not None and staff_id not in enrolled:
                return staff_id
    return None


def upload_report(session: TrainingSession, data: bytes, filename: str, actor) -> AttendanceUpload:
    """Read and match the file and keep it for the preview. Caller commits."""
    if session.status == CANCELLED:
        raise Conflict(_("中止された研修回です。"))
    if as_utc(session.starts_at) > utcnow():
        raise Conflict(_("この研修回はまだ始まっていません。出欠は開始後に入力できます。"))
    limit = current_app.config["LMS_ATTENDANCE_REPORT_MAX_BYTES"]
    if len(data) > limit:
        raise ReportError(_("ファイルが大きすぎます（%(mb)s MB まで）。", mb=limit // (1024 * 1024) or 1))
    digest = hashlib.sha256(data).hexdigest()
    if _imported(session, REPORT_PREFIX + digest[:40]):
        raise Conflict(_("このファイルはすでに取り込まれています。"))
    report: Report = parse_report(data)
    _refuse_another_meeting(report, session)
    enrolled = enrolled_staff(session)
    rows = []
    for person in report.people:
        staff_id, how = match_person(person.email, person.upn, person.name, enrolled)
        rows.append({
            "name": person.name, "email": person.email, "upn": person.upn, "role": person.role,
            "seconds": person.seconds,
            "intervals": [[a.isoformat(), b.isoformat()] for a, b in person.intervals],
            "unreadable_times": person.unreadable_times,
            "staff_member_id": staff_id, "matched_by": how,
            "walk_in_id": None if staff_id is not None else walk_in(person.email, person.upn, enrolled),
        })
    # Earlier previews of this uploader for this session, and any expired one, go.
    db.session.execute(delete(AttendanceUpload).where(
        (AttendanceUpload.created_at < utcnow() - _ttl())
        | ((AttendanceUpload.session_id == session.id) & (AttendanceUpload.uploaded_by_id == actor.id))))
    upload = AttendanceUpload(session_id=session.id, uploaded_by_id=actor.id, filename=sanitise_filename(filename, fallback="")[:255],
                              digest=digest, title=report.title[:300], rows=rows)
    if _imported(session, meeting_report_id(upload)):
        raise Conflict(_("この会議の出席者レポートはすでに取り込まれています（日本語版と英語版など、同じ会議のファイルです）。"))
    db.session.add(upload)
    db.session.flush()
    return upload


def meeting_report_id(upload: AttendanceUpload) -> str:
    """The report's meeting, whatever file it came in: its title and the first join. The
    Japanese and the English download of one meeting's report differ in bytes, not in these."""
    starts = min((a for row in upload.rows for a, _b in row["intervals"]), default="")
    return REPORT_PREFIX + hashlib.sha256(f"{upload.title}\n{starts}".encode()).hexdigest()[:40]


def _imported(session: TrainingSession, report_id: str) -> bool:
    return bool(db.session.scalar(select(func.count()).select_from(AttendanceRecord).where(
        AttendanceRecord.session_id == session.id, AttendanceRecord.report_id == report_id)))


# A report whose meeting began further than this from the session's start is another meeting's
# (a series' other day, last month's session of the same course); a meeting opened early or
# run late stays well within it.
MEETING_START_TOLERANCE = timedelta(hours=12)


def _refuse_another_meeting(report: Report, session: TrainingSession) -> None:
    """The report's meeting (its summary's start time) must be this session's."""
    if report.starts_at is None:
        return  # a report without its summary: the people and times are still checked
    session_start = as_utc(session.starts_at)
    assert session_start is not None
    if abs(report.starts_at - session_start) > MEETING_START_TOLERANCE:
        raise ReportError(_("このレポートの会議は %(when)s に始まっています。研修回（%(session)s）の会議ではありません。"
                            "この回の Teams 会議の出席者レポートをアップロードしてください。",
                            when=format_datetime_jst(report.starts_at), session=format_datetime_jst(session_start)))


def get_upload(session: TrainingSession, upload_id: int, actor) -> AttendanceUpload:
    """The uploader's own, unexpired upload for this session; anything else is not found."""
    upload = db.session.get(AttendanceUpload, upload_id)
    if upload is None:
        raise Conflict(_("アップロードしたファイルが見つかりません（記録済みか、期限切れです）。もう一度アップロードしてください。"))
    if upload.session_id != session.id or upload.uploaded_by_id != actor.id:
        raise NotAllowed(_("アップロードしたファイルが見つかりません。"))
    if as_utc(upload.created_at) < utcnow() - _ttl():
        raise Conflict(_("確認の期限が切れました。もう一度アップロードしてください。"))
    return upload


def _intervals(row: dict) -> list[tuple[datetime, datetime]]:
    return [(datetime.fromisoformat(a), datetime.fromisoformat(b)) for a, b in row["intervals"]]


def preview(session: TrainingSession, upload: AttendanceUpload) -> list[dict]:
    """Each row with its match, minutes present and the resulting attendance (the rule of
    ``services.attendance_from_intervals``)."""
    enrolled = enrolled_staff(session)
    walk_in_ids = {row.get("walk_in_id") for row in upload.rows} - {None}
    walk_ins = {m.id: m for m in db.session.scalars(select(StaffMember).where(StaffMember.id.in_(walk_in_ids)))} \
        if walk_in_ids else {}
    result = []
    for index, row in enumerate(upload.rows):
        values = services.attendance_from_intervals(session, _intervals(row))
        result.append({"index": index, "row": row, "staff": enrolled.get(row["staff_member_id"] or 0),
                       "walk_in": walk_ins.get(row.get("walk_in_id") or 0),
                       "minutes": values["attended_seconds"] // 60, "pct": values["attended_pct"],
                       "attended": values["attended"]})
    return result


def confirm_upload(session: TrainingSession, upload_id: int, choices: dict[int, int | None], actor) -> dict:
    """Write the upload's rows as attendance records (unmatched rows: the trainer's choice,
    or left out), derive the attendance, audit once. ``choices``: row index → staff id or
    None (ignore). Caller commits (``run_in_transaction``)."""
    upload = get_upload(session, upload_id, actor)
    services.lock_session(session)
    enrolled = services.confirmed_staff_ids(session.id)
    report_id = meeting_report_id(upload)
    if _imported(session, report_id) or _imported(session, REPORT_PREFIX + upload.digest[:40]):
        raise Conflict(_("このファイルはすでに取り込まれています。"))
    written, ignored, staff = 0, 0, set()
    for index, row in enumerate(upload.rows):
        staff_id, how = row["staff_member_id"], row["matched_by"]
        walk_in_id = row.get("walk_in_id")
        if staff_id is None and walk_in_id is not None:
            staff_id, how = walk_in_id, "email"  # a walk-in: recorded, shown as such, not counted
        elif staff_id is None:
            staff_id, how = choices.get(index), "manual"
            if staff_id is not None and staff_id not in enrolled:
                raise InvalidInput(_("この研修回の受講確定者から選んでください。"))
        if staff_id is None:
            ignored += 1
            continue
        db.session.add(AttendanceRecord(
            session_id=session.id, report_id=report_id, record_id=str(index), email=(row["upn"] or row["email"])[:320],
            display_name=row["name"][:300], role=row["role"][:40], total_seconds=row["seconds"],
            intervals=row["intervals"], raw={k: row[k] for k in ("name", "email", "upn", "role", "seconds")},
            staff_member_id=staff_id, matched_by=how[:10],
            matched_by_user_id=actor.id if how == "manual" else None))
        written += 1
        if staff_id in enrolled:
            staff.add(staff_id)
    db.session.flush()
    changed = services.recompute_attendance(session)  # publishes attendance_changed for each change
    session.attendance_imported_at = session.attendance_imported_at or utcnow()
    record_action(actor, "attendance.report_upload", "training_session", session.id, None,
                  filename=upload.filename, digest=upload.digest, rows=len(upload.rows), written=written,
                  ignored=ignored, staff=sorted(staff), changed=changed)
    db.session.delete(upload)
    return {"people": len(staff), "ignored": ignored, "changed": len(changed)}
