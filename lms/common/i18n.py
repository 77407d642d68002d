"""Language and time zone of a request. Japanese first; English on request."""

from __future__ import annotations

from flask import current_app, has_request_context, request, session
from flask_login import current_user


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # CLI, worker, services called from tests: Japanese
        return current_app.config.get("BABEL_DEFAULT_LOCALE", "ja")
    chosen = session.get("lang")
    if chosen in languages:
        return chosen
    user = current_user
    if user and getattr(user, "is_authenticated", False) and user.locale in languages:
        return user.locale
    # Japanese unless the browser prefers English over Japanese.
    return request.accept_languages.best_match(languages, default="ja") if request else "ja"


def select_timezone() -> str:
    return "Asia/Tokyo"


def cache_wtforms_translations() -> None:
    """Load WTForms' own message catalogue once per language instead of once per request.

    Flask-WTF reads and parses the catalogue from disk on every request that builds a form
    (``flask_wtf.i18n._get_translations`` keeps it on the request only); that is a
    measurable share of a form post's time. Its lookup is replaced by one that keeps each
    language's catalogue for the life of the process (the files never change while it runs).
    """
    import flask_wtf.i18n as wtf_i18n
    from babel import support
    from flask_babel import get_locale
    from wtforms.i18n import messages_path

    if getattr(wtf_i18n._get_translations, "manabi_cached", False):
        return
    catalogues: dict[str, support.Translations] = {}

    def _get_translations():
        if not has_request_context() or "babel" not in current_app.extensions:
            return None
        locale = str(get_locale())
        catalogue = catalogues.get(locale)
        if catalogue is None:
            catalogue = catalogues[locale] = support.Translations.load(messages_path(), [locale], domain="wtforms")
        return catalogue

    _get_translations.manabi_cached = True
    wtf_i18n._get_translations = _get_translations
