"""Bulk roster feeds (POST /api/v1/staff/bulk): up to 50,000 entries in one request, answered
at once with a job (202), stored in parts of ``PART`` entries and processed by the worker a
part at a time. Each part
is one transaction: its entries checked and written in bulk (``lms.roster.services.
upsert_staff_entries``, the CSV import's rules: transfers, returns, departures), its rows'
results and the job's progress — so a worker that dies loses nothing and the job resumes at
the next part. A refused entry does not stop the others; every entry gets a result."""

from __future__ import annotations

import hashlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, cast

from flask_babel import force_locale, get_locale
from marshmallow import ValidationError
from sqlalchemy import CursorResult, and_, delete, insert, or_, select, update

from lms.api import feed_json
from lms.api.auth import ApiActor, Caller
from lms.api.models import (
    JOB_FAILED,
    JOB_FINISHED,
    JOB_QUEUED,
    JOB_RUNNING,
    ApiClient,
    RosterJob,
    RosterJobPart,
    RosterJobRow,
)
from lms.api.schemas import StaffBulkEntry
from lms.api.webhooks.services import publish
from lms.audit.services import record_action
from lms.common.database import begin_write
from lms.common.jobs import hand_over_after_commit
from lms.common.said import Joined, reworded, said, stored
from lms.common.timeutil import today_tokyo, utcnow
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.roster.services import REFUSED, FeedSeen, RowResult, upsert_staff_entries

logger = logging.getLogger(__name__)

MAX_ENTRIES = 50_000
PART = 1000
# A running job whose heartbeat is older than this is taken over (its worker died).
STALE = timedelta(minutes=5)


def feed_digest(municipality_id: int, text: str) -> str:
    """What an Idempotency-Key is held to: the feed's municipality and its text, hashed."""
    digest = hashlib.sha256(f"{municipality_id}\n".encode())
    digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def job_of_key(client_id: int, key: str) -> RosterJob | None:
    """The job a client's earlier feed with this Idempotency-Key made, or None."""
    return db.session.scalar(select(RosterJob).where(RosterJob.client_id == client_id,
                                                     RosterJob.idempotency_key == key))


def accept_feed(caller: Caller, municipality_id: int, text: str, bounds: Sequence[int],
                idempotency_key: str | None = None, request_digest: str | None = None) -> RosterJob:
    """Queue a checked feed: ``text`` as received, each entry at ``text[bounds[2i]:bounds[2i +
    1]]`` (``lms.api.feed_json.spans``), stored in parts of ``PART`` entries. The caller
    commits; the worker starts after the commit. With ``idempotency_key`` the job keeps the key
    (unique per client: a copy in flight fails on the unique index once this one commits) and
    the feed's digest (``feed_digest``), which a later request with the same key must match."""
    total = len(bounds) // 2
    job = RosterJob(client_id=caller.client_id, municipality_id=municipality_id, status=JOB_QUEUED, total=total,
                    processed=0, counts="{}", effective_on=today_tokyo(), idempotency_key=idempotency_key,
                    request_digest=request_digest, language=str(get_locale() or "ja"))
    db.session.add(job)
    db.session.flush()
    for number, payload in enumerate(feed_json.parts(text, bounds, PART)):  # one part in memory at a time
        db.session.execute(insert(RosterJobPart).values(job_id=job.id, part=number, payload=payload))
    actor: Any = caller.actor  # (an application: the audit log names it, no user id)
    record_action(actor, "roster.bulk_accepted", "api_roster_job", job.id, municipality_id, total=total,
                  **caller.audit_details)
    job_id = job.id  # (inline runs, the tests, run the job themselves: run_job)
    hand_over_after_commit(lambda: _start(job_id), key=("roster-job", job_id), inline=False,
                           what=f"roster job {job_id}")
    return job


def _start(job_id: int) -> None:
    from lms.api.tasks import run_roster_job  # tasks imports this module

    run_roster_job(job_id)


