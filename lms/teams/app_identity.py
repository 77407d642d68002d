"""Who the Teams app is: its id, the application ID URI of its single sign-on, its personal
tabs. One source for the manifest (``app_package``) and the tab's pages (``tab``)."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from flask import Flask, current_app


def base_url(app: Flask | None = None) -> str:
    return str((app or current_app).config["LMS_BASE_URL"]).rstrip("/")


def host(app: Flask | None = None) -> str:
    """The host (and port, if any) the app's pages are served from."""
    return urlsplit(base_url(app)).netloc


def app_id(app: Flask | None = None) -> str:
    """The manifest's ``id``: LMS_TEAMS_APP_ID, or a GUID derived from the base URL (the same
    for every download of one deployment, so an upload replaces the earlier version)."""
    config = (app or current_app).config
    configured = str(config.get("LMS_TEAMS_APP_ID") or "").strip().lower()
    return configured or str(uuid.uuid5(uuid.NAMESPACE_URL, base_url(app) + "/teams-app"))


def sso_resource(app: Flask | None = None) -> str:
    """The application ID URI of the tab's single sign-on (``webApplicationInfo.resource``):
    LMS_TEAMS_SSO_RESOURCE, or ``api://<host>/<ENTRA_CLIENT_ID>`` as Teams requires."""
    config = (app or current_app).config
    configured = str(config.get("LMS_TEAMS_SSO_RESOURCE") or "").strip()
    return configured or f"api://{host(app)}/{config.get('ENTRA_CLIENT_ID') or ''}"


def sso_audiences(app: Flask | None = None) -> list[str]:
    """What a tab token's ``aud`` may be: the application ID URI (v1 tokens) or the client id
    (v2 tokens)."""
    config = (app or current_app).config
    return [a for a in (sso_resource(app), str(config.get("ENTRA_CLIENT_ID") or "")) if a]


@dataclass(frozen=True)
class Tab:
    """A personal tab: its ``entityId`` (also /teams/tab?tab=), the page it opens (a Manabi
    endpoint; the labels are the navigation's), its names for the manifest."""

    entity_id: str
    endpoint: str
    name_ja: str
    name_en: str


# The personal tabs, in the order Teams shows them.
TABS = (
    Tab("mypage", "enrollment.my_page", "マイページ", "My page"),
    Tab("catalogue", "courses.catalogue", "研修を探す", "Find courses"),
    Tab("archives", "archives.index", "研修アーカイブ", "Archives"),
    Tab("history", "completion.history", "受講履歴", "My record"),
)


def tab(entity_id: str) -> Tab:
    """The tab of ``entity_id``; an unknown one is マイページ."""
    return next((t for t in TABS if t.entity_id == entity_id), TABS[0])


# Pages a notice's deep link opens in the tab (its ``subEntityId``, the SDK's
# ``page.subPageId``) besides the tabs' own: the training office's approvals and the 所属長's.
SUB_PAGES = {"approvals": "enrollment.admin_home", "supervisor-approvals": "enrollment.supervisor_approvals"}


def deep_link(entity_id: str, web_url: str, *, sub_page: str = "", label: str = "", app: Flask | None = None) -> str:
    """A Teams deep link into the personal tab ``entity_id`` (``sub_page``: a key of SUB_PAGES),
    with ``web_url`` where Teams cannot open the tab."""
    params = {"webUrl": web_url}
    if label:
        params["label"] = label
    if sub_page:
        params["context"] = json.dumps({"subEntityId": sub_page}, separators=(",", ":"))
    return f"https://teams.microsoft.com/l/entity/{app_id(app)}/{quote(tab(entity_id).entity_id)}?" + urlencode(
        params, quote_via=quote)
