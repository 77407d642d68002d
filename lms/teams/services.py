"""Teams meetings, attendance reports and recordings through Microsoft Graph.

Each ``*_with`` function takes a ``GraphClient`` and works from the session's current state,
so running it twice does no harm (every operation can be retried). Everything read from
Graph is fetched completely before the database is touched: a failed page leaves nothing
half-applied.
"""

from __future__ import annotations

import contextlib
import html
import logging
import uuid
from datetime import datetime, timedelta
from urllib.parse import quote

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from lms.archives import recording_import as recordings_store
from lms.archives.models import Archive, ArchiveFile
from lms.attendance import services as attendance_services
from lms.attendance.models import AttendanceRecord
from lms.audit.services import record_action
from lms.auth.models import User
from lms.common.database import begin_write, lock_fresh, run_in_transaction
from lms.common.errors import Conflict, InvalidInput, NotAllowed, NotFound
from lms.common.i18n import portal_name
from lms.common.timeutil import as_utc, to_tokyo, utcnow
from lms.courses import services as course_services
from lms.courses.models import CANCELLED, HYBRID, TEAMS, Course, TrainingSession
from lms.enrollment.models import CONFIRMED, Enrollment
from lms.extensions import db
from lms.roster.models import StaffMember
from lms.teams import operations as ops
from lms.teams.failures import REFUSED, failure_code
from lms.teams.graph import (
    GraphClient,
    GraphError,
    GraphNotFound,
    client_from_app,
    graph_configured,
    odata_quote,
    user_path,
)
from lms.teams.models import GraphOperation
from lms.teams.roster_sync import client_for_tenant
from lms.teams.viva import services as viva

log = logging.getLogger(__name__)

TOKYO_WINDOWS_TZ = "Tokyo Standard Time"  # Windows time zone name Outlook expects
ONLINE_DELIVERIES = (TEAMS, HYBRID)

# graph_sync_status values shown to trainers and admins
STATUS_QUEUED = "queued"
STATUS_CREATED = "created"
STATUS_UPDATED = "updated"
STATUS_CANCELLED = "cancelled"
STATUS_FAILED = "failed"
STATUS_RETRYING = "retrying"  # failed, tried again by itself at the operation's next_attempt


# ---------------------------------------------------------------- who organizes


def organizer_for(session: TrainingSession) -> str:
    """The mailbox whose calendar holds the meeting: the course's, the configured one, or the trainer's."""
    if session.graph_organizer:
        return session.graph_organizer
    course: Course = session.course
    if course.organizer_mailbox:
        return course.organizer_mailbox.strip()
    configured = current_app.config.get("GRAPH_ORGANIZER")
    if configured:
        return configured.strip()
    for user in (session.organizer, course.owner):
        if user is not None and user.email:
            return user.email.strip()
    raise InvalidInput(_("Teams 会議の開催者（メールボックス）が決まりません。研修の開催者メールボックスを設定してください。"))


def wants_graph(session: TrainingSession) -> bool:
    return session.delivery in ONLINE_DELIVERIES and graph_configured()


def has_own_link(session: TrainingSession) -> bool:
    """A join link the trainer typed (no meeting of ours behind it): it is kept, and no
    meeting is created for the session (the form says an empty link lets Teams make one).
    A meeting of ours has its ``graph_transaction_id`` from the moment it is queued."""
    return bool((session.join_url or "").strip()) and not session.graph_event_id and not session.graph_transaction_id


# ---------------------------------------------------------------- queueing (from receivers, routes, CLI)


def queue_meeting_sync(session: TrainingSession, kind: str = ops.CREATE_EVENT) -> GraphOperation | None:
    """Queue creating/updating/cancelling the meeting after the current transaction commits."""
    if not graph_configured():
        return None
    if kind == ops.CANCEL_EVENT:
        if not session.graph_event_id and not _has_pending(session.id, ops.CREATE_EVENT):
            return None
    elif session.delivery not in ONLINE_DELIVERIES:
        if not session.graph_event_id:
            return None
        kind = ops.CANCEL_EVENT  # no longer a Teams session: withdraw the invitation
    if kind != ops.CANCEL_EVENT and session.status == CANCELLED:
        kind = ops.CANCEL_EVENT
    if kind == ops.UPDATE_EVENT and not session.graph_event_id:
        kind = ops.CREATE_EVENT
    if kind == ops.CREATE_EVENT:
        if has_own_link(session):
            return None
        if not session.graph_transaction_id:
            session.graph_transaction_id = uuid.uuid4().hex
    session.graph_sync_status = STATUS_QUEUED
    return ops.queue_operation(session.id, kind)


