"""CSV for spreadsheet users: UTF-8 with a BOM (Excel in Japanese Windows), cells made inert.

A cell starting with = + - @ (or a tab / carriage return) is run as a formula by Excel and
LibreOffice ("CSV injection"); such cells get a leading apostrophe so they stay text
(lms.common.spreadsheet).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

from lms.common.spreadsheet import neutralise_cell


def csv_bytes(header: Iterable[object], rows: Iterable[Iterable[object]]) -> bytes:
    """A whole CSV document (UTF-8 with BOM, CRLF line ends) with every cell neutralised."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([neutralise_cell(h) for h in header])
    for row in rows:
        writer.writerow([neutralise_cell(v) for v in row])
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")
