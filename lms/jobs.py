"""Background jobs (huey): SQLite storage on one machine, Redis when REDIS_URL is set.

Start the worker with ``flask --app wsgi lms worker`` (2 threads, periodic tasks on), or
with ``huey_consumer lms.jobs.huey -w 2 -k thread`` (scripts/dev.sh does); both run the
same tasks. Several workers (on several machines, with Redis) may run at once: the outbox
claims each mail atomically.
Tasks open their own application context through ``app_context()``. Tests set
``huey.immediate = True`` (HUEY_IMMEDIATE in TestingConfig) so tasks run inline.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path

from huey import RedisHuey, SqliteHuey

_ROOT = Path(__file__).resolve().parent.parent


def _make_huey():
    redis_url = os.environ.get("REDIS_URL")
    if redis_url:
        return RedisHuey("manabi", url=redis_url)
    path = os.environ.get("HUEY_SQLITE_PATH") or str(_ROOT / "instance" / "huey.db")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("manabi", filename=path)


huey = _make_huey()
if os.environ.get("LMS_ENV") == "testing":
    huey.immediate = True

_app = None
_app_lock = threading.Lock()


def get_app():
    """The worker's Flask app (created once per worker process, whichever thread asks first)."""
    global _app
    if _app is None:
        from flask import current_app, has_app_context

        if has_app_context():
            return current_app._get_current_object()
        with _app_lock:
            if _app is None:
                from lms import create_app

                _app = create_app()
    return _app


@contextmanager
def app_context():
    from flask import has_app_context

    if has_app_context():
        yield
        return
    with get_app().app_context():
        yield


def load_tasks() -> None:
    """Import every area's tasks so the consumer registers them."""
    from importlib import import_module

    for area in ("notifications", "teams", "archives", "completion", "roster"):
        try:
            import_module(f"lms.{area}.tasks")
        except ModuleNotFoundError as exc:
            if exc.name != f"lms.{area}.tasks":
                raise


load_tasks()
