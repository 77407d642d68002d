"""Writing the audit log. Entries are only ever added, never changed or removed.

The audit log is the lowest feature: it knows no users or municipalities, only their ids.
An actor is anything with an ``id`` and a ``display_name`` (a signed-in user), or None for
the system.
"""

from __future__ import annotations

from typing import Protocol

from flask import g, has_request_context, request
from sqlalchemy import event, insert

from lms.audit.models import AuditLog
from lms.common.after_commit import when_ended
from lms.common.database import ensure_writer, holds_write_lock
from lms.common.timeutil import utcnow
from lms.extensions import db


class Actor(Protocol):
    id: int
    display_name: str


def record_action(
    actor: Actor | None,
    action: str,
    target_type: str = "",
    target_id: object = "",
    municipality_id: int | None = None,
    **details,
) -> AuditLog:
    """Add an audit entry to the current transaction (committed with the change it records)."""
    entry = AuditLog(
        actor_id=getattr(actor, "id", None),
        actor_label=_label(actor),
        action=action,
        target_type=target_type,
        target_id="" if target_id is None else str(target_id),
        municipality_id=municipality_id,
        details=details,
    )
    if has_request_context():
        entry.ip_address = (request.remote_addr or "")[:64]
        entry.request_id = getattr(g, "request_id", "")
    db.session.add(entry)
    return entry


def record_access(
    actor: Actor | None,
    action: str,
    target_type: str = "",
    target_id: object = "",
    municipality_id: int | None = None,
    **details,
) -> None:
    """Record an access that changes nothing else (an export, a download, a printed list) and
    commit it: call it once the response's data is made (or its query is ready to stream),
    before anything leaves. If the entry cannot be written, the request fails and nothing
    leaves, as with ``record_action`` and a commit.

    On SQLite the request's transaction has only read so far; it takes the write lock before
    the entry (``ensure_writer``), since a reader turned writer fails at once while another
    request writes ("database is locked"). Objects read before are read again on first use.
    On PostgreSQL this is ``record_action`` and a commit."""
    ensure_writer()
    record_action(actor, action, target_type, target_id, municipality_id, **details)
    db.session.commit()


def record_denied(actor: Actor | None, target_type: str, target_id: object) -> None:
    """A refused cross-municipality access, written on its own connection so it survives the 403."""
    values = {
        "occurred_at": utcnow(),
        "actor_id": getattr(actor, "id", None),
        "actor_label": _label(actor),
        "action": "access.denied",
        "target_type": target_type,
        "target_id": "" if target_id is None else str(target_id),
        "municipality_id": getattr(actor, "municipality_id", None),
        "ip_address": (request.remote_addr or "")[:64] if has_request_context() else "",
        "request_id": getattr(g, "request_id", "") if has_request_context() else "",
        "details": {"path": request.path} if has_request_context() else {},
    }

    def write() -> None:
        with db.engine.begin() as conn:
            conn.execute(insert(AuditLog), [values])

    if holds_write_lock():
        when_ended(write)  # SQLite: this request's lock would keep the entry waiting; after it
    else:
        write()


def _label(actor: Actor | None) -> str:
    if actor is None:
        return "system"
    name = getattr(actor, "display_name", "") or ""
    ident = getattr(actor, "id", "?")
    # An actor without a user id (an API client application) is named by its label alone.
    return name if ident is None else f"{name} ({ident})"


@event.listens_for(AuditLog, "before_update")
def _refuse_update(mapper, connection, target):
    raise RuntimeError("audit log entries are append-only")


@event.listens_for(AuditLog, "before_delete")
def _refuse_delete(mapper, connection, target):
    raise RuntimeError("audit log entries are append-only")
