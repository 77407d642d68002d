"""``flask --app wsgi lms …`` commands."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

lms_cli = AppGroup("lms", help="Manabi administration commands.")


@lms_cli.command("load-municipalities")
def load_municipalities_command():
    """Load 東京都 and its 62 区市町村 (check digits verified)."""
    from lms.extensions import db
    from lms.municipalities.services import load_municipalities

    added, updated = load_municipalities()
    db.session.commit()
    click.echo(f"municipalities: {added} added, {updated} updated")


@lms_cli.command("demo")
def demo_command():
    """Load the municipalities and a realistic demo data set (idempotent)."""
    from lms.demo import load_demo
    from lms.extensions import db

    summary = load_demo()
    db.session.commit()
    for key, value in summary.items():
        click.echo(f"{key}: {value}")


def register_cli(app: Flask) -> None:
    app.cli.add_command(lms_cli)
