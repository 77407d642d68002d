"""The staff roster kept up to date from each municipality's tenant through Microsoft Graph.

The Teams area owns everything Graph: it fetches a tenant's ``/users`` completely (a failed
page raises before anything is changed) and hands the list to the roster
(``lms.roster.services.apply_directory_users``), which matches, adds and records transfers.
Only tenants where Manabi has admin consent are read, each with an app-only token issued
by that tenant.
"""

from __future__ import annotations

from datetime import date

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select

from lms.auth.entra import acquire_app_token
from lms.common.errors import InvalidInput
from lms.extensions import db
from lms.municipalities.models import TenantMapping
from lms.roster.services import SyncReport, apply_directory_users
from lms.teams.graph import GraphClient, client_from_app

USER_FIELDS = "id,userPrincipalName,displayName,department,jobTitle,employeeId,mail,accountEnabled,userType"


def consented_tenants(municipality_id: int) -> list[str]:
    """The municipality's Entra tenants where Manabi has admin consent (roster sync allowed)."""
    rows = db.session.scalars(
        select(TenantMapping.tenant_id)
        .where(TenantMapping.municipality_id == municipality_id, TenantMapping.consented_at.is_not(None))
        .distinct().order_by(TenantMapping.tenant_id)
    ).all()
    return list(rows)


def client_for_tenant(tenant_id: str) -> GraphClient:
    """A Graph client whose app-only token is issued by ``tenant_id`` (the municipality's own)."""
    client = client_from_app()
    if current_app.extensions.get("graph_token_provider") is None:
        client.token_provider = lambda: acquire_app_token(tenant_id=tenant_id)
    return client


def sync_roster_from_graph(municipality_id: int, client, actor, *, effective_on: date | None = None) -> SyncReport:
    """Bring the roster up to date from the tenant's ``/users``.

    ``client.get_all(path, params)`` must return every page or raise: a failed page aborts
    the sync before anything is changed. The caller commits.
    """
    users = client.get_all("/users", params={"$select": USER_FIELDS, "$top": "999"})
    if not isinstance(users, list):
        raise InvalidInput(_("Microsoft Graph から職員の一覧を取得できませんでした。名簿は変更していません。"))
    return apply_directory_users(municipality_id, users, actor, effective_on=effective_on)


def sync_roster_from_tenants(municipality_id: int, actor) -> list[SyncReport]:
    """Sync from every consented tenant of the municipality, committing after each: each
    tenant's sync is complete or changes nothing. Raises on the first tenant that fails."""
    reports = []
    for tenant in consented_tenants(municipality_id):
        client = client_for_tenant(tenant)
        try:
            reports.append(sync_roster_from_graph(municipality_id, client, actor))
            db.session.commit()
        finally:
            client.http.close()
    return reports
