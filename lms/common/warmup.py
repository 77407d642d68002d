"""A new worker's warm-up, before it takes its first request.

When a popular course opens, every request of the rush queues behind each worker's first
ones. A cold worker pays on those for what later requests never pay: its first connections
(the database's, the job queue's), SQLAlchemy compiling each statement of the path, and
PostgreSQL loading its caches for the tables. On the enrollment rush (bench/enroll_rush.py)
a worker's first enrollment took about 25 ms of CPU and the next few about 6 ms, against
4 ms once warm, with some 60 requests waiting behind them.

``warm_up_worker`` pays that before the worker serves anyone: gunicorn calls it from
``post_worker_init`` (gunicorn.conf.py), once the worker has loaded the app and before it
accepts a connection. Each rehearsal runs a hot path for real, in a transaction that is
always rolled back. A commit inside one is refused, so nothing a rehearsal writes is ever
committed and nothing that waits for a commit (mail delivery, Microsoft Graph operations)
happens; only sequence numbers move on. A rehearsal that fails (a database not migrated
yet, a store that is down) is logged, and the worker starts cold on that path.

Last, what the worker has built by then (modules, mappers, templates, compiled statements:
some 200,000 objects that live as long as the process) is moved out of the cyclic garbage
collector's reach (``gc.freeze``). Otherwise every full collection walks all of it, which
takes about 70 ms during which the worker answers nobody.

``LMS_WARM_UP=0`` turns the rehearsals off (the freeze still happens).
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Callable
from importlib import import_module

from flask import Flask
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from lms.extensions import db

log = logging.getLogger(__name__)

_REHEARSING = "lms_rehearsing"

# Each area's rehearsal, by import path (imported only when a worker warms up).
REHEARSALS: tuple[str, ...] = (
    "lms.common.warmup:rehearse_connections",
    "lms.enrollment.warmup:rehearse_enrollment",
)


class RehearsalCommitted(RuntimeError):
    """A rehearsal tried to commit: refused, its transaction is rolled back."""


@event.listens_for(Session, "before_commit")
def _refuse_commit(session: Session) -> None:
    if session.info.get(_REHEARSING):
        raise RehearsalCommitted("a warm-up rehearsal may not commit")


def warm_up_worker(app: Flask, rehearsals: tuple[str, ...] = REHEARSALS) -> dict[str, bool]:
    """Run each rehearsal in a transaction that is rolled back, then freeze what the worker
    holds out of the garbage collector's reach. Returns {rehearsal: succeeded}."""
    started = time.perf_counter()
    outcome: dict[str, bool] = {}
    if app.config["LMS_WARM_UP"]:
        with app.app_context():
            for path in rehearsals:
                outcome[path] = _rehearse(path)
            db.session.remove()
    gc.collect()
    gc.freeze()
    log.info("worker warmed up in %.0f ms: %s", (time.perf_counter() - started) * 1000,
             ", ".join(f"{path.rsplit(':', 1)[1]} {'ok' if ok else 'failed'}" for path, ok in outcome.items()) or "off")
    return outcome


def _rehearse(path: str) -> bool:
    session = db.session()
    session.info[_REHEARSING] = True
    try:
        _resolve(path)()
        return True
    except Exception:
        log.warning("warm-up rehearsal %s failed; the worker starts cold on its path", path, exc_info=True)
        return False
    finally:
        try:
            db.session.rollback()
        finally:
            session.info.pop(_REHEARSING, None)


def _resolve(path: str) -> Callable[[], None]:
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)


def rehearse_connections() -> None:
    """Open the first connections: the database's pool, the job queue's store (the first
    enrollment asks the worker to deliver its mail) and the rate limits' store."""
    from lms.common.jobs import huey
    from lms.extensions import limiter

    db.session.execute(text("SELECT 1"))
    if not huey.immediate:
        huey.storage.queue_size()
    if limiter.enabled:
        limiter.storage.check()
