"""Registering and revoking the API's client applications (audited)."""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy import select

from lms.api.models import ApiClient
from lms.audit.services import record_action
from lms.common.database import lock_fresh
from lms.common.errors import Conflict, NotFound
from lms.common.timeutil import utcnow
from lms.extensions import db
from lms.municipalities.models import Municipality


def list_clients() -> list[ApiClient]:
    return list(db.session.scalars(select(ApiClient).order_by(ApiClient.revoked_at.is_not(None), ApiClient.name,
                                                              ApiClient.id)))


def get_client(client_id: int) -> ApiClient | None:
    return db.session.get(ApiClient, client_id)


def normalise_application_id(value: str | None) -> str:
    """An Entra application (client) id as stored and looked up: a GUID, lower case, without the
    spaces a copy and paste brings (the registration form, the token's azp/appid)."""
    return (value or "").strip().lower()


def register_client(application_id: str, name: str, municipality_id: int | None, actor) -> ApiClient:
    """Allow the Entra application ``application_id`` to call the API for ``municipality_id``
    (None: the platform client, every municipality). The caller commits."""
    application_id = normalise_application_id(application_id)
    if db.session.scalar(select(ApiClient.id).where(ApiClient.application_id == application_id)) is not None:
        raise Conflict(_("このアプリケーション ID はすでに登録されています（取り消したものは登録し直せません）。"))
    if municipality_id is not None and db.session.get(Municipality, municipality_id) is None:
        raise NotFound(_("団体が見つかりません。"))
    client = ApiClient(application_id=application_id, name=name.strip(), municipality_id=municipality_id,
                       created_by_id=getattr(actor, "id", None))
    db.session.add(client)
    db.session.flush()
    record_action(actor, "api_client.register", "api_client", client.id, municipality_id,
                  application_id=application_id, name=client.name)
    return client


def revoke_client(client_id: int, actor) -> ApiClient:
    """From now on the application's tokens are refused (401). The caller commits."""
    client = db.session.get(ApiClient, client_id)
    if client is None:
        raise NotFound(_("API クライアントが見つかりません。"))
    lock_fresh(client)  # revoked twice at once: the second is told it is revoked already
    if client.revoked_at is not None:
        raise Conflict(_("この API クライアントはすでに取り消されています。"))
    client.revoked_at = utcnow()
    client.revoked_by_id = getattr(actor, "id", None)
    record_action(actor, "api_client.revoke", "api_client", client.id, client.municipality_id,
                  application_id=client.application_id, name=client.name)
    return client