def _claim(job_id: int) -> bool:
    now = utcnow()
    begin_write()
    result = db.session.execute(
        update(RosterJob)
        .where(RosterJob.id == job_id,
               or_(RosterJob.status == JOB_QUEUED,
                   and_(RosterJob.status == JOB_RUNNING, RosterJob.heartbeat_at < now - STALE)))
        .values(status=JOB_RUNNING, heartbeat_at=now, started_at=db.func.coalesce(RosterJob.started_at, now))
        .execution_options(synchronize_session=False))
    db.session.commit()
    return cast(CursorResult[Any], result).rowcount == 1


def _refusal(exc: ValidationError) -> str:
    """The schema's refusal of an entry, kept with its message ids (the fields' messages are lazy:
    ``lms.api.schemas``; one a validator formatted already stays in the language of the feed)."""
    messages = exc.messages if isinstance(exc.messages, dict) else {"_": exc.messages}
    parts: list[Any] = []
    for name, problems in messages.items():
        text = Joined(tuple(problems), "; ") if isinstance(problems, list) else problems
        parts.append(text if name in ("_", "_schema") else Joined((name, text), ": "))
    return said("項目の値が正しくありません（%(details)s）。", details=Joined(tuple(parts), " / "))


def _parse(schema: StaffBulkEntry, line: int, raw) -> tuple[int, dict] | RowResult:
    """``(line, entry)`` as the roster takes it, or the entry's refusal."""
    try:
        data = schema.load(raw)
    except ValidationError as exc:
        number = str(raw.get("employee_number", ""))[:40] if isinstance(raw, dict) else ""
        return RowResult(line, number, "", REFUSED, _refusal(exc))
    return line, data


def run_job(job_id: int) -> RosterJob | None:
    """Process the job's remaining parts (a job already finished, or held by a live worker,
    is left alone: None)."""
    if not _claim(job_id):
        return None
    job = db.session.get_one(RosterJob, job_id)
    client = db.session.get_one(ApiClient, job.client_id)
    actor: Any = ApiActor.of(client.name, client.application_id, client.municipality_id)
    details = {"api_client_id": client.id, "application_id": client.application_id, "roster_job_id": job.id}
    schema = StaffBulkEntry()
    seen = FeedSeen(feed=True)
    counts = Counter(json.loads(job.counts or "{}"))
    municipality_id, effective_on, total, done = job.municipality_id, job.effective_on, job.total, job.processed
    language = job.language
    refused = set(db.session.scalars(select(RosterJobRow.row).where(
        RosterJobRow.job_id == job.id, RosterJobRow.outcome == REFUSED))) if done else set()
    numbers = db.session.scalars(select(RosterJobPart.part).where(RosterJobPart.job_id == job_id)
                                 .order_by(RosterJobPart.part)).all()
    try:
        for number in numbers:  # one stored part at a time in memory
            payload = db.session.scalar(select(RosterJobPart.payload).where(RosterJobPart.job_id == job_id,
                                                                            RosterJobPart.part == number))
            part = list(enumerate(json.loads(bytes(payload or b"[]")), number * PART + 1))
            del payload
            if part and part[-1][0] > done:
                with force_locale(language):  # the results' stored text in the language the client asked for
                    _process(job_id, municipality_id, effective_on, [(line, raw) for line, raw in part if line > done],
                             schema, seen, actor, counts, total)
                continue
            for line, raw in part:  # resumed: what the earlier parts took
                if line not in refused:
                    parsed = _parse(schema, line, raw)
                    if isinstance(parsed, tuple):
                        seen.take(line, parsed[1])
    except ValueError as exc:  # the text was checked when accepted: only a damaged row gets here
        db.session.rollback()
        return _finish(job, actor, details, JOB_FAILED, f"stopped: {type(exc).__name__}: {exc}")
    job = db.session.get_one(RosterJob, job_id)
    return _finish(job, actor, details, JOB_FINISHED, "")