def detach_meeting(session: TrainingSession, actor=None) -> GraphOperation | None:
    """A join link the trainer typed over the meeting Manabi made: from now on the typed
    link is the session's own (``has_own_link``: kept, never written over, no meeting made
    for it), and Manabi's meeting is cancelled after commit through the queue (its failure
    shown and retried like any other). Its attendance reports and recordings are no longer
    read for the session (its meeting id goes); what was imported from it stays."""
    event_id, organizer = session.graph_event_id, session.graph_organizer
    _forget_meeting(session)
    session.graph_transaction_id = ""  # a meeting still being made is not made (has_own_link)
    session.graph_sync_error = ""
    if not event_id or not graph_configured():
        session.graph_sync_status = ""
        return None
    session.graph_sync_status = STATUS_QUEUED
    op = ops.queue_operation(session.id, ops.CANCEL_EVENT, event_id=event_id, organizer=organizer, detached=True)
    record_action(actor, "teams.detach_meeting", "training_session", session.id, None, event_id=event_id,
                  operation_id=op.id)
    return op


def queue_attendee_sync(session: TrainingSession) -> GraphOperation | None:
    if not wants_graph(session) or session.status == CANCELLED:
        return None
    if not session.graph_event_id and not _has_pending(session.id, ops.CREATE_EVENT):
        return queue_meeting_sync(session, ops.CREATE_EVENT)
    return ops.queue_operation(session.id, ops.SYNC_ATTENDEES)


def _has_pending(session_id: int, kind: str) -> bool:
    return db.session.scalar(
        select(GraphOperation.id).where(
            GraphOperation.session_id == session_id,
            GraphOperation.kind == kind,
            GraphOperation.status.in_((ops.QUEUED, ops.RUNNING)),
        ).limit(1)
    ) is not None


def import_refusal(session: TrainingSession, kind: str, now: datetime | None = None) -> str | None:
    """Why an attendance or recording import of ``session`` cannot be asked for now (None:
    it can). The session page shows it in place of the button; ``queue_import`` refuses with it."""
    if session.status == CANCELLED:
        return _("中止された研修回です。")
    if not session.join_url and not session.graph_online_meeting_id:
        return _("Teams 会議の参加リンクがありません。")
    if as_utc(session.ends_at) > (now or utcnow()):
        if kind == ops.IMPORT_ATTENDANCE:
            return _("研修回が終了してから出席を取り込みます。")
        return _("研修回が終了してから録画を取り込みます。")
    return None


def queue_import(session: TrainingSession, kind: str, actor=None) -> GraphOperation:
    """Queue an attendance or recording import (retry button, CLI, periodic task)."""
    if kind not in (ops.IMPORT_ATTENDANCE, ops.IMPORT_RECORDING):
        raise InvalidInput(_("不明な処理です。"))
    if not graph_configured():
        raise Conflict(_("Microsoft Graph 連携が設定されていません。"))
    if session.delivery not in ONLINE_DELIVERIES:
        raise Conflict(_("Teams で実施しない研修回です。"))
    refusal = import_refusal(session, kind)
    if refusal is not None:
        raise Conflict(refusal)
    op = ops.queue_operation(session.id, kind)
    if actor is not None:
        record_action(actor, f"teams.queue_{kind}", "training_session", session.id, None, operation_id=op.id)
    return op


def retry_operation(operation_id: int, actor) -> GraphOperation:
    """The status page's retry button: run a failed operation again (audited)."""
    op = db.session.get(GraphOperation, operation_id)
    if op is None:
        raise NotFound(_("処理が見つかりません。"))
    if op.status not in (ops.FAILED, ops.QUEUED):
        raise Conflict(_("この処理は再実行できる状態ではありません。"))
    details = dict(op.details or {})
    details["retry_requested_by"] = getattr(actor, "id", None)
    details["retryable"] = True
    details["next_attempt_at"] = utcnow().isoformat()
    op.details = details
    record_action(actor, "teams.retry", "graph_operation", op.id, None, kind=op.kind, session_id=op.session_id)
    ops.queue_after_commit_for_existing(op)
    return op


# ---------------------------------------------------------------- running an operation


