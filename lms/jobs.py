"""The background worker's entry point: every area's tasks, and the app they run in.

Start the worker with ``flask --app wsgi lms worker`` (2 threads, periodic tasks on), or
with ``huey_consumer lms.jobs.huey -w 2 -k thread`` (scripts/dev.sh does); both run the
same tasks. Several workers (on several machines, with Redis) may run at once: the outbox
claims each mail atomically. The queue itself is ``lms.common.jobs``.
"""

from __future__ import annotations

from importlib import import_module

from flask import Flask

from lms.archives import tasks as archives_tasks
from lms.common.jobs import huey, use_app_factory
from lms.notifications import tasks as notifications_tasks
from lms.teams import tasks as teams_tasks

TASK_MODULES = (archives_tasks, notifications_tasks, teams_tasks)


def create_worker_app() -> Flask:
    """The app the tasks run in under huey's own consumer (``flask lms worker`` hands over
    the app it runs in instead)."""
    # The app factory sits above every layer, the CLI that starts this worker included: the
    # entry point names it, as gunicorn's ``wsgi:app`` does, instead of importing it.
    return import_module("lms").create_app()


use_app_factory(create_worker_app)

__all__ = ["TASK_MODULES", "create_worker_app", "huey"]
