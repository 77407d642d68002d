"""Streamed exports: CSV (UTF-8 with BOM, or Windows-31J on request) and Excel (.xlsx).

Rows come from a generator (server-side cursor, fetched in batches), so a million rows
never sit in memory. Every text cell is neutralised against formula injection: a cell
beginning with = + - @ TAB or CR gets a leading apostrophe, in CSV and in XLSX alike.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime

from openpyxl import Workbook
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from lms.common.timeutil import to_tokyo
from lms.extensions import db

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
BATCH = 2000
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ENCODINGS = ("utf-8", "cp932")


_TRIGGER_SET = frozenset(FORMULA_TRIGGERS)


def neutralise(value):
    """A value safe to open in Excel: text starting with a formula trigger is prefixed with '."""
    if isinstance(value, str) and value and value[0] in _TRIGGER_SET:
        return "'" + value
    return value


def cell_value(value):
    """Plain cell values: Tokyo wall-clock for datetimes (Excel has no time zones)."""
    if isinstance(value, datetime):
        return to_tokyo(value).replace(tzinfo=None, microsecond=0)
    if value is None:
        return ""
    return value


@dataclass(frozen=True)
class Column:
    header: str
    width: int = 14


@dataclass
class Table:
    """A named export: columns and a generator of row tuples (already plain values)."""

    name: str  # file name stem (ASCII)
    sheet_title: str
    columns: list[Column]
    rows: Callable[[], Iterable[tuple]]


def stream_query(query, convert: Callable[[object], tuple], batch: int = BATCH) -> Iterator[tuple]:
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
    writer.writerow([neutralise(c.header) for c in table.columns])
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
        return "'" + value if value and value[0] in _TRIGGER_SET else value
    if kind is int:
        return str(value)
    if value is None:
        return ""
    if kind is datetime:
        return to_tokyo(value).strftime("%Y-%m-%d %H:%M")
    if kind is date:
        return value.isoformat()
    if kind is bool:
        return "1" if value else "0"
    if kind is float:
        return f"{value:.1f}"
    return neutralise(str(value))


# ---------------------------------------------------------------- XLSX


def write_xlsx(table: Table, path: str) -> int:
    """Write the table to ``path`` with openpyxl's write-only mode (rows go straight to a
    temporary file). Japanese headers in bold, column widths, the header row frozen."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=table.sheet_title[:31])
    ws.freeze_panes = "A2"
    for i, column in enumerate(table.columns, start=1):
        ws.column_dimensions[get_column_letter(i)].width = column.width
    from openpyxl.cell import WriteOnlyCell

    header = []
    for column in table.columns:
        cell = WriteOnlyCell(ws, value=neutralise(column.header))
        cell.font = Font(bold=True)
        header.append(cell)
    ws.append(header)
    n = 0
    for row in table.rows():
        ws.append([_xlsx_value(v) for v in row])
        n += 1
    wb.save(path)
    return n


def _xlsx_value(value):
    value = cell_value(value)
    if isinstance(value, str):
        value = neutralise(value)
        # Characters XML 1.0 forbids would corrupt the file.
        if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in value):
            value = "".join(ch if ord(ch) >= 32 or ch in "\t\n\r" else " " for ch in value)
    return value


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