def execute_operation(operation_id: int, client: GraphClient | None = None, *,
                      only_if_due: bool = False) -> GraphOperation | None:
    """Run one queued operation (the huey task calls this). Never raises for Graph errors.

    The work runs under a heartbeat (the operation's lease); throttling or an outage that
    outlasts the client's waiting budget fails this run and reschedules it (ops.fail).
    """
    op = ops.claim(operation_id, only_if_due=only_if_due)
    if op is None:
        return None
    newer = ops.superseded_by(op)
    if newer is not None:
        ops.finish(op, calls=0, superseded_by=newer)
        db.session.commit()
        return op
    before = 0
    try:
        client = client or _client_for(op)
        before = client.calls
        with ops.heartbeat(operation_id):
            details = _dispatch(op, client) or {}
        ops.finish(op, calls=client.calls - before, **details)
        db.session.commit()
    except GraphError as exc:
        calls = (client.calls - before) if client else 0
        ops.fail(operation_id, str(exc), retryable=exc.retryable, calls=calls, graph_status=exc.status,
                 retry_after=exc.retry_after, error_code=failure_code(exc))
        _mark_session_failed(op.session_id, op.kind, failure_code(exc), str(exc))
    except Exception as exc:  # noqa: BLE001 - recorded on the operation, shown on the status page
        log.exception("graph operation %s failed", operation_id)
        calls = (client.calls - before) if client else 0
        message = getattr(exc, "message", "") or f"{type(exc).__name__}: {exc}"
        retryable = not isinstance(exc, (InvalidInput, NotAllowed, NotFound))
        ops.fail(operation_id, message, retryable=retryable, calls=calls, error_code=failure_code(exc))
        _mark_session_failed(op.session_id, op.kind, failure_code(exc), message)
    return db.session.get(GraphOperation, operation_id)


def _mark_session_failed(session_id: int | None, kind: str, code: str, detail: str) -> None:
    """The session shows the failure as its code (worded on the page in the reader's
    language), or a refusal's message id; while the operation waits to be retried, its
    state says so rather than 失敗."""
    if session_id is None or kind not in (ops.CREATE_EVENT, ops.UPDATE_EVENT, ops.CANCEL_EVENT, ops.SYNC_ATTENDEES):
        return
    session = db.session.get(TrainingSession, session_id)
    if session is None:
        return
    op = db.session.scalar(select(GraphOperation).where(GraphOperation.session_id == session_id,
                                                        GraphOperation.kind == kind)
                           .order_by(GraphOperation.id.desc()).limit(1))
    session.graph_sync_status = STATUS_RETRYING if op is not None and op.next_attempt else STATUS_FAILED
    session.graph_sync_error = (detail if code == REFUSED else code)[:4000]
    db.session.commit()


def _client_for(op: GraphOperation) -> GraphClient:
    """Viva Learning works in the municipality's own tenant (its app-only token); the rest in
    the home tenant."""
    if op.kind in viva.KINDS:
        return client_for_tenant(str((op.details or {}).get("tenant_id") or ""))
    return client_from_app()


def _dispatch(op: GraphOperation, client: GraphClient) -> dict:
    if op.kind in viva.KINDS:
        return viva.run_operation(op, client)
    session = db.session.get(TrainingSession, op.session_id) if op.session_id else None
    if session is None:
        raise NotFound("session not found")
    if op.kind in (ops.CREATE_EVENT, ops.UPDATE_EVENT, ops.SYNC_ATTENDEES):
        return sync_meeting_with(client, session, attendees_only=op.kind == ops.SYNC_ATTENDEES)
    if op.kind == ops.CANCEL_EVENT and (op.details or {}).get("event_id"):
        return cancel_detached_meeting_with(client, session, op.details["event_id"], op.details.get("organizer") or "")
    if op.kind == ops.CANCEL_EVENT:
        return cancel_meeting_with(client, session)
    if op.kind == ops.IMPORT_ATTENDANCE:
        return import_attendance_with(client, session)
    if op.kind == ops.IMPORT_RECORDING:
        return import_recordings_with(client, session, run=recording_run(op))
    raise InvalidInput(f"unknown operation kind {op.kind}")


# ---------------------------------------------------------------- meetings


def confirmed_attendees(session: TrainingSession) -> list[dict]:
    """Graph ``attendee`` objects for the session's confirmed enrollees (sorted, de-duplicated)."""
    rows = db.session.execute(
        select(StaffMember)
        .join(Enrollment, Enrollment.staff_member_id == StaffMember.id)
        .where(Enrollment.session_id == session.id, Enrollment.status == CONFIRMED)
        .order_by(StaffMember.id)
    ).scalars()
    seen: set[str] = set()
    attendees = []
    for staff in rows:
        address = (staff.email or staff.sign_in_name or (staff.user.email if staff.user else "")).strip()
        if not address or address.lower() in seen:
            continue
        seen.add(address.lower())
        attendees.append({"emailAddress": {"address": address, "name": staff.full_name}, "type": "required"})
    return attendees


