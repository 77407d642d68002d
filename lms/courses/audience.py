"""Who a course is for, beyond its municipalities: 職層 and 職名 values, years of service, and
the fiscal year's new hires (受講対象の条件).

One definition, two forms: ``refusal`` answers for one staff member in Python, with the reason
the enrollment rules show; ``clause`` is the same rule as SQL over ``course``, for the
catalogue's 「自分が対象の研修」 filter, with the staff member's values bound as parameters
(``params``). tests/courses/test_audience.py checks the two agree on every combination.

The rule, as the course page states it:

* 職層 (job grade, e.g. 係長級) — if the course names any, the staff member's must be one of them.
* 職名 (job title, e.g. 主事) — likewise.
* Years of service (経験年数) — whole years from the 採用日 to the first day of the current
  fiscal year (April 1): hired 2024-04-01 → 2 in fiscal 2026. The range is inclusive; either
  end may be open. Without a 採用日 on the roster the range cannot be met.
* New hires only (新規採用職員) — 採用日 within the current fiscal year.

Values are compared after NFKC normalisation and trimming (全角 and 半角 agree).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

from flask_babel import gettext as _
from sqlalchemy import ColumnElement, Integer, and_, bindparam, literal, or_

from lms.common.i18n import join_list
from lms.common.timeutil import fiscal_year_of, today_tokyo
from lms.courses.models import Course

MAX_VALUES = 30
MAX_VALUE_LENGTH = 50
_SPLIT = re.compile(r"[\n、,，/]")


def normalise_value(value: str | None) -> str:
    return " ".join(unicodedata.normalize("NFKC", value or "").split())


def parse_values(text: str | None) -> list[str]:
    """A typed list (one per line, or separated by 、 or commas) as stored: normalised, in
    order, without blanks or repeats."""
    seen: list[str] = []
    for part in _SPLIT.split(text or ""):
        value = normalise_value(part)
        if value and value not in seen:
            seen.append(value)
    return seen


def stored(values: list[str]) -> str:
    return "\n".join(values)


@dataclass(frozen=True)
class Profile:
    """What the rule reads of a staff member."""

    job_grade: str
    job_title: str
    years_of_service: int | None  # None: no 採用日 on the roster
    new_hire: bool


def years_between(hired_on: date, fiscal_year: int) -> int:
    """Whole years from ``hired_on`` to April 1 of ``fiscal_year`` (0 for a new hire)."""
    start = date(fiscal_year, 4, 1)
    if hired_on >= start:
        return 0
    years = start.year - hired_on.year - ((start.month, start.day) < (hired_on.month, hired_on.day))
    return max(years, 0)


def profile_of(member, today: date | None = None) -> Profile:
    """``member``: anything with ``job_grade``, ``job_title`` and ``hired_on`` (a roster entry)."""
    year = fiscal_year_of(today or today_tokyo())
    hired_on = member.hired_on
    return Profile(
        job_grade=normalise_value(member.job_grade),
        job_title=normalise_value(member.job_title),
        years_of_service=years_between(hired_on, year) if hired_on else None,
        new_hire=bool(hired_on) and fiscal_year_of(hired_on) == year,
    )


def has_rules(course: Course) -> bool:
    return bool(course.audience_grades or course.audience_titles or course.min_years_of_service is not None
                or course.max_years_of_service is not None or course.new_hires_only)


def describe(course: Course) -> list[str]:
    """The conditions in words, for the course page (empty: anyone of its municipalities)."""
    parts = []
    if course.audience_grades:
        parts.append(_("職層：%(values)s", values=join_list(course.audience_grades.split("\n"))))
    if course.audience_titles:
        parts.append(_("職名：%(values)s", values=join_list(course.audience_titles.split("\n"))))
    low, high = course.min_years_of_service, course.max_years_of_service
    if low is not None and high is not None:
        parts.append(_("経験年数 %(low)d〜%(high)d 年", low=low, high=high))
    elif low is not None:
        parts.append(_("経験年数 %(low)d 年以上", low=low))
    elif high is not None:
        parts.append(_("経験年数 %(high)d 年以下", high=high))
    if course.new_hires_only:
        parts.append(_("今年度の新規採用職員"))
    return parts


def refusal(course: Course, profile: Profile) -> str | None:
    """Why ``profile`` is not in the course's audience, or None if it is."""
    grades = course.audience_grades.split("\n") if course.audience_grades else []
    if grades and profile.job_grade not in grades:
        return _("この研修は %(values)s の職員が対象です（あなたの職層：%(mine)s）。",
                 values=join_list(grades), mine=profile.job_grade or _("名簿に未登録"))
    titles = course.audience_titles.split("\n") if course.audience_titles else []
    if titles and profile.job_title not in titles:
        return _("この研修は職名が %(values)s の職員が対象です（あなたの職名：%(mine)s）。",
                 values=join_list(titles), mine=profile.job_title or _("名簿に未登録"))
    low, high = course.min_years_of_service, course.max_years_of_service
    if low is not None or high is not None:
        years = profile.years_of_service
        if years is None:
            return _("この研修は経験年数で対象を決めていますが、名簿にあなたの採用日がありません。研修担当にお問い合わせください。")
        if (low is not None and years < low) or (high is not None and years > high):
            return _("この研修の対象は%(range)sの職員です（あなたの経験年数：%(years)d 年）。",
                     range=_range_words(low, high), years=years)
    if course.new_hires_only and not profile.new_hire:
        return _("この研修は今年度の新規採用職員が対象です。")
    return None


def _range_words(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return _("経験年数 %(low)d〜%(high)d 年", low=low, high=high)
    if low is not None:
        return _("経験年数 %(low)d 年以上", low=low)
    return _("経験年数 %(high)d 年以下", high=high)


def _listed(column, name: str) -> ColumnElement[bool]:
    """The column's newline-separated list holds the bound value (LIKE with the value's
    wildcards made literal; see ``params``)."""
    return or_(column == "", (literal("\n") + column + literal("\n")).like(bindparam(name), escape="/"))


def clause() -> ColumnElement[bool]:
    """``refusal(course, profile) is None`` as SQL over ``course``; bind ``params(profile)``."""
    years = bindparam("aud_years", type_=Integer)
    return and_(
        _listed(Course.audience_grades, "aud_grade"),
        _listed(Course.audience_titles, "aud_title"),
        or_(Course.min_years_of_service.is_(None), and_(years >= 0, years >= Course.min_years_of_service)),
        or_(Course.max_years_of_service.is_(None), and_(years >= 0, years <= Course.max_years_of_service)),
        or_(Course.new_hires_only.is_(False), bindparam("aud_new_hire", type_=Integer) == 1),
    )


def _pattern(value: str) -> str:
    if not value:
        return "\n\n"  # never inside a stored list (no blank lines): an empty value matches no list
    escaped = value.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%\n{escaped}\n%"


def params(profile: Profile) -> dict:
    return {
        "aud_grade": _pattern(profile.job_grade),
        "aud_title": _pattern(profile.job_title),
        "aud_years": -1 if profile.years_of_service is None else profile.years_of_service,
        "aud_new_hire": 1 if profile.new_hire else 0,
    }