def _process(job_id: int, municipality_id: int, effective_on, part: list[tuple[int, Any]], schema: StaffBulkEntry,
             seen: FeedSeen, actor, counts: Counter, total: int) -> None:
    """One part: its entries checked and written, their results and the job's progress, in
    one transaction."""
    rows: list[tuple[int, dict]] = []
    results: list[RowResult] = []
    for line, raw in part:
        parsed = _parse(schema, line, raw)
        if isinstance(parsed, tuple):
            rows.append(parsed)
        else:
            results.append(parsed)
    results += upsert_staff_entries(municipality_id, rows, actor, seen, effective_on=effective_on)
    results.sort(key=lambda r: r.line)
    db.session.execute(insert(RosterJobRow), [_row(job_id, r) for r in results])
    counts.update(r.outcome for r in results)
    db.session.execute(update(RosterJob).where(RosterJob.id == job_id).values(
        processed=min(part[-1][0], total), counts=json.dumps(dict(counts)), heartbeat_at=utcnow())
        .execution_options(synchronize_session=False))
    db.session.commit()


def _row(job_id: int, result: RowResult) -> dict:
    """An entry's result as stored: its message's text (in the job's language) and, to word it
    for each reader, its message id and parameters (``lms.common.said``)."""
    message_id, params = stored(result.message, _storable)
    return {"job_id": job_id, "row": result.line, "employee_number": _storable(result.employee_number)[:40],
            "outcome": result.outcome, "message": _storable(result.message), "message_id": message_id,
            "message_params": params}


def result_message(row: RosterJobRow) -> str:
    """An entry's result in the current language (a row kept before results had message ids:
    its text, in the language of the feed's request)."""
    return reworded(row.message_id, row.message_params, row.message)


def _storable(text: str) -> str:
    """A refused entry's number or message as the client sent it, but with U+0000 (which the
    validators refuse and PostgreSQL cannot store) shown as U+FFFD."""
    return text.replace("\x00", "\ufffd")


def _finish(job: RosterJob, actor, details: dict, status: str, error: str) -> RosterJob:
    begin_write()
    job = db.session.get_one(RosterJob, job.id)
    job.status, job.error, job.finished_at = status, error, utcnow()
    db.session.execute(delete(RosterJobPart).where(RosterJobPart.job_id == job.id))  # the feed is not kept
    counts = json.loads(job.counts or "{}")
    record_action(actor, "roster.bulk_upsert", "api_roster_job", job.id, job.municipality_id, status=status,
                  total=job.total, **{k: v for k, v in counts.items() if v}, **details)
    code = db.session.scalar(select(Municipality.code).where(Municipality.id == job.municipality_id)) or ""
    publish("roster.job_finished", job.municipality_id,
            lambda: {"id": job.id, "status": status, "municipality_code": code, "total": job.total,
                     "processed": job.processed, "counts": counts, "finished_at": job.finished_at})
    db.session.commit()
    if error:
        logger.error("roster job %s failed: %s", job.id, error)
    return job


def resume_stalled() -> list[int]:
    """Jobs queued while the queue was down, or left by a dead worker: run them (the worker's
    periodic sweep)."""
    cutoff = utcnow() - STALE
    ids = db.session.scalars(select(RosterJob.id).where(
        or_(and_(RosterJob.status == JOB_QUEUED, RosterJob.created_at < utcnow() - timedelta(minutes=1)),
            and_(RosterJob.status == JOB_RUNNING, RosterJob.heartbeat_at < cutoff))).order_by(RosterJob.id)).all()
    db.session.rollback()
    return [job_id for job_id in ids if run_job(job_id) is not None]


def job_counts(job: RosterJob) -> dict[str, int]:
    return {k: int(v) for k, v in json.loads(job.counts or "{}").items()}