def _graph_time(value: datetime) -> dict:
    return {"dateTime": to_tokyo(value).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": TOKYO_WINDOWS_TZ}


def event_payload(session: TrainingSession) -> dict:
    """The Outlook event (with a Teams meeting) for a session, without attendees."""
    course = session.course
    subject = f"{course.title} {session.title}".strip()
    base_url = current_app.config.get("LMS_BASE_URL", "").rstrip("/")
    lines = [html.escape(course.summary or "")]
    lines.append(html.escape(_("この会議は %(portal)s から作成されました。受講の申込・取消はポータルで行ってください。", portal=portal_name())))
    if base_url:
        lines.append(f'<a href="{html.escape(base_url)}">{html.escape(base_url)}</a>')
    return {
        "subject": subject[:255],
        "body": {"contentType": "html", "content": "<p>" + "</p><p>".join(x for x in lines if x) + "</p>"},
        "start": _graph_time(session.starts_at),
        "end": _graph_time(session.ends_at),
        "location": {"displayName": session.location or "Microsoft Teams"},
        "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness",
        "allowNewTimeProposals": False,
        "responseRequested": False,
    }


def _event_path(session: TrainingSession) -> str:
    return f"{user_path(session.graph_organizer)}/events/{quote(session.graph_event_id, safe='')}"


def sync_meeting_with(client: GraphClient, session: TrainingSession, attendees_only: bool = False) -> dict:
    """Create the event (first time) or bring it in step with the session and its enrollees.

    The Graph calls run without a lock on the session; what they return is written under the
    session's row lock, read fresh, and only if the meeting is still the one they were about:
    a trainer who typed a link of their own meanwhile (``detach_meeting``) keeps it, and a
    meeting made for a session that no longer wants it is cancelled through the queue."""
    if session.status == CANCELLED or session.delivery not in ONLINE_DELIVERIES:
        return cancel_meeting_with(client, session)
    if has_own_link(session):
        return {"action": "own_link"}
    meeting = (session.graph_event_id, session.graph_transaction_id)  # as the calls below know it
    attendees = confirmed_attendees(session)
    action, event_id, transaction_id = "", session.graph_event_id, session.graph_transaction_id
    updated: dict | None = None
    created: dict | None = None
    organizer = session.graph_organizer
    if event_id:
        payload = {"attendees": attendees} if attendees_only else {**event_payload(session), "attendees": attendees}
        try:
            updated = client.patch(_event_path(session), payload)
        except GraphNotFound:
            # Deleted in Outlook or Teams: a new meeting takes its place (below), and its link
            # reaches the enrollees as a change.
            event_id, transaction_id = "", uuid.uuid4().hex  # a new event, not the deleted one again
    if not event_id:
        organizer = organizer_for(session)
        transaction_id = transaction_id or uuid.uuid4().hex
        payload = {**event_payload(session), "attendees": attendees, "transactionId": transaction_id}
        # transactionId makes the POST idempotent: Graph returns the same event on a repeat.
        created = client.post(f"{user_path(organizer)}/events", payload, idempotent=True)
    # The online meeting's id behind the link (for attendance reports and recordings), asked
    # before the lock too; if Graph cannot say yet, it is asked again before any import.
    link = (((created or updated or {}).get("onlineMeeting") or {}).get("joinUrl")) or ""
    meeting_id, meeting_error = ("" if created is not None else session.graph_online_meeting_id), ""
    if not meeting_id and (link or session.join_url):
        try:
            meeting_id = _find_online_meeting(client, organizer or organizer_for(session), link or session.join_url)
        except GraphError as exc:
            meeting_error = str(exc)

    lock_fresh(session)
    if (session.graph_event_id, session.graph_transaction_id) != meeting or has_own_link(session):
        # Let go meanwhile (a typed link, a switch away from Teams, a cancel): the typed link and
        # the state stay as the other change left them; a meeting made just now is withdrawn.
        if created is not None and created.get("id") != session.graph_event_id:
            ops.queue_operation(session.id, ops.CANCEL_EVENT, event_id=created["id"], organizer=organizer,
                                detached=True)
        return {"action": "let_go_meanwhile", "event_id": (created or {}).get("id") or event_id}
    if updated is not None:
        session.graph_sync_status = STATUS_UPDATED
        action = "attendees" if attendees_only else "updated"
    if created is not None:
        _forget_meeting(session)  # (a meeting deleted in Outlook: the new one takes its place)
        session.graph_transaction_id = transaction_id
        session.graph_organizer = organizer
        session.graph_event_id = created["id"]
        session.graph_ical_uid = created.get("iCalUId") or ""
        session.graph_sync_status = STATUS_CREATED
        action = "created"
    course_services.record_meeting_link(session, link)
    if meeting_id and not session.graph_online_meeting_id:
        session.graph_online_meeting_id = meeting_id
    session.graph_sync_error = ""
    session.graph_synced_at = utcnow()
    result = {"action": action, "event_id": session.graph_event_id, "attendees": len(attendees)}
    if meeting_error:
        result["online_meeting_error"] = meeting_error[:500]
    return result


def resolve_online_meeting_with(client: GraphClient, session: TrainingSession) -> str:
    """The onlineMeeting id behind the event's join link (needed for reports and recordings)."""
    if session.graph_online_meeting_id:
        return session.graph_online_meeting_id
    if not session.join_url:
        raise InvalidInput(_("Teams 会議の参加リンクがありません。"))
    organizer = session.graph_organizer or organizer_for(session)
    session.graph_online_meeting_id = _find_online_meeting(client, organizer, session.join_url)
    session.graph_organizer = organizer
    return session.graph_online_meeting_id


def _find_online_meeting(client: GraphClient, organizer: str, join_url: str) -> str:
    found = client.get_all(
        f"{user_path(organizer)}/onlineMeetings",
        params={"$filter": f"JoinWebUrl eq {odata_quote(join_url)}"},
    )
    if not found:
        raise GraphNotFound(f"no online meeting with join URL {join_url}", status=404)
    return found[0]["id"]


def _resolve_online_meeting_apart(client: GraphClient, session: TrainingSession) -> None:
    """For the imports: find the meeting id (when not yet known) with no transaction open
    during the Graph call, and store it in a short write transaction of its own (SQLite:
    a transaction that read before the call could not write after another writer's commit)."""
    if session.graph_online_meeting_id:
        return
    if not session.join_url:
        raise InvalidInput(_("Teams 会議の参加リンクがありません。"))
    organizer = session.graph_organizer or organizer_for(session)
    join_url, session_id = session.join_url, session.id
    db.session.commit()
    meeting_id = _find_online_meeting(client, organizer, join_url)
    begin_write()
    current = db.session.get(TrainingSession, session_id)
    if current is not None and not current.graph_online_meeting_id:
        current.graph_organizer = organizer
        current.graph_online_meeting_id = meeting_id
    db.session.commit()


def cancel_meeting_with(client: GraphClient, session: TrainingSession) -> dict:
    if not session.graph_event_id:
        session.graph_sync_status = STATUS_CANCELLED if session.status == CANCELLED else session.graph_sync_status
        return {"action": "nothing_to_cancel"}
    comment = _("この研修回は中止になりました。") if session.status == CANCELLED else _("この研修回は Teams で実施しなくなりました。")
    # Already cancelled or deleted in Outlook (404): the goal is reached.
    with contextlib.suppress(GraphNotFound):
        client.post(f"{_event_path(session)}/cancel", {"comment": comment}, idempotent=True)
    session.graph_sync_status = STATUS_CANCELLED
    session.graph_sync_error = ""
    session.graph_synced_at = utcnow()
    if session.delivery not in ONLINE_DELIVERIES and session.status != CANCELLED:
        # The event is gone; a later switch back to Teams creates a new one.
        _forget_meeting(session)
        session.join_url = ""  # the meeting's link, not one typed (a later switch back makes a new one)
        session.graph_transaction_id = ""
    return {"action": "cancelled"}


def cancel_detached_meeting_with(client: GraphClient, session: TrainingSession, event_id: str, organizer: str) -> dict:
    """Cancel the meeting Manabi made before the trainer typed a link of their own (the
    attendees' calendars drop it). The session's link and state are not touched, bar saying
    the meeting is cancelled while no other meeting of Manabi's has taken its place."""
    organizer = organizer or organizer_for(session)
    comment = _("この研修回は別の Teams 会議で行います。参加リンクはポータルの研修回の案内をご確認ください。")
    with contextlib.suppress(GraphNotFound):  # already cancelled or deleted in Outlook
        client.post(f"{user_path(organizer)}/events/{quote(event_id, safe='')}/cancel", {"comment": comment},
                    idempotent=True)
    if not session.has_managed_meeting:
        session.graph_sync_status = STATUS_CANCELLED
        session.graph_sync_error = ""
        session.graph_synced_at = utcnow()
    return {"action": "detached", "event_id": event_id}


def _forget_meeting(session: TrainingSession) -> None:
    """The session's Outlook event and Teams meeting are gone."""
    session.graph_event_id = ""
    session.graph_online_meeting_id = ""
    session.graph_ical_uid = ""


# ---------------------------------------------------------------- attendance reports


def _meeting_path(session: TrainingSession) -> str:
    return f"{user_path(session.graph_organizer)}/onlineMeetings/{quote(session.graph_online_meeting_id, safe='')}"


def fetch_attendance_with(client: GraphClient, session: TrainingSession) -> list[tuple[dict, list[dict]]]:
    """Every report of the meeting with all its records; raises if any page fails."""
    resolve_online_meeting_with(client, session)
    base = f"{_meeting_path(session)}/attendanceReports"
    fetched = []
    for report in client.get_all(base):
        records = client.get_all(f"{base}/{quote(report['id'], safe='')}/attendanceRecords")
        fetched.append((report, records))
    return fetched


def _check_not_cancelled(session: TrainingSession) -> None:
    """A cancelled session stays so: its import is refused for good (InvalidInput is not
    retried, as a missing join link is not; a session not yet ended is a Conflict, retried)."""
    if session.status == CANCELLED:
        raise InvalidInput(_("中止された研修回です。"))


def import_attendance_with(client: GraphClient, session: TrainingSession) -> dict:
    _check_not_cancelled(session)
    if as_utc(session.ends_at) > utcnow():
        raise Conflict(_("研修回が終了してから出席を取り込みます。"))
    _resolve_online_meeting_apart(client, session)
    fetched = fetch_attendance_with(client, session)
    # Graph is done: end the reading transaction (keeping the meeting id just resolved) and
    # write in a fresh one, which on SQLite takes its write lock up front; a transaction that
    # read before the download could not write after another writer's commit meanwhile.
    db.session.commit()
    # Committed here, and run again if it met another writer of the course's summaries in a
    # deadlock (PostgreSQL breaks it; the import is idempotent).
    return run_in_transaction(attendance_services.apply_teams_reports, session, fetched)


# ---------------------------------------------------------------- recordings and transcripts


def import_recordings_with(client: GraphClient, session: TrainingSession, *, run: str | None = None) -> dict:
    """Stream new recordings into draft archives and attach transcripts as WebVTT captions.

    ``run`` names this run in the storage keys it writes (``op<id>_<attempt>``), so that
    what a killed run left is recognised and removed (``sweep_recording_imports``).
    No transaction stays open during a download (one may take minutes): each recording and
    transcript is written in a fresh, short transaction after it has been fetched.
    """
    _check_not_cancelled(session)
    _resolve_online_meeting_apart(client, session)
    base = _meeting_path(session)
    session_id = session.id
    db.session.commit()  # nothing is read across the Graph calls and downloads below
    recordings = client.get_all(f"{base}/recordings")
    transcripts = client.get_all(f"{base}/transcripts")
    imported, skipped, transcripts_added = [], [], []
    # (archive id, recording id) by the recordings' content correlation id
    archives_by_correlation: dict[str, tuple[int, str]] = {}
    for rec in sorted(recordings, key=lambda r: r.get("createdDateTime") or ""):
        existing = db.session.scalar(select(Archive.id).where(Archive.graph_recording_id == rec["id"]))
        db.session.commit()
        if existing is not None:
            skipped.append(rec["id"])
            archives_by_correlation[rec.get("contentCorrelationId") or ""] = (existing, rec["id"])
            continue
        archive = _import_one_recording(client, session_id, rec, base, run)
        archive_id = archive.id
        db.session.commit()  # each imported recording stands on its own
        imported.append(rec["id"])
        archives_by_correlation[rec.get("contentCorrelationId") or ""] = (archive_id, rec["id"])
    for tr in transcripts:
        known = db.session.scalar(select(ArchiveFile.id).where(ArchiveFile.graph_content_id == tr["id"]))
        db.session.commit()
        if known is not None:
            continue
        # The transcript's own recording when its correlation id says which (its video gets
        # the captions); else the meeting's only recording, captioning its first video.
        found = archives_by_correlation.get(tr.get("contentCorrelationId") or "")
        target, recording_id = found if found is not None else (None, None)
        if target is None and len(archives_by_correlation) == 1:
            target = next(iter(archives_by_correlation.values()))[0]
        if target is None:
            continue  # its recording is not there (yet): next run
        vtt = client.get_text(
            f"{base}/transcripts/{quote(tr['id'], safe='')}/content", params={"$format": "text/vtt"}, accept="text/vtt"
        )
        begin_write()  # SQLite: the write lock before attach_transcript checks for it again
        recordings_store.attach_transcript(target, vtt, tr["id"], recording_id)
        db.session.commit()
        transcripts_added.append(tr["id"])
    return {"recordings": len(recordings), "imported": imported, "already_imported": len(skipped),
            "transcripts": transcripts_added}


def _import_one_recording(client: GraphClient, session_id: int, rec: dict, base: str, run: str | None) -> Archive:
    content = client.stream(f"{base}/recordings/{quote(rec['id'], safe='')}/content", accept="video/mp4")
    created = (rec.get("createdDateTime") or "")[:19].replace(":", "").replace("-", "")
    filename = f"teams-recording-{session_id}-{created or rec['id'][:8]}.mp4"
    try:
        return recordings_store.import_recording(
            session_id, rec["id"], iter(content), filename,
            "video/mp4" if content.content_type in ("application/octet-stream", "") else content.content_type,
            content.size, actor=None, run=run, recorded_at=_graph_datetime(rec.get("createdDateTime")),
        )
    finally:
        content.close()


def _graph_datetime(value: str | None) -> datetime | None:
    """A Graph timestamp (2026-12-03T05:00:00.1234567Z: seven decimals, Z) as aware UTC."""
    if not value:
        return None
    try:
        return as_utc(datetime.fromisoformat(value[:19] + "+00:00"))
    except ValueError:
        return None


def recording_run(op: GraphOperation) -> str:
    """How a run of a recording import names the storage keys it writes."""
    return f"op{op.id}_{op.attempts}"


def _live_recording_runs(runs: set[str]) -> set[str]:
    """Those of the runs that wrote import keys still at work: their operation is running
    this very attempt (one query)."""
    running = db.session.execute(
        select(GraphOperation.id, GraphOperation.attempts).where(
            GraphOperation.kind == ops.IMPORT_RECORDING, GraphOperation.status == ops.RUNNING)
    ).all()
    return runs & {f"op{op_id}_{attempts}" for op_id, attempts in running}


def sweep_recording_imports() -> list[str]:
    """Remove recording bytes (parts, unreferenced objects) that killed runs left in storage.

    Runs at every pick-up (when a worker starts, then every 5 minutes) after operations of
    dead workers have been marked failed, so their leftovers go before they run again; the
    bytes of a run still at work, and any file an archive refers to, are never touched."""
    db.session.commit()
    removed = recordings_store.sweep_import_files(_live_recording_runs)
    if removed:
        log.info("recording imports: removed %s file(s) left by interrupted runs: %s", len(removed), removed)
    return removed


def catch_up_recordings_with(client: GraphClient, organizer: str, start: datetime, end: datetime) -> dict:
    """Nightly: every recording and transcript the organizer's meetings produced in [start, end].

    Finds the sessions they belong to by meeting id and imports what is missing.
    """
    def fn(name: str) -> str:
        return (
            f"{user_path(organizer)}/onlineMeetings/{name}(meetingOrganizerUserId={odata_quote(organizer)},"
            f"startDateTime={as_utc(start):%Y-%m-%dT%H:%M:%SZ},endDateTime={as_utc(end):%Y-%m-%dT%H:%M:%SZ})"
        )

    recordings = client.get_all(fn("getAllRecordings"))
    transcripts = client.get_all(fn("getAllTranscripts"))
    meeting_ids = {item.get("meetingId") for item in recordings + transcripts if item.get("meetingId")}
    sessions = db.session.scalars(
        select(TrainingSession).where(TrainingSession.graph_online_meeting_id.in_(meeting_ids))
    ).all() if meeting_ids else []
    queued = []
    for session in sessions:
        ops.queue_operation(session.id, ops.IMPORT_RECORDING, reason="catch_up")
        queued.append(session.id)
    return {"recordings": len(recordings), "transcripts": len(transcripts), "sessions": queued}


# ---------------------------------------------------------------- what is due (periodic task)


def sessions_due_for_attendance(now=None) -> list[TrainingSession]:
    """Teams/hybrid sessions that ended 15 minutes to 7 days ago and have no imported attendance."""
    now = now or utcnow()
    return list(db.session.scalars(
        select(TrainingSession).where(
            TrainingSession.delivery.in_(ONLINE_DELIVERIES),
            TrainingSession.status != CANCELLED,
            TrainingSession.graph_event_id != "",
            TrainingSession.ends_at <= now - timedelta(minutes=15),
            TrainingSession.ends_at >= now - timedelta(days=7),
            TrainingSession.attendance_imported_at.is_(None),
        )
    ))


def sessions_due_for_recordings(now=None) -> list[TrainingSession]:
    """Teams/hybrid sessions that ended 30 minutes to 3 days ago (recordings appear late)."""
    now = now or utcnow()
    return list(db.session.scalars(
        select(TrainingSession).where(
            TrainingSession.delivery.in_(ONLINE_DELIVERIES),
            TrainingSession.status != CANCELLED,
            TrainingSession.graph_event_id != "",
            TrainingSession.ends_at <= now - timedelta(minutes=30),
            TrainingSession.ends_at >= now - timedelta(days=3),
        )
    ))


def queue_due_imports(now=None) -> dict:
    now = now or utcnow()
    queued: dict[str, list[int]] = {"attendance": [], "recordings": []}
    for session in sessions_due_for_attendance(now):
        if not _recently(session.id, ops.IMPORT_ATTENDANCE, now, timedelta(hours=1)):
            ops.queue_operation(session.id, ops.IMPORT_ATTENDANCE, reason="after_end")
            queued["attendance"].append(session.id)
    for session in sessions_due_for_recordings(now):
        if not _recently(session.id, ops.IMPORT_RECORDING, now, timedelta(hours=2)):
            ops.queue_operation(session.id, ops.IMPORT_RECORDING, reason="after_end")
            queued["recordings"].append(session.id)
    db.session.commit()
    return queued


def _recently(session_id: int, kind: str, now, window: timedelta) -> bool:
    op = db.session.scalar(
        select(GraphOperation).where(GraphOperation.session_id == session_id, GraphOperation.kind == kind)
        .order_by(GraphOperation.id.desc()).limit(1)
    )
    if op is None:
        return False
    if op.status in (ops.QUEUED, ops.RUNNING):
        return True
    return as_utc(op.created_at) > now - window


def organizers_with_recent_meetings(now=None) -> list[str]:
    now = now or utcnow()
    rows = db.session.scalars(
        select(TrainingSession.graph_organizer).where(
            TrainingSession.graph_organizer != "",
            TrainingSession.ends_at >= now - timedelta(days=2),
            TrainingSession.ends_at <= now,
        ).distinct()
    )
    return sorted(set(rows))


# ---------------------------------------------------------------- helpers for pages


def sessions_needing_attention(limit: int = 100) -> list[dict]:
    """Per session, the kinds of work whose latest run failed (what the status page lists first)."""
    latest_ids = (
        select(func.max(GraphOperation.id))
        .where(GraphOperation.session_id.is_not(None))
        .group_by(GraphOperation.session_id, GraphOperation.kind)
    )
    failed = db.session.scalars(
        select(GraphOperation).where(GraphOperation.id.in_(latest_ids), GraphOperation.status == ops.FAILED)
        .order_by(GraphOperation.session_id.desc(), GraphOperation.kind)
    ).all()
    by_session: dict[int, list[GraphOperation]] = {}
    for op in failed:
        if op.session_id is not None:  # always (the query's filter); for the type checker
            by_session.setdefault(op.session_id, []).append(op)
    return [{"session_id": sid, "operations": items} for sid, items in list(by_session.items())[:limit]]


# Attendance report roles of those who run the meeting (Graph's, and the files' in both languages).
MEETING_HOSTS = {"organizer", "coorganizer", "co-organizer", "presenter", "開催者", "共同開催者", "発表者"}


def session_attendance_view(session: TrainingSession) -> dict:
    """What the trainer's session page shows."""
    records = db.session.scalars(
        select(AttendanceRecord).where(AttendanceRecord.session_id == session.id)
        .order_by(AttendanceRecord.staff_member_id.is_(None).desc(), AttendanceRecord.display_name, AttendanceRecord.id)
    ).all()
    rows = attendance_services.attendance_rows(session)
    confirmed = {row["staff"].id for row in rows}
    return {
        "records": records,
        "unmatched": [r for r in records if r.staff_member_id is None],
        # A staff member the meeting let in who holds no confirmed place (飛び入り): matched,
        # but not one of the session's enrollees, so their attendance counts nowhere. The
        # organiser and presenters hold none either, and are no walk-ins.
        "not_enrolled": {r.id for r in records if r.staff_member_id is not None and r.staff_member_id not in confirmed
                         and (r.role or "").lower() not in MEETING_HOSTS},
        "rows": rows,
        "operations": ops.latest_operations(session.id),
    }


def user_label(user_id: int | None) -> str:
    if user_id is None:
        return ""
    user = db.session.get(User, user_id)
    return user.display_name if user else ""
