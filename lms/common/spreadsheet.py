"""Cells that a spreadsheet shows as text and never runs as a formula ("CSV injection").

Excel and LibreOffice run a cell starting with = + - @ (and, after a tab, carriage return
or line feed, what follows) as a formula; Japanese Excel also takes the full-width
＝ ＋ － ＠ for them. The one rule for every export:

- CSV: such a cell gets a leading apostrophe (the spreadsheet then shows it as text);
- XLSX: every text cell is written as a string cell (an inline string, lms.common.xlsx),
  which is never evaluated, so the text stays exactly as it is, without an apostrophe.
"""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class LossyRow:
    """A row that a Shift_JIS file cannot hold as it is: which row, and the characters lost."""

    key: str  # 職員番号, or what names the row
    name: str
    characters: str


def unencodable(text: str, encoding: str = "cp932") -> str:
    """The distinct characters of ``text`` that ``encoding`` cannot hold (in order of first
    appearance), e.g. 𠮷 or ㈱-like characters outside Windows-31J; "" when all fit."""
    try:
        text.encode(encoding)
        return ""
    except UnicodeEncodeError:
        pass
    missing: list[str] = []
    for ch in text:
        if ch not in missing:
            try:
                ch.encode(encoding)
            except UnicodeEncodeError:
                missing.append(ch)
    return "".join(missing)
