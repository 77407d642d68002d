"""Reading an uploaded .xlsx (lms.common.spreadsheet.read_xlsx_rows): blank rows kept in place
but bounded, so that a tiny file naming the sheet's last row cannot make a request read a
million rows."""

from __future__ import annotations

import io

from openpyxl import Workbook

from lms.common.spreadsheet import MAX_BLANK_RUN, read_xlsx_rows


def _xlsx(cells: dict[str, str]) -> bytes:
    workbook = Workbook()
    for ref, value in cells.items():
        workbook.active[ref] = value
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_rows_below_blank_rows_are_read_at_their_row_number():
    rows = read_xlsx_rows(_xlsx({"A1": "職員番号", "A2": "1001", "A900": "1002"}), max_rows=10)
    assert len(rows) == 900 and rows[899][0] == "1002" and rows[1][0] == "1001"


def test_a_long_run_of_blank_rows_ends_the_data():
    data = _xlsx({"A1": "職員番号", "A2": "1001", "A1048576": "9999"})
    assert len(data) < 10_000
    rows = read_xlsx_rows(data, max_rows=10)
    assert rows == [["職員番号"], ["1001"]]
    below = read_xlsx_rows(_xlsx({"A1": "x", f"A{MAX_BLANK_RUN + 2}": "y"}), max_rows=10)
    assert below[-1] == ["y"]  # a run of exactly MAX_BLANK_RUN blank rows does not end it


def test_a_formula_without_a_saved_result_is_refused_array_formulas_too():
    import pytest
    from openpyxl.worksheet.formula import ArrayFormula

    from lms.common.errors import InvalidInput

    for formula in ("=2+3", ArrayFormula("B2", "=SUM(2,3)")):
        workbook = Workbook()
        workbook.active["A1"] = "希望人数"
        workbook.active["B2"] = formula
        out = io.BytesIO()
        workbook.save(out)
        with pytest.raises(InvalidInput, match="B2 のセルは数式"):
            read_xlsx_rows(out.getvalue(), max_rows=10)
