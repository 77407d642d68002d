"""``flask --app wsgi lms sync-tenants``: seed the tenant mappings from ENTRA_TENANTS;
``… lms sign-out-everywhere``: end every session of a user (for one found on no roster page)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from lms.auth.models import User
from lms.auth.services import sign_out_everywhere
from lms.common.errors import InvalidInput
from lms.common.ids import parse_id
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


@click.command("sign-out-everywhere")
@click.argument("who")
@with_appcontext
def sign_out_everywhere_command(who: str):
    """End every session of a user, given by id or e-mail address (a lost device, a leaver);
    audited with no actor (the command line)."""
    user_id = parse_id(who)
    if user_id is not None:
        users = [user] if (user := db.session.get(User, user_id)) is not None else []
    else:
        users = list(db.session.scalars(select(User).where(func.lower(User.email) == who.strip().lower())))
    if len(users) != 1:
        raise click.ClickException(f"{'no user' if not users else 'several users'} found for {who!r}")
    sessions = sign_out_everywhere(users[0], actor=None)
    db.session.commit()
    click.echo(f"{users[0].display_name} (user {users[0].id}): {sessions} sessions ended")
