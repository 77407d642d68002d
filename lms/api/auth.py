"""Who calls the API: a registered client application, proven by an Entra app-only token.

Every call carries ``Authorization: Bearer <access token>`` from the client-credentials flow.
The token is verified here (lms.auth.entra: the provider's keys, issuer, audience
LMS_API_AUDIENCE, expiry); the calling application (``azp``, or ``appid`` in Entra's v1
tokens) must be registered and not revoked (``ApiClient``), and the token's tenant (``tid``)
must be one mapped to the client's municipality (for the platform client: to the
prefecture). Its app roles (``roles``) decide what it may do. A browser's session cookie
counts for nothing here.

Each call is then counted against LMS_LIMIT_API under the client's own key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps

from flask import current_app, g, request
from flask_babel import gettext as _
from sqlalchemy import select

from lms.api.models import ApiClient
from lms.api.problems import ApiProblem
from lms.api.services import normalise_application_id
from lms.auth.entra import ProviderUnavailable, SignInError, validate_access_token
from lms.common.limits import configured
from lms.extensions import db, limiter
from lms.municipalities.models import Municipality
from lms.municipalities.services import municipalities_of_tenant

READ = "Manabi.Api.Read"
ROSTER_WRITE = "Manabi.Api.RosterWrite"
ROLES = (READ, ROSTER_WRITE)
# The OpenAPI security scheme's name (lms.api.v1).
SECURITY: list[dict[str, list[str]]] = [{"entra": []}]


@dataclass(frozen=True)
class Caller:
    """The authenticated client of this request."""

    client_id: int
    application_id: str
    name: str
    municipality_id: int | None  # None: the platform client (every municipality)
    tenant_id: str
    roles: frozenset[str]

    @property
    def is_platform(self) -> bool:
        return self.municipality_id is None

    @property
    def actor(self) -> ApiActor:
        return ApiActor.of(self.name, self.application_id, self.municipality_id)

    @property
    def audit_details(self) -> dict:
        return {"api_client_id": self.client_id, "application_id": self.application_id}


@dataclass(frozen=True)
class ApiActor:
    """The audit log's actor for an application: no user id, named by its label."""

    display_name: str
    municipality_id: int | None = None
    id: None = None

    @classmethod
    def of(cls, name: str, application_id: str, municipality_id: int | None) -> ApiActor:
        return cls(display_name=f"API:{name} [{application_id}]", municipality_id=municipality_id)


def _unauthorized(detail: str) -> ApiProblem:
    return ApiProblem(401, "unauthorized", _("認証が必要です"), detail,
                      headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def authenticate() -> Caller:
    """The caller of this request, or ApiProblem 401 (503 when the provider is unreachable)."""
    header = request.headers.get("Authorization", "")
    scheme, _sep, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiProblem(401, "unauthorized", _("認証が必要です"),
                         _("Authorization ヘッダーで Microsoft Entra のアクセストークン（Bearer）を送ってください。"),
                         headers={"WWW-Authenticate": "Bearer"})
    audience = list(current_app.config.get("LMS_API_AUDIENCE") or ())
    if not audience:
        raise _unauthorized(_("この環境では API が有効になっていません。"))
    try:
        claims = validate_access_token(token.strip(), audience=audience)
    except ProviderUnavailable as exc:
        raise ApiProblem(503, "unavailable", _("認証基盤に接続できません"),
                         _("しばらく待ってから再送してください。"), headers={"Retry-After": "30"}) from exc
    except SignInError as exc:
        current_app.logger.info("API token refused: %s", exc)
        raise _unauthorized(_("アクセストークンを検証できませんでした（署名・発行者・対象・有効期限）。")) from exc
    application_id = normalise_application_id(str(claims.get("azp") or claims.get("appid") or ""))
    tenant_id = str(claims.get("tid") or "").strip().lower()
    client = db.session.scalar(select(ApiClient).where(ApiClient.application_id == application_id)) if application_id else None
    if client is None or not client.is_active:
        raise _unauthorized(_("このアプリケーションは API の利用者として登録されていないか、登録が取り消されています。"))
    if not _tenant_allowed(client, tenant_id):
        raise _unauthorized(_("トークンのテナントは、このアプリケーションの団体に対応付けられていません。"))
    roles = claims.get("roles") or []
    if isinstance(roles, str):
        roles = [roles]
    return Caller(client_id=client.id, application_id=client.application_id, name=client.name,
                  municipality_id=client.municipality_id, tenant_id=tenant_id,
                  roles=frozenset(str(r) for r in roles))


def _tenant_allowed(client: ApiClient, tenant_id: str) -> bool:
    if not tenant_id:
        return False
    mapped = municipalities_of_tenant(tenant_id, current_app.config.get("ENTRA_TENANTS"))
    if client.municipality_id is not None:
        return client.municipality_id in mapped
    prefecture = db.session.scalars(select(Municipality.id).where(Municipality.kind == "都道府県"))
    return bool(mapped.intersection(prefecture))


def current_caller() -> Caller:
    return g.api_caller


def _client_key() -> str:
    caller = g.get("api_caller")
    return f"api:{caller.client_id}" if caller is not None else f"addr:{request.remote_addr or 'unknown'}"


_limited = limiter.limit(configured("LMS_LIMIT_API"), key_func=_client_key)


# (one count per address for every endpoint: a limit of its own per endpoint would multiply it)
@limiter.shared_limit(configured("LMS_LIMIT_API"), scope="api-unauthenticated", key_func=_client_key)
def _refuse_unauthenticated(problem: ApiProblem) -> None:
    """A 401, counted against the caller's address (no client is known): checking tokens costs
    work, and a caller without a valid one gets no more of it than a client gets calls."""
    raise problem


def requires(role: str) -> Callable:
    """The access check of an API view: a valid token of a registered client (401), holding
    the app role ``role`` (403); then the client's rate limit (429)."""

    def decorator(view):
        limited_view = _limited(view)

        @wraps(view)
        def wrapped(*args, **kwargs):
            try:
                caller = authenticate()
            except ApiProblem as problem:
                if problem.status == 401:
                    _refuse_unauthenticated(problem)
                raise
            g.api_caller = caller
            if role not in caller.roles:
                raise ApiProblem(403, "forbidden", _("権限がありません"),
                                 _("アクセストークンにアプリロール %(role)s がありません。", role=role))
            return limited_view(*args, **kwargs)

        wrapped.required_role = role  # type: ignore[attr-defined]
        return wrapped

    return decorator
