"""Language and time zone of a request. Japanese first; English on request.

(WTForms' own messages follow the same language: ``lms.common.forms.Form``.)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from babel.lists import format_list
from flask import current_app, has_request_context, request, session
from flask_babel import get_locale, get_translations
from flask_babel import gettext as _
from flask_login import current_user
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

API_PREFIX = "/api/"
LANG_KEY = "lang"  # the language this browser chose (kept across sign-in and sign-out)
_CHOSEN_SIGNED_OUT = "lang_chosen"  # ... and chosen by whoever signs in next: theirs to keep


def choose_language(lang: str) -> None:
    """This browser speaks ``lang`` from now on (a language of the configuration); a signed-in
    user keeps it (mails, Teams notices and the next sign-in speak it too), and so does the
    person who signs in next when nobody is signed in (``keep_chosen_language``). The caller
    commits."""
    session[LANG_KEY] = lang
    user = current_user
    if user.is_authenticated:
        if user.locale != lang:
            user.locale = lang
    else:
        session[_CHOSEN_SIGNED_OUT] = True


def keep_chosen_language(user: Any) -> None:
    """At sign-in: the language chosen on the sign-in pages becomes ``user``'s own. A language
    only carried over from the previous user's sign-out is not (a shared computer)."""
    lang = session.get(LANG_KEY)
    if session.pop(_CHOSEN_SIGNED_OUT, False) and lang in current_app.config["LANGUAGES"] and user.locale != lang:
        user.locale = lang


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():  # CLI, worker, services called from tests: Japanese
        return str(current_app.config.get("BABEL_DEFAULT_LOCALE", "ja"))
    if request.path.startswith(API_PREFIX):
        # The API takes no cookies and has no users: its language is the Accept-Language header's.
        return request.accept_languages.best_match(languages, default="ja")
    chosen = str(session.get(LANG_KEY) or "")
    if chosen in languages:
        return chosen
    user = current_user
    if user and getattr(user, "is_authenticated", False) and user.locale in languages:
        return user.locale
    # Japanese unless the browser prefers English over Japanese.
    return request.accept_languages.best_match(languages, default="ja") if request else "ja"


def join_list(items: Iterable[str]) -> str:
    """Names in a sentence, as the language writes a list: 「A、B、C」 in Japanese, "A, B, C" in
    English (CLDR's narrow standard list)."""
    # (Babel reads the style from CLDR; its annotation lists only some of CLDR's styles)
    return format_list(list(items), style="standard-narrow", locale=get_locale() or "ja")  # type: ignore[arg-type]


def page_gettext() -> Callable[..., str]:
    """The templates' ``_()`` and ``gettext()`` for one render, bound to the catalogue of the
    language in force when the render starts (the page's, or the one a mail is composed in under
    ``force_locale``).

    Flask-Babel's own template callable looks the catalogue up again for every string (the
    request's Babel context, its domain, its locale and the cache key, each through Flask's
    context-local proxies): about two dozen microseconds a string, a sixth of the catalogue
    page's CPU. This one does that once per render (a context processor puts it in every
    template's context, where it comes before the environment's global) and keeps Jinja's
    "newstyle" gettext behaviour: autoescaped output is Markup, and the text is always a
    %-format string (``%(n)d``, and ``%%`` for a literal percent sign)."""
    translate = get_translations().gettext

    @pass_context
    def gettext(context: Context, string: str, **variables: Any) -> str:
        text = translate(string)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704  (a message of our own catalogue, as Jinja's newstyle gettext does)
        return text % variables

    return gettext


def page_language() -> str:
    """"ja" or "en": the language in force (the page's, or a mail's under force_locale).

    The Locale's language, not ``str(locale)``: the same for Manabi's two languages (no
    territory), without babel building the identifier again for each date on a page."""
    locale = get_locale()
    return locale.language if locale is not None else "ja"


def select_timezone() -> str:
    return "Asia/Tokyo"


def localized_name(name: str, name_en: str | None) -> str:
    """A stored name in the page's language: its English form in English mode when one is
    stored (categories keep both), else the Japanese."""
    if name_en and page_language() == "en":
        return name_en
    return name


def brand_name() -> str:
    """The portal's brand, spelled one way in every language (``LMS_BRAND_NAME``)."""
    return str(current_app.config.get("LMS_BRAND_NAME") or "Manabi")


def portal_name() -> str:
    """「Manabi 研修ポータル」 / "Manabi Training Portal": page titles, mails, the header."""
    return _("%(brand)s 研修ポータル", brand=brand_name())
