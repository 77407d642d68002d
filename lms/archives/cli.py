"""``flask --app wsgi archives …``: housekeeping commands (the worker runs the same periodically)."""

from __future__ import annotations

import click

from lms.archives.blueprint import bp
from lms.archives.tasks import run_expire_uploads


@bp.cli.command("expire-uploads")
def expire_uploads_command() -> None:
    """Delete the parts of unfinished uploads past their expiry (also run by the worker)."""
    click.echo(f"expired uploads: {run_expire_uploads()}")
