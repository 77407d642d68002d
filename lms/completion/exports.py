"""Streamed exports: CSV (UTF-8 with BOM, or Windows-31J on request) and Excel (.xlsx).

Rows come from a generator (server-side cursor, fetched in batches), so a million rows
never sit in memory. No text cell can run as a formula (lms.common.spreadsheet): in CSV
one that a spreadsheet could take for a formula gets a leading apostrophe; in XLSX every
text cell is a string cell.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from sqlalchemy import Row

from lms.common.spreadsheet import neutralise_text, xlsx_text_cell
from lms.common.timeutil import TOKYO
from lms.extensions import db

BATCH = 2000
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ENCODINGS = ("utf-8", "cp932")


def tokyo_wall_clock(value: datetime) -> datetime:
    """A stored (UTC) time as Tokyo wall-clock time, naive (spreadsheets have no time zones)."""
    if value.tzinfo is None:  # SQLite returns stored UTC times naive
        value = value.replace(tzinfo=UTC)
    return value.astimezone(TOKYO).replace(tzinfo=None)


@dataclass(frozen=True)
class Column:
    header: str
    width: int = 14
    percent: bool = False  # a rate in percent (42.9): XLSX shows it as 42.9 % (the cell holds 0.429)


@dataclass
class Table:
    """A named export: columns and a generator of row tuples (already plain values).

    ``title_lines`` (what, whose, which year, when exported) head the XLSX sheet above the
    column headers; the CSV stays one header line and data, for machines to read."""

    name: str  # file name stem (ASCII)
    sheet_title: str
    columns: list[Column]
    rows: Callable[[], Iterable[tuple]]
    title_lines: tuple[str, ...] = ()


def stream_query(query, convert: Callable[[Row[Any]], tuple], batch: int = BATCH) -> Iterator[tuple]:
    """Rows of a SELECT through a server-side cursor, fetched ``batch`` at a time."""
    # Core execution on the session's connection: a server-side cursor on PostgreSQL,
    # without ORM row processing.
    result = db.session.connection().execute(query.execution_options(stream_results=True, yield_per=batch))
    try:
        for partition in result.partitions(batch):
            for row in partition:
                yield convert(row)
    finally:
        result.close()


# ---------------------------------------------------------------- CSV


def csv_chunks(table: Table, encoding: str = "utf-8", lines_per_chunk: int = 500) -> Iterator[bytes]:
    """CSV in chunks of bytes. UTF-8 starts with a BOM (Excel needs it to read UTF-8);
    cp932 (Windows-31J) replaces characters it cannot encode with '?'."""
    if encoding not in ENCODINGS:
        raise ValueError(encoding)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def flush() -> bytes:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate(0)
        if encoding == "cp932":
            return text.encode("cp932", errors="replace")
        return text.encode("utf-8")

    if encoding == "utf-8":
        yield b"\xef\xbb\xbf"
    writer.writerow([neutralise_text(c.header) for c in table.columns])
    for n, row in enumerate(table.rows(), start=1):
        writer.writerow([_csv_cell(v) for v in row])
        if n % lines_per_chunk == 0:
            yield flush()
    tail = flush()
    if tail:
        yield tail


def _csv_cell(value) -> str:
    """One CSV cell as text: Tokyo time for datetimes, neutralised text."""
    kind = type(value)
    if kind is str:
        return neutralise_text(value)
    if kind is int:
        return str(value)
    if value is None:
        return ""
    if kind is datetime:
        return tokyo_wall_clock(value).strftime("%Y-%m-%d %H:%M")
    if kind is date:
        return value.isoformat()
    if kind is bool:
        return "1" if value else "0"
    if kind is float:
        return f"{value:.1f}"
    return neutralise_text(str(value))


# ---------------------------------------------------------------- XLSX


PERCENT_FORMAT = "0.0%"


def write_xlsx(table: Table, path: str) -> int:
    """Write the table to ``path`` with openpyxl's write-only mode (rows go straight to a
    temporary file). Title rows (the first in bold), a blank row, then the Japanese headers
    in bold and wrapped, column widths, everything above the data frozen; rates as
    percentages."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=table.sheet_title[:31])
    header_row = len(table.title_lines) + (2 if table.title_lines else 1)
    ws.freeze_panes = f"A{header_row + 1}"
    for i, column in enumerate(table.columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = column.width
    for n, line in enumerate(table.title_lines):
        cell = xlsx_text_cell(ws, _xml_text(line))
        if n == 0:
            cell.font = Font(bold=True, size=14)
        ws.append([cell])
    if table.title_lines:
        ws.append([])
    header = []
    for column in table.columns:
        cell = xlsx_text_cell(ws, _xml_text(column.header))
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=True, vertical="top")
        header.append(cell)
    ws.append(header)
    percent = [i for i, column in enumerate(table.columns) if column.percent]
    n = 0
    for row in table.rows():
        values = [_xlsx_value(ws, v) for v in row]
        for i in percent:
            if i < len(values) and isinstance(row[i], int | float) and not isinstance(row[i], bool):
                values[i] = _percent_cell(ws, row[i])
        ws.append(values)
        n += 1
    wb.save(path)
    return n


def _percent_cell(ws, value: float) -> WriteOnlyCell:
    cell = WriteOnlyCell(ws, value=round(value / 100, 4))
    cell.number_format = PERCENT_FORMAT
    return cell


def _xlsx_value(ws, value):
    """One XLSX cell: Tokyo wall-clock for datetimes, text as a string cell (never a formula)."""
    if isinstance(value, str):
        return xlsx_text_cell(ws, _xml_text(value))
    if isinstance(value, datetime):
        return tokyo_wall_clock(value).replace(microsecond=0)
    if value is None:
        return ""
    return value


def _xml_text(text: str) -> str:
    """Characters XML 1.0 forbids would corrupt the file: each becomes a space."""
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text):
        return "".join(ch if ord(ch) >= 32 or ch in "\t\n\r" else " " for ch in text)
    return text


def xlsx_chunks(table: Table, chunk_size: int = 64 * 1024) -> Iterator[bytes]:
    """Build the workbook in a temporary file, then stream it and delete it."""
    fd, path = tempfile.mkstemp(prefix="manabi-export-", suffix=".xlsx")
    os.close(fd)
    try:
        write_xlsx(table, path)
        with open(path, "rb") as f:
            while chunk := f.read(chunk_size):
                yield chunk
    finally:
        os.unlink(path)
