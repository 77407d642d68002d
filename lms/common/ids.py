"""Ids from the outside world: bounded to what the database's integer columns hold.

A path's ``<int:…>`` (every route's) and a query or form value naming a row both go through
here: a number beyond ``MAX_ID`` names nothing (PostgreSQL refuses it as out of range, SQLite's
driver overflows), so it is answered like any id that names nothing, never with a 500.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter, ValidationError

MAX_ID = 2**31 - 1  # PostgreSQL's integer; ids are the same on SQLite
_MAX_DIGITS = len(str(MAX_ID))


class IdConverter(IntegerConverter):
    """``<int:…>`` in every route: 1..MAX_ID; anything else matches no rule (404)."""

    def __init__(self, map, fixed_digits: int = 0, min: int | None = 1, max: int | None = MAX_ID,
                 signed: bool = False) -> None:
        super().__init__(map, fixed_digits, min, max, signed)

    def to_python(self, value: str):
        if len(value.lstrip("-")) > _MAX_DIGITS:  # (int() of thousands of digits raises ValueError)
            raise ValidationError()
        return super().to_python(value)


def init_ids(app: Flask) -> None:
    """Bound ``<int:…>``: must run before any blueprint adds its rules."""
    app.url_map.converters["int"] = IdConverter


def parse_id(value: object) -> int | None:
    """The id a query or form value names, or None: only ASCII digits, 1..MAX_ID."""
    text = "" if value is None else str(value).strip()
    if not text or len(text) > _MAX_DIGITS or not (text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 1 <= number <= MAX_ID else None


def parse_ids(values) -> list[int]:
    """The ids of a repeated parameter (``?course=1&course=2``), the unusable ones left out and
    each named once (in the order first given: ``?course=1&course=1`` is one course)."""
    return list(dict.fromkeys(number for value in values if (number := parse_id(value)) is not None))


def coerce_id(value: object) -> int:
    """``coerce=`` of a select (or radio) field whose values are ids, 0 standing for "none
    chosen": anything else raises ValueError, which WTForms reports as an invalid choice."""
    if str(value).strip() == "0":
        return 0
    number = parse_id(value)
    if number is None:
        raise ValueError(value)
    return number
