"""Template globals and filters: Tokyo time, safe Markdown, navigation by role."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from flask import Flask, current_app, has_request_context, request, url_for
from flask_babel import get_locale, ngettext
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup

from lms.common.forms import error_summary
from lms.common.i18n import brand_name, page_gettext, page_language, portal_name
from lms.common.markdown import render_markdown, split_section_heading
from lms.common.once import once_input
from lms.common.static_files import file_version
from lms.common.timeutil import fiscal_year_label, format_wareki, to_tokyo

_WEEKDAYS_JA = "月火水木金土日"
_WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _is_ja(language: str | None = None) -> bool:
    """Whether the text is Japanese: ``language`` when the caller knows it (a template's
    render, see ``_in_render_language``), else the language in force."""
    return (language or page_language()) == "ja"


def format_datetime_jst(value: datetime | None, with_weekday: bool = True, *, language: str | None = None) -> str:
    """2026年12月3日(木) 14:00 in Japanese, 2026-12-03 (Thu) 14:00 in English."""
    local = to_tokyo(value)
    if local is None:
        return ""
    if _is_ja(language):
        wd = f"({_WEEKDAYS_JA[local.weekday()]})" if with_weekday else ""
        return f"{local.year}年{local.month}月{local.day}日{wd} {local:%H:%M}"
    wd = f" ({_WEEKDAYS_EN[local.weekday()]})" if with_weekday else ""
    return f"{local:%Y-%m-%d}{wd} {local:%H:%M}"


def format_date_jst(value: date | datetime | None, *, language: str | None = None) -> str:
    if isinstance(value, datetime):
        local = to_tokyo(value)
        value = local.date() if local else None
    if value is None:
        return ""
    if _is_ja(language):
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value:%Y-%m-%d}"


def format_time_jst(value: datetime | None) -> str:
    return f"{to_tokyo(value):%H:%M}" if value else ""


def format_fiscal_year(fiscal_year: int | None) -> str:
    """2026年度 (令和8年度 with LMS_WAREKI); FY2026 in English."""
    if fiscal_year is None:
        return ""
    if not _is_ja():
        return f"FY{fiscal_year}"
    return fiscal_year_label(int(fiscal_year), wareki=bool(current_app.config.get("LMS_WAREKI")))


def format_date_long(value: date | datetime | None) -> str:
    """A date in prose: 2026年12月3日 (令和8年12月3日 with LMS_WAREKI); 3 Dec 2026 in English."""
    if value is None:
        return ""
    day = to_tokyo(value).date() if isinstance(value, datetime) else value
    if not _is_ja():
        return f"{day.day} {day:%b} {day.year}"
    if current_app.config.get("LMS_WAREKI"):
        return format_wareki(day)
    return f"{day.year}年{day.month}月{day.day}日"


def format_yen(amount: int | None) -> str:
    """12,345円; ¥12,345 in English. Amounts are whole yen."""
    if amount is None:
        return ""
    return f"{int(amount):,}円" if _is_ja() else f"¥{int(amount):,}"
def parenthesize(value: Any) -> Markup:
    """「（…）」 in Japanese, " (…)" in English: brackets around a name or a date in a sentence."""
    if _is_ja():
        return Markup("（{}）").format(value)
    return Markup(" ({})").format(value)


def dash(spaced: bool = False) -> str:
    """「〜」 in Japanese (「 〜 」 ``spaced``), " – " in English: between the ends of a range
    of dates or times."""
    if _is_ja():
        return " 〜 " if spaced else "〜"
    return " – "


def format_period_jst(starts_at: datetime | None, ends_at: datetime | None) -> str:
    """When something is held: 2026年12月3日(木) 14:00〜15:30 in Japanese, 2026-12-03 (Thu)
    14:00 – 15:30 in English; the end's date too when it ends on another day."""
    start, end = to_tokyo(starts_at), to_tokyo(ends_at)
    if start is None or end is None:
        return format_datetime_jst(starts_at)
    until = format_time_jst(ends_at) if start.date() == end.date() else format_datetime_jst(ends_at)
    return f"{format_datetime_jst(starts_at)}{dash()}{until}"


def colon() -> str:
    """「：」 in Japanese, ": " in English: between a label and its value."""
    return "：" if _is_ja() else ": "


def quoted(value: Any) -> Markup:
    """「…」 in Japanese, “…” in English: a title or someone's words inside a sentence."""
    if _is_ja():
        return Markup("「{}」").format(value)
    return Markup("“{}”").format(value)


_JAPANESE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]")


def in_japanese(value: Any, *, language: str | None = None) -> Any:
    """Content (a title, a question, a caption) on a page in another language, marked as
    Japanese where it is written in it (WCAG 3.1.2: a screen reader then reads it with a
    Japanese voice): ``<span lang="ja">…</span>``; on a Japanese page, the value as it is."""
    if value is None or _is_ja(language) or not _JAPANESE.search(str(value)):
        return value
    return Markup('<span lang="ja">{}</span>').format(value)


def ja_attr(value: Any, *, language: str | None = None) -> Markup:
    """`` lang="ja"`` for an element holding ``value`` (a block: a description) where
    ``in_japanese`` would mark it; else nothing."""
    return Markup(' lang="ja"') if value and not _is_ja(language) and _JAPANESE.search(str(value)) else Markup("")


