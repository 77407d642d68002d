"""The background worker's entry point: every area's tasks, and the app they run in.

Start the worker with ``flask --app wsgi lms worker`` (2 threads, periodic tasks on), or
with ``huey_consumer lms.jobs.huey -w 2 -k thread`` (scripts/dev.sh does); both run the
same tasks. Several workers (on several machines, with Redis) may run at once: the outbox
claims each mail atomically. The queue itself is ``lms.common.jobs``.
"""

from __future__ import annotations

from lms import create_app
from lms.activities import tasks as activities_tasks
from lms.api import tasks as api_tasks
from lms.api.webhooks import tasks as webhooks_tasks
from lms.archives import tasks as archives_tasks
from lms.common import tasks as common_tasks
from lms.common.jobs import huey, use_app_factory
from lms.completion import tasks as completion_tasks
from lms.courses import tasks as courses_tasks
from lms.enrollment import tasks as enrollment_tasks
from lms.notifications import tasks as notifications_tasks
from lms.planning import tasks as planning_tasks
from lms.roster import tasks as roster_tasks
from lms.teams import tasks as teams_tasks
from lms.teams.viva import tasks as viva_tasks

TASK_MODULES = (activities_tasks, api_tasks, archives_tasks, common_tasks, completion_tasks, courses_tasks, enrollment_tasks,
                notifications_tasks, planning_tasks, roster_tasks, teams_tasks, viva_tasks,
                webhooks_tasks)


# huey's own consumer builds the app the tasks run in (``flask lms worker`` hands over its own).
use_app_factory(create_app)

__all__ = ["TASK_MODULES", "huey"]
