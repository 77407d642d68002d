"""The background job queue (huey): SQLite storage on one machine, Redis when REDIS_URL is set.

Areas declare their tasks in ``lms/<area>/tasks.py`` with ``@huey.task()`` from here. The
worker process is ``lms.jobs`` (it loads every area's tasks and knows how to build the app);
tasks open their application context through ``app_context()``. Tests run tasks inline
(``huey.immediate``, set when LMS_ENV=testing).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from flask import Flask, current_app, has_app_context
from huey import Huey, RedisHuey, SqliteHuey, crontab

from config import job_queue_settings
from lms.common.after_commit import after_commit


def _make_huey() -> Huey:
    settings = job_queue_settings()
    queue: Huey
    if settings.redis_url:
        queue = RedisHuey("manabi", url=settings.redis_url)
    else:
        Path(settings.sqlite_path).parent.mkdir(parents=True, exist_ok=True)
        queue = SqliteHuey("manabi", filename=settings.sqlite_path)
    queue.immediate = settings.immediate
    return queue


huey = _make_huey()

_app: Flask | None = None
_app_factory: Callable[[], Flask] | None = None
_app_lock = threading.Lock()


def use_app_factory(factory: Callable[[], Flask]) -> None:
    """The worker process says how to build its app (lms.jobs passes ``create_app``)."""
    global _app_factory
    _app_factory = factory


def use_app(app: Flask) -> None:
    """The worker's tasks run in this app (``flask lms worker`` passes its own)."""
    global _app
    _app = app


def get_app() -> Flask:
    """The worker's Flask app, created once per process by whichever thread asks first."""
    global _app
    if _app is None:
        with _app_lock:
            if _app is None:
                if _app_factory is None:
                    raise RuntimeError("no application: run the worker as lms.jobs (it sets the app factory)")
                _app = _app_factory()
    return _app


@contextmanager
def app_context() -> Iterator[Any]:
    if has_app_context():
        yield
        return
    with get_app().app_context():
        yield


# ---------------------------------------------------------------- handing work over after a commit

_log = logging.getLogger(__name__)


def hand_over_after_commit(enqueue: Callable[[], object], *, key: Hashable, inline: bool, what: str) -> None:
    """Once the current transaction commits, ``enqueue()`` (a huey task call) asks the worker
    to do the work the transaction recorded (once per ``key`` and transaction; nothing if it
    rolls back). Where jobs run inline (``huey.immediate``, the tests): with ``inline`` the
    work runs then, in an application context of its own (a fresh database session: the
    committing one cannot be used inside its own commit); without, it is left to the caller
    (the tests run it themselves). A failure to enqueue is logged, never raised: the change is
    committed and the area's periodic task finds the work (``what`` names it in the log)."""
    after_commit(lambda: _hand_over(enqueue, inline, what), key=key)


def _hand_over(enqueue: Callable[[], object], inline: bool, what: str) -> None:
    if huey.immediate and not inline:
        return
    try:
        if huey.immediate:
            with current_app.app_context():
                enqueue()
        else:
            enqueue()
    except Exception:  # noqa: BLE001 - the periodic task picks the work up
        _log.exception("could not enqueue %s; the periodic task will pick it up", what)


# ---------------------------------------------------------------- the worker's heartbeat

HEARTBEAT_KEY = "manabi:worker-heartbeat"


@huey.periodic_task(crontab(minute="*"))
def worker_heartbeat() -> None:
    """Every minute, the worker says it is alive (read by /readyz). Kept in the queue's own
    storage, so the heartbeat is seen by every web machine that shares the queue."""
    huey.put(HEARTBEAT_KEY, time.time())


def heartbeat_age() -> float | None:
    """Seconds since the worker's last heartbeat, or None if none was ever recorded."""
    beat = huey.get(HEARTBEAT_KEY, peek=True)
    return None if beat is None else max(0.0, time.time() - float(beat))


def pending_jobs() -> int:
    return huey.pending_count()
