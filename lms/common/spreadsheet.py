"""Cells that a spreadsheet shows as text and never runs as a formula ("CSV injection").

Excel and LibreOffice run a cell starting with = + - @ (and, after a tab, carriage return
or line feed, what follows) as a formula; Japanese Excel also takes the full-width
＝ ＋ － ＠ for them. The one rule for every export:

- CSV: such a cell gets a leading apostrophe (the spreadsheet then shows it as text);
- XLSX: every text cell is written as a string cell (an inline string, lms.common.xlsx),
  which is never evaluated, so the text stays exactly as it is, without an apostrophe.
"""

from __future__ import annotations

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
_TRIGGERS = frozenset(FORMULA_TRIGGERS)


def neutralise_text(text: str) -> str:
    """CSV: ``text`` with a leading apostrophe if a spreadsheet could take it for a formula."""
    return "'" + text if text[:1] in _TRIGGERS else text


def neutralise_cell(value: object) -> str:
    """CSV: the text of one cell (None is empty), safe to open in a spreadsheet."""
    if value is None:
        return ""
    return neutralise_text(str(value))
