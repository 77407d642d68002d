"""Worker tasks of the integration API: the bulk roster feeds."""

from __future__ import annotations

from huey import crontab

from lms.api import roster_jobs
from lms.common.jobs import app_context, huey


@huey.task()
def run_roster_job(job_id: int) -> int | None:
    with app_context():
        job = roster_jobs.run_job(job_id)
        return job.processed if job is not None else None


@huey.periodic_task(crontab(minute="*"))
def resume_roster_jobs() -> list[int]:
    """Every minute: a job whose start was lost, or whose worker died, goes on."""
    with app_context():
        return roster_jobs.resume_stalled()
