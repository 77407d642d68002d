"""Streamed exports: CSV (UTF-8 with BOM, or Windows-31J on request) and Excel (.xlsx).

Rows come from a generator (server-side cursor, fetched in batches), so a million rows
never sit in memory. No text cell can run as a formula (lms.common.spreadsheet): in CSV
one that a spreadsheet could take for a formula gets a leading apostrophe; in XLSX every
text cell is an inline string cell (lms.common.xlsx). Both stream: the first bytes leave with
the first rows, so no proxy timeout cuts a large export.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Row

from lms.common.spreadsheet import neutralise_text
from lms.common.timeutil import TOKYO
from lms.common.xlsx import SheetColumn, xlsx_stream
from lms.extensions import db

BATCH = 2000
ENCODINGS = ("utf-8", "cp932")


def tokyo_wall_clock(value: datetime) -> datetime:
    """A stored (UTC) time as Tokyo wall-clock time, naive (spreadsheets have no time zones)."""
    if value.tzinfo is None:  # SQLite returns stored UTC times naive
        value = value.replace(tzinfo=UTC)
    return value.astimezone(TOKYO).replace(tzinfo=None)


# A column of an export: header, width (XLSX), whether it is a rate in percent.
Column = SheetColumn


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


def xlsx_chunks(table: Table) -> Iterator[bytes]:
    """The table as an Excel workbook, streamed while its rows are read (lms.common.xlsx):
    title rows, the headers, then the data; times as Tokyo wall-clock time."""
    return xlsx_stream(table.sheet_title, table.columns, (_xlsx_row(row) for row in table.rows()),
                       title_lines=table.title_lines)


def _xlsx_row(row: tuple) -> tuple:
    if any(type(v) is datetime for v in row):
        return tuple(tokyo_wall_clock(v).replace(microsecond=0) if type(v) is datetime else v for v in row)
    return row
