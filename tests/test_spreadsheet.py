"""Reading an uploaded .xlsx (lms.common.spreadsheet.read_xlsx_rows): the rows with content
at their row numbers, however many blank rows come between, and a tiny file naming the sheet's
last row read quickly."""

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
    assert rows == [(1, ["職員番号"]), (2, ["1001"]), (900, ["1002"])]


def test_a_block_below_a_long_run_of_blank_rows_is_read():
    """A roster with people after 1,200 empty rows loses none of them (a run of 1,000 blank
    rows used to end the data, silently)."""
    cells = {"A1": "職員番号", "B1": "氏名", "A2": "1001", "B2": "佐藤 花子"}
    cells |= {f"A{n}": str(n) for n in range(1203, 1206)} | {"B1205": "鈴木 一郎"}
    rows = read_xlsx_rows(_xlsx(cells), max_rows=10)
    assert rows == [(1, ["職員番号", "氏名"]), (2, ["1001", "佐藤 花子"]), (1203, ["1203", ""]), (1204, ["1204", ""]),
                    (1205, ["1205", "鈴木 一郎"])]


def test_a_tiny_file_naming_the_last_row_is_read_to_it():
    data = _xlsx({"A1": "職員番号", "A2": "1001", "A1048576": "9999"})
    assert len(data) < 10_000
    assert read_xlsx_rows(data, max_rows=10) == [(1, ["職員番号"]), (2, ["1001"]), (1_048_576, ["9999"])]
    # (only formatted, the last row is no row)
    from openpyxl.styles import Font

    workbook = Workbook()
    workbook.active["A1"] = "x"
    workbook.active["A1048576"].font = Font(bold=True)
    out = io.BytesIO()
    workbook.save(out)
    assert read_xlsx_rows(out.getvalue(), max_rows=10) == [(1, ["x"])]


def test_reading_stops_after_one_row_more_than_asked():
    rows = read_xlsx_rows(_xlsx({f"A{n}": str(n) for n in range(1, 8)} | {"A5000": "x"}), max_rows=3)
    assert [n for n, _cells in rows] == [1, 2, 3, 4]


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


def test_a_formula_without_a_result_below_a_long_blank_run_is_refused():
    import pytest

    from lms.common.errors import InvalidInput

    workbook = Workbook()
    workbook.active["A1"] = "希望人数"
    workbook.active["B1500"] = "=2+3"
    out = io.BytesIO()
    workbook.save(out)
    with pytest.raises(InvalidInput, match="B1500 のセルは数式"):
        read_xlsx_rows(out.getvalue(), max_rows=10)


def _formatted_blank_rows(count: int) -> bytes:
    """A value in row 1, ``count`` rows the file writes formatted but empty, a value below."""
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(["職員番号"])
    for _ in range(count):
        cell = WriteOnlyCell(sheet)
        cell.font = Font(bold=True)
        sheet.append([cell])
    sheet.append(["1001"])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def test_too_many_formatted_blank_rows_in_a_row_are_refused_naming_the_row():
    """Each row a file writes costs parsing: a long run of them is refused, never taken for the
    end of the data (the rows below it would be lost without a word)."""
    import pytest

    from lms.common.errors import InvalidInput

    assert read_xlsx_rows(_formatted_blank_rows(MAX_BLANK_RUN), max_rows=10) == [
        (1, ["職員番号"]), (MAX_BLANK_RUN + 2, ["1001"])]
    with pytest.raises(InvalidInput, match=f"2行目から、値のない行（書式だけの行）が {MAX_BLANK_RUN} 行を超えて"):
        read_xlsx_rows(_formatted_blank_rows(MAX_BLANK_RUN + 1), max_rows=10)
