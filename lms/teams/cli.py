"""``flask --app wsgi lms graph-…`` commands: run each Graph sync by hand.

The Teams area's own click group (``graph_cli``); ``lms.cli`` adds its commands to the
``lms`` group under the same names.
"""

from __future__ import annotations

import json

import click
from flask.cli import AppGroup
from sqlalchemy import select

from lms.common.timeutil import utcnow
from lms.courses.models import CANCELLED, TrainingSession
from lms.extensions import db
from lms.teams import operations as ops
from lms.teams.graph import GraphError, client_from_app, graph_configured
from lms.teams.services import (
    ONLINE_DELIVERIES,
    execute_operation,
    sessions_due_for_attendance,
    sessions_due_for_recordings,
)
from lms.teams.subscriptions import subscribe_with

graph_cli = AppGroup("graph", help="Microsoft Graph: run each sync by hand.")


def _run(session_ids: list[int], kind: str) -> list[dict]:
    client = client_from_app()
    results = []
    for session_id in session_ids:
        session = db.session.get(TrainingSession, session_id)
        if session is None:
            raise click.ClickException(f"session {session_id} not found")
        op = ops.queue_operation(session.id, kind, reason="cli")
        ops.run_here_instead(op)
        db.session.commit()
        done = execute_operation(op.id, client)
        if done is None:  # claimed by a worker meanwhile: it reports there
            results.append({"session": session_id, "operation": op.id, "status": "claimed elsewhere"})
            continue
        results.append({"session": session_id, "operation": done.id, "status": done.status,
                        "error": done.last_error, "details": done.details})
    return results


def _echo(results: list[dict]) -> None:
    for row in results:
        click.echo(json.dumps(row, ensure_ascii=False, default=str))
    if any(r["status"] == "failed" for r in results):
        raise SystemExit(1)


def _require_graph() -> None:
    if not graph_configured():
        raise click.ClickException("Microsoft Graph is not configured (ENTRA_CLIENT_ID and a secret or certificate).")


@graph_cli.command("graph-sync-meetings")
@click.option("--session", "session_id", type=int, help="Only this session.")
def graph_sync_meetings(session_id: int | None):
    """Create or update the Teams meetings of upcoming Teams/hybrid sessions (cancel cancelled ones)."""
    _require_graph()
    if session_id:
        ids = [session_id]
    else:
        ids = list(db.session.scalars(select(TrainingSession.id).where(
            TrainingSession.ends_at >= utcnow(),
            TrainingSession.delivery.in_(ONLINE_DELIVERIES) | (TrainingSession.graph_event_id != ""),
        ).order_by(TrainingSession.starts_at)))
    results = []
    for sid in ids:
        session = db.session.get(TrainingSession, sid)
        if session is None:
            raise click.ClickException(f"session {sid} not found")
        kind = ops.CANCEL_EVENT if session.status == CANCELLED else ops.UPDATE_EVENT if session.graph_event_id else ops.CREATE_EVENT
        results.extend(_run([sid], kind))
    _echo(results)


@graph_cli.command("graph-import-attendance")
@click.option("--session", "session_id", type=int, help="Only this session (otherwise every ended one not yet imported).")
def graph_import_attendance(session_id: int | None):
    """Import Teams attendance reports of ended sessions."""
    _require_graph()
    ids = [session_id] if session_id else [s.id for s in sessions_due_for_attendance()]
    _echo(_run(ids, ops.IMPORT_ATTENDANCE))


@graph_cli.command("graph-import-recordings")
@click.option("--session", "session_id", type=int, help="Only this session (otherwise every recently ended one).")
def graph_import_recordings(session_id: int | None):
    """Import Teams recordings and transcripts into draft archives."""
    _require_graph()
    ids = [session_id] if session_id else [s.id for s in sessions_due_for_recordings()]
    _echo(_run(ids, ops.IMPORT_RECORDING))


@graph_cli.command("graph-subscribe-recordings")
@click.argument("organizer")
def graph_subscribe_recordings(organizer: str):
    """Subscribe to change notifications for new recordings and transcripts of ORGANIZER's meetings."""
    _require_graph()
    client = client_from_app()
    try:
        for kind in ("getAllRecordings", "getAllTranscripts"):
            sub = subscribe_with(client, organizer, kind)
            click.echo(json.dumps({"subscription": sub.subscription_id, "resource": sub.resource,
                                   "expires_at": sub.expires_at.isoformat()}))
    except GraphError as exc:
        raise click.ClickException(str(exc)) from exc
