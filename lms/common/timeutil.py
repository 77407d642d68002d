"""Time: stored in UTC (timezone-aware), shown in Asia/Tokyo; 年度 runs April to March."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import overload
from zoneinfo import ZoneInfo

# The years a date of Manabi can fall in (a hire date, a session, a deadline): beyond them a
# date is a typing mistake, and near year 1 or 9999 it cannot even be moved between Tokyo
# time and UTC (OverflowError).
FIRST_YEAR, LAST_YEAR = 1900, 2199


def plausible_year(year: int) -> bool:
    return FIRST_YEAR <= year <= LAST_YEAR

TOKYO = ZoneInfo("Asia/Tokyo")


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
@overload
def as_utc(value: datetime | None) -> datetime | None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """Normalise a datetime to aware UTC; naive values are taken as UTC (SQLite returns them)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


@overload
def to_tokyo(value: datetime) -> datetime: ...
@overload
def to_tokyo(value: None) -> None: ...
@overload
def to_tokyo(value: datetime | None) -> datetime | None: ...
def to_tokyo(value: datetime | None) -> datetime | None:
    value = as_utc(value)
    return value.astimezone(TOKYO) if value else None


def tokyo_to_utc(value: datetime) -> datetime:
    """A wall-clock time entered in Tokyo (naive) to aware UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=TOKYO)
    return value.astimezone(UTC)


def today_tokyo() -> date:
    """Today's date in Tokyo (the application's calendar)."""
    return utcnow().astimezone(TOKYO).date()


def fiscal_year_of(value: date | datetime) -> int:
    """年度: April 2026 – March 2027 is fiscal year 2026. Datetimes are judged in Tokyo."""
    if isinstance(value, datetime):
        value = to_tokyo(value).date()
    return value.year if value.month >= 4 else value.year - 1


def fiscal_year_bounds(fiscal_year: int) -> tuple[datetime, datetime]:
    """[start, end) of a fiscal year as aware UTC datetimes."""
    start = datetime(fiscal_year, 4, 1, tzinfo=TOKYO).astimezone(UTC)
    end = datetime(fiscal_year + 1, 4, 1, tzinfo=TOKYO).astimezone(UTC)
    return start, end


# 和暦: (first day, name) of each era, newest first.
ERAS: tuple[tuple[date, str], ...] = (
    (date(2019, 5, 1), "令和"),
    (date(1989, 1, 8), "平成"),
    (date(1926, 12, 25), "昭和"),
)


def wareki_year(value: date) -> tuple[str, int]:
    """The era and its year of a date: 2019-04-30 → ("平成", 31), 2019-05-01 → ("令和", 1)."""
    for start, name in ERAS:
        if value >= start:
            return name, value.year - start.year + 1
    raise ValueError(f"{value} is before the eras Manabi names")


def _era_year_text(name: str, year: int) -> str:
    return f"{name}{'元' if year == 1 else year}年"


def format_wareki(value: date | datetime) -> str:
    """A date as offices write it in 和暦: 令和元年5月1日 (datetimes are judged in Tokyo)."""
    if isinstance(value, datetime):
        value = to_tokyo(value).date()
    name, year = wareki_year(value)
    return f"{_era_year_text(name, year)}{value.month}月{value.day}日"


def fiscal_year_label(fiscal_year: int, *, wareki: bool = False) -> str:
    """2026年度, or in 和暦 令和8年度. A fiscal year in which an era began is named in the new
    era, as the government named 2019年度 令和元年度 and 1989年度 平成元年度: the era in force
    on 1 May of the fiscal year's first calendar year."""
    if not wareki:
        return f"{fiscal_year}年度"
    name, year = wareki_year(date(fiscal_year, 5, 1))
    return f"{_era_year_text(name, year)}度"
