"""``flask --app wsgi lms sync-tenants``: seed the tenant mappings from ENTRA_TENANTS."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext

from lms.common.errors import InvalidInput
from lms.extensions import db
from lms.municipalities.services import sync_env_tenants


@click.command("sync-tenants")
@with_appcontext
def sync_tenants_command():
    """Add or update the tenant ↔ municipality mappings listed in ENTRA_TENANTS (source "env")."""
    setting = current_app.config.get("ENTRA_TENANTS") or ""
    if not setting.strip():
        click.echo("ENTRA_TENANTS is empty: nothing to do")
        return
    try:
        added, updated = sync_env_tenants(setting)
    except InvalidInput as exc:
        db.session.rollback()
        raise click.ClickException(exc.message) from exc
    db.session.commit()
    click.echo(f"tenant mappings: {added} added, {updated} updated")
