"""Worker tasks of the shared parts: the nightly clean-up of creating forms' one-time tokens."""

from __future__ import annotations

from huey import crontab

from lms.common import once
from lms.common.jobs import app_context, huey
from lms.extensions import db


@huey.periodic_task(crontab(minute="50", hour="18"))  # 03:50 in Tokyo
def forget_old_form_submissions() -> int:
    """Every night: the one-time tokens of creating forms older than two days are deleted."""
    with app_context():
        gone = once.forget_old()
        db.session.commit()
        return gone
