"""Time: stored in UTC (timezone-aware), shown in Asia/Tokyo; 年度 runs April to March."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import overload
from zoneinfo import ZoneInfo

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