def dot() -> str:
    """「 ・ 」 in Japanese, " · " in English: between the parts of a line of facts."""
    return " ・ " if _is_ja() else " · "


def people(n: int) -> str:
    """A count of people: 「3 人」; in English "1 person", "3 people" (Japanese has no plural)."""
    return ngettext("%(num)d 人", "%(num)d 人", n)


def answers(n: int) -> str:
    """A count of answers, as a chart's value: 「3件」; in English "1 answer", "3 answers"."""
    return ngettext("%(num)d件", "%(num)d件", n)


def list_separator() -> str:
    """「、」 in Japanese, ", " in English: between the items of a list in a sentence."""
    return "、" if _is_ja() else ", "


@lru_cache(maxsize=4096)
def _built_url(url_map: Any, script_root: str, endpoint: str, version: str | None,
               values: tuple[tuple[str, Any], ...]) -> str:
    """One URL, built once per application (its URL map: several apps may share a process),
    application root, arguments and (for a static file) version."""
    return url_for(endpoint, **dict(values))


def page_url_for(endpoint: str, **values: Any) -> str:
    """The templates' ``url_for``: Flask's, remembered.

    Building a URL through Flask and werkzeug costs about 35 µs, and a page builds twenty the
    same on every request (the style sheets, the menu, the footer, the pager). A relative URL
    depends only on the application root (``SCRIPT_NAME``, which ProxyFix may set from the
    proxy), the endpoint and its arguments, and for a static file on its version (the one
    ``url_defaults`` hook, lms.common.static_files, adds ``?v=``): those are the key. An
    external URL, one with ``_anchor``/``_method``/``_scheme``, a blueprint-relative endpoint
    (``.index``), unhashable arguments, or one built outside a request go to Flask every time."""
    if endpoint.startswith(".") or not has_request_context() or any(name.startswith("_") for name in values):
        return url_for(endpoint, **values)
    key = tuple(sorted(values.items()))
    try:
        hash(key)
    except TypeError:
        return url_for(endpoint, **values)
    version = None
    if endpoint == "static" and current_app.static_folder:
        version = file_version(current_app.static_folder, str(values.get("filename", "")))
    return _built_url(current_app.url_map, request.script_root, endpoint, version, key)


# The render's language, put in every template's context once per render: the filters that a
# page applies to each of its values (dates, titles) read it there instead of asking Flask-Babel
# (three context lookups) again for every value. A template rendered without Flask's context
# processors (or a macro imported without context) has none, and they ask.
RENDER_LANGUAGE = "render_language"


def _in_render_language(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` (which takes ``language=``) as a template filter or global in the render's language."""

    @pass_context
    def in_template(context: Any, *args: Any, **kwargs: Any) -> Any:
        return function(*args, language=context.get(RENDER_LANGUAGE), **kwargs)

    return in_template


def init_templating(app: Flask, nav_items: Callable[[Any], list[dict]]) -> None:
    """Filters and globals of every template. ``nav_items(user)``: the menu entries the user sees."""
    app.jinja_env.globals["url_for"] = page_url_for
    app.jinja_env.filters["jst"] = _in_render_language(format_datetime_jst)
    app.jinja_env.filters["jst_date"] = _in_render_language(format_date_jst)
    app.jinja_env.filters["jst_time"] = format_time_jst
    app.jinja_env.filters["jst_period"] = format_period_jst  # starts_at|jst_period(ends_at)
    app.jinja_env.filters["fiscal_year"] = format_fiscal_year
    app.jinja_env.filters["date_long"] = format_date_long
    app.jinja_env.filters["yen"] = format_yen
    app.jinja_env.filters["paren"] = parenthesize
    app.jinja_env.filters["quoted"] = quoted
    app.jinja_env.filters["ja"] = _in_render_language(in_japanese)
    app.jinja_env.globals["ja_attr"] = _in_render_language(ja_attr)
    app.jinja_env.filters["error_summary"] = error_summary
    app.jinja_env.globals["colon"] = colon
    app.jinja_env.globals["list_separator"] = list_separator
    app.jinja_env.globals["dot"] = dot
    app.jinja_env.globals["people"] = people
    app.jinja_env.globals["answers"] = answers
    app.jinja_env.globals["dash"] = dash
    app.jinja_env.globals["once_input"] = once_input
    app.jinja_env.filters["markdown"] = lambda text: Markup(render_markdown(text or ""))  # noqa: S704 (sanitised by nh3)
    # A description that starts with its own 「内容」/「概要」 heading: (that heading, the rest).
    app.jinja_env.filters["section_heading"] = split_section_heading

    @app.context_processor
    def _globals():
        return {
            "nav_items": nav_items(current_user) if current_user else [],
            "current_locale": str(get_locale() or "ja"),
            RENDER_LANGUAGE: page_language(),
            "portal_name": portal_name(),
            "brand_name": brand_name(),
            # (``_()`` resolves "gettext" in the template's context, so this one serves both)
            "gettext": page_gettext(),
            "view_functions": current_app.view_functions,
            "demo_mode": bool(current_app.config.get("LMS_DEMO_LOGIN"))
            and current_app.config.get("LMS_ENV") != "production",
        }
