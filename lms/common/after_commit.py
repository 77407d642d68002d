"""Work that may run only once the transaction is durable: the one after-commit mechanism.

``after_commit(fn)`` registers a callable on the current transaction of ``db.session``.
It runs once the outermost transaction commits; it is dropped when the transaction (or the
savepoint it was registered in) rolls back, so a retried transaction registers its work
again and nothing runs for a change that never happened. Typical uses: hand a queued mail or
a Graph operation to the worker. Callbacks must not touch the finished transaction's
session state; an exception in one is logged and does not affect the others (the change is
committed already; periodic tasks pick up whatever a failed hand-over left queued).

``when_ended(fn)`` runs ``fn()`` once the outermost transaction has ended, whichever way
(committed, rolled back or closed with the session), after its connection went back to the
pool: for a record that must survive the transaction's rollback but cannot be written beside
it while the transaction holds SQLite's one write lock (the refusal audit).

``on_rollback(fn)`` is its mirror for work done outside the database before the commit (a
file written to storage): ``fn()`` runs if the transaction it was registered in rolls back,
and is forgotten once the outermost transaction commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from lms.extensions import db

logger = logging.getLogger(__name__)

_KEY = "lms_after_commit"
_UNDO_KEY = "lms_on_rollback"
_END_KEY = "lms_when_ended"


def _current_transaction(session: Session) -> SessionTransaction | None:
    return session.get_nested_transaction() or session.get_transaction()


def after_commit(fn: Callable[[], None], *, key: Hashable | None = None, session: Session | None = None) -> None:
    """Run ``fn()`` after the current transaction commits (at once when none is open).

    ``key``: callbacks registered with the same key in one transaction run once (e.g. "wake
    the mail worker" after queuing twenty mails)."""
    session = session if session is not None else db.session()
    transaction = _current_transaction(session)
    if transaction is None:
        _run([fn])
        return
    pending: list[tuple[SessionTransaction, Hashable | None, Callable[[], None]]] = session.info.setdefault(_KEY, [])
    if key is not None and any(k == key for _t, k, _f in pending):
        return
    pending.append((transaction, key, fn))


def on_rollback(fn: Callable[[], None], *, session: Session | None = None) -> None:
    """Run ``fn()`` if the current transaction (or savepoint) rolls back instead of committing."""
    session = session if session is not None else db.session()
    transaction = _current_transaction(session)
    if transaction is None:
        return
    session.info.setdefault(_UNDO_KEY, []).append((transaction, None, fn))


def when_ended(fn: Callable[[], None], *, session: Session | None = None) -> None:
    """Run ``fn()`` once the outermost transaction has ended, committed or not (at once when
    none is open)."""
    session = session if session is not None else db.session()
    if session.get_transaction() is None:
        _run([fn])
        return
    session.info.setdefault(_END_KEY, []).append(fn)


@event.listens_for(Session, "after_transaction_end")
def _run_when_ended(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None:
        waiting = session.info.pop(_END_KEY, None)
        if waiting:
            _run(waiting)


def has_pending(session: Session | None = None) -> bool:
    """Whether work waits on the current transaction's commit or rollback (ending it would
    drop or undo that work)."""
    session = session if session is not None else db.session()
    return bool(session.info.get(_KEY) or session.info.get(_UNDO_KEY))


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _run_pending(session: Session) -> None:
    session.info.pop(_UNDO_KEY, None)
    pending = session.info.pop(_KEY, None)
    if pending:
        _run([fn for _t, _k, fn in pending])


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    undo = _split(session, _UNDO_KEY, previous_transaction)
    _split(session, _KEY, previous_transaction)
    if undo:
        _run([fn for _t, _k, fn in undo])


def _split(session: Session, key: str, rolled_back: SessionTransaction) -> list:
    """Remove and return the entries of ``key`` registered within the rolled-back transaction."""
    pending = session.info.get(key)
    if not pending:
        return []
    kept = [entry for entry in pending if not _within(entry[0], rolled_back)]
    if kept:
        session.info[key] = kept
    else:
        session.info.pop(key, None)
    return [entry for entry in pending if _within(entry[0], rolled_back)]


def _run(callbacks: list[Callable[[], None]]) -> None:
    for fn in callbacks:
        try:
            fn()
        except Exception:
            logger.exception("after-commit work failed: %r", fn)


def pending_keys(session: Session | None = None) -> list[Hashable]:
    """The keys of the work registered in the open transaction (for de-duplication)."""
    session = session if session is not None else db.session()
    return [k for _t, k, _f in session.info.get(_KEY, ()) if k is not None]


def discard(key: Hashable, session: Session | None = None) -> None:
    """Drop the registered work with this key (the caller does it itself instead)."""
    session = session if session is not None else db.session()
    pending = session.info.get(_KEY)
    if pending:
        session.info[_KEY] = [entry for entry in pending if entry[1] != key]
