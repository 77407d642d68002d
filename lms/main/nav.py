"""The navigation, by role. Entries whose endpoint is not (yet) registered are skipped.

Each feature area adds its entries here; labels are lazily translated.
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, request
from flask_babel import lazy_gettext as _l

from lms.auth.models import LEARNER, MUNICIPAL_ADMIN, PLATFORM_ADMIN, TRAINER


@dataclass(frozen=True)
class NavItem:
    endpoint: str
    label: object
    roles: tuple[str, ...]


NAV = (
    NavItem("courses.catalogue", _l("研修を探す"), (LEARNER,)),
    NavItem("enrollment.my_page", _l("マイページ"), (LEARNER,)),
    NavItem("archives.index", _l("研修アーカイブ"), (LEARNER,)),
    NavItem("completion.history", _l("受講履歴"), (LEARNER,)),
    NavItem("courses.manage", _l("研修の管理"), (TRAINER, PLATFORM_ADMIN)),
    NavItem("archives.manage", _l("アーカイブ管理"), (TRAINER, PLATFORM_ADMIN)),
    NavItem("enrollment.admin_home", _l("研修担当"), (MUNICIPAL_ADMIN,)),
    NavItem("completion.dashboard", _l("修了状況"), (MUNICIPAL_ADMIN, PLATFORM_ADMIN)),
    NavItem("planning.index", _l("年間研修計画"), (MUNICIPAL_ADMIN, PLATFORM_ADMIN)),
    NavItem("admin.index", _l("システム管理"), (PLATFORM_ADMIN,)),
)


def nav_items(user) -> list[dict]:
    if not getattr(user, "is_authenticated", False):
        return []
    # (read once: ``user``, the app and the request are proxies, and every page asks)
    roles = user.roles
    views = current_app.view_functions
    here = request.endpoint
    return [
        {"endpoint": item.endpoint, "label": item.label, "current": here == item.endpoint}
        for item in NAV
        if item.endpoint in views and not roles.isdisjoint(item.roles)
    ]
