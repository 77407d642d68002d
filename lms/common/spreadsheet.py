"""Cells that a spreadsheet shows as text and never runs as a formula ("CSV injection").

Excel and LibreOffice run a cell starting with = + - @ (and, after a tab, carriage return
or line feed, what follows) as a formula; Japanese Excel also takes the full-width
＝ ＋ － ＠ for them. The one rule for every export:

- CSV: such a cell gets a leading apostrophe (the spreadsheet then shows it as text);
- XLSX: every text cell is written as a string cell (an inline string, lms.common.xlsx),
  which is never evaluated, so the text stays exactly as it is, without an apostrophe.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import date, datetime

from flask_babel import gettext as _

from lms.common.errors import InvalidInput

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\n", "＝", "＋", "－", "＠")
_TRIGGERS = frozenset(FORMULA_TRIGGERS)


def neutralise_text(text: str) -> str:
    """CSV: ``text`` with a leading apostrophe if a spreadsheet could take it for a formula."""
    return "'" + text if text[:1] in _TRIGGERS else text


def read_back_text(text: str) -> str:
    """CSV import: a cell as it was before ``neutralise_text`` (the apostrophe before a formula
    character goes), so that a file exported here and imported again changes nothing."""
    return text[1:] if text[:1] == "'" and text[1:2] in _TRIGGERS else text


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


def xlsx_cell_text(value: object) -> str:
    """A cell as the text a CSV would hold: dates as 2026-04-01, whole numbers without .0
    (職員番号 typed as a number), nothing for empty."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == datetime.min.time() else value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _open_xlsx(data: bytes, *, data_only: bool):
    from openpyxl import load_workbook  # (on the first upload: 8 MB every process would carry, docs/DEVELOPING.md)

    try:
        return load_workbook(io.BytesIO(data), read_only=True, data_only=data_only)
    except Exception:  # noqa: BLE001 - openpyxl raises many kinds for a damaged or foreign file
        raise InvalidInput(_("Excel ファイル（.xlsx）として読み取れません。Excel で開けることを確かめ、.xlsx で保存し直してください。")) from None


def _read_value(cell, formula) -> object:
    """A cell's value as Excel last showed it: a formula's saved result (a file written by a
    program other than Excel may have none: refused, never read as empty, which would store 0
    or erase an answer); TRUE/FALSE refused too (neither a number nor a text)."""
    value = cell.value
    if formula.data_type == "f" and value is None:  # (an array formula's value is an object, not a str)
        raise InvalidInput(_("%(cell)s のセルは数式で、計算結果が保存されていません。数式ではなく値を入力してください。",
                             cell=cell.coordinate))
    if isinstance(value, bool):
        raise InvalidInput(_("%(cell)s のセルは TRUE/FALSE です。数値か文字で入力してください。", cell=cell.coordinate))
    return value


# Blank rows in a row that a file writes (formatted, holding no value) read before it is refused:
# each costs parsing, and a file of a few megabytes can write a million of them.
MAX_BLANK_RUN = 5000


def read_xlsx_rows(data: bytes, *, max_rows: int) -> list[tuple[int, list[str]]]:
    """The first sheet's rows with content, as text with their row numbers, up to the
    ``max_rows + 1``-th (so that a caller can tell a file with too many). Blank rows are
    skipped however many there are, so no row below them is ever left unread; they cost next to
    nothing (a row the file leaves out is one shared empty row in openpyxl's read-only mode, so a
    file of a few kilobytes naming row 1,048,576 is read in a fraction of a second, and a row the
    file writes costs parsing: more than ``MAX_BLANK_RUN`` such rows in a row are refused naming
    the row where they begin, never taken for the end of the data). The sheet is read twice side by
    side, for the values and for the formulas, since openpyxl gives a cell one or the other; a
    cell neither a number, a date nor a text is refused naming it (``_read_value``)."""
    workbook = _open_xlsx(data, data_only=True)
    formulas = _open_xlsx(data, data_only=False)
    try:
        rows: list[tuple[int, list[str]]] = []
        # The last row found blank on each side: openpyxl yields one and the same for every
        # row the file leaves out, so a run of them is passed over without looking at a cell.
        blank_row: object = None
        blank_source: object = None
        run_start = written_run = 0
        cells = workbook.worksheets[0].iter_rows()
        sources = formulas.worksheets[0].iter_rows()
        for number, (row, source) in enumerate(zip(cells, sources, strict=True), start=1):
            if row is blank_row and source is blank_source:
                continue
            empty = all(cell.value is None for cell in row) and all(cell.value is None for cell in source)
            if empty:
                blank_row, blank_source = row, source
            texts = [] if empty else [xlsx_cell_text(_read_value(cell, formula)) for cell, formula in zip(row, source, strict=True)]
            if any(text.strip() for text in texts):
                run_start = written_run = 0
                rows.append((number, texts))
                if len(rows) > max_rows:
                    break
                continue
            run_start, written_run = run_start or number, written_run + 1
            if written_run > MAX_BLANK_RUN:
                raise InvalidInput(_("%(row)d行目から、値のない行（書式だけの行）が %(count)d 行を超えて続いているため、読み取りを中止しました。"
                                     "データの下の空の行を削除してから、もう一度アップロードしてください。",
                                     row=run_start, count=MAX_BLANK_RUN))
        return rows
    finally:
        workbook.close()
        formulas.close()
