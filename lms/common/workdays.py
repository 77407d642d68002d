"""The working days of Japanese public offices: Monday to Friday, except the national holidays
(国民の祝日 and 振替休日・国民の休日, from ``jpholiday``) and the year-end closure from 29
December to 3 January (行政機関の休日に関する法律). Waiting times that people count in
working days (an approval request waiting N days) are counted here."""

from __future__ import annotations

from datetime import date, timedelta

import jpholiday


def is_working_day(day: date) -> bool:
    if day.weekday() >= 5:
        return False
    if (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3):
        return False
    return not jpholiday.is_holiday(day)


def working_days_between(start: date, end: date) -> int:
    """Working days after ``start`` up to and including ``end`` (0 when ``end`` <= ``start``):
    a request made on a Friday has waited one working day on the Monday after."""
    if end <= start:
        return 0
    count = 0
    day = start + timedelta(days=1)
    while day <= end:
        if is_working_day(day):
            count += 1
        day += timedelta(days=1)
    return count
