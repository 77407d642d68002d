"""Language and time zone of a request. Japanese first; English on request.

(WTForms' own messages follow the same language: ``lms.common.forms.Form``.)
"""

from __future__ import annotations

from flask import current_app, has_request_context, request, session
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

API_PREFIX = "/api/"


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # CLI, worker, services called from tests: Japanese
        return str(current_app.config.get("BABEL_DEFAULT_LOCALE", "ja"))
    if request.path.startswith(API_PREFIX):
        # The API takes no cookies and has no users: its language is the Accept-Language header's.
        return request.accept_languages.best_match(languages, default="ja")
    chosen = str(session.get("lang") or "")
    if chosen in languages:
        return chosen
    user = current_user
    if user and getattr(user, "is_authenticated", False) and user.locale in languages:
        return user.locale
    # Japanese unless the browser prefers English over Japanese.
    return request.accept_languages.best_match(languages, default="ja") if request else "ja"


def select_timezone() -> str:
    return "Asia/Tokyo"


def localized_name(name: str, name_en: str | None) -> str:
    """A stored name in the page's language: its English form in English mode when one is
    stored (categories keep both), else the Japanese."""
    if name_en and str(get_locale() or "ja") == "en":
        return name_en
    return name


def brand_name() -> str:
    """The portal's brand, spelled one way in every language (``LMS_BRAND_NAME``)."""
    return str(current_app.config.get("LMS_BRAND_NAME") or "Manabi")


def portal_name() -> str:
    """「Manabi 研修ポータル」 / "Manabi Training Portal": page titles, mails, the header."""
    return _("%(brand)s 研修ポータル", brand=brand_name())
