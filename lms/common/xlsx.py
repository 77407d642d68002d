"""Excel workbooks (.xlsx) streamed row by row: the download starts with the first rows.

A workbook is a ZIP of XML parts. The sheet is written as its rows come from the database
(through ``lms.common.zipstream``), so a million-row export holds a few rows in memory,
needs no temporary file, and its first bytes reach the browser (and nginx) at once.

What the sheet looks like: title lines above the table (the first large and bold), a blank
row, the column headers in bold and wrapped, column widths, everything above the data frozen.
Text is always an inline string cell, which a spreadsheet never evaluates: a title such as
``=HYPERLINK(…)`` stays text, without an apostrophe (lms.common.spreadsheet). Rates marked as
percent are stored as fractions with the ``0.0%`` format; datetimes and dates as Excel serial
numbers with a date format. A sheet holds at most Excel's 1,048,576 rows: longer tables go on
on further sheets ("…(2)"), each with the same headers.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from xml.sax.saxutils import escape, quoteattr

from lms.common.zipstream import ZipStream

EXCEL_MAX_ROWS = 1_048_576
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PERCENT_FORMAT = "0.0%"
_EPOCH = datetime(1899, 12, 30)
_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
_HEAD = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
# Cell styles (indexes into cellXfs below).
_TITLE, _HEADER, _PERCENT, _DATETIME, _DATE = 1, 2, 3, 4, 5
_STYLES = _HEAD + f"""<styleSheet xmlns="{_MAIN}">
<numFmts count="3"><numFmt numFmtId="164" formatCode="{PERCENT_FORMAT}"/><numFmt numFmtId="165" formatCode="yyyy-mm-dd hh:mm:ss"/><numFmt numFmtId="166" formatCode="yyyy-mm-dd"/></numFmts>
<fonts count="3"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font><font><b/><sz val="14"/><name val="Calibri"/><family val="2"/></font><font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>
<fills count="2"><fill><patternFill patternType="none"/></fill><fill><patternFill patternType="gray125"/></fill></fills>
<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>
<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>
<cellXfs count="6"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/><xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/><xf numFmtId="0" fontId="2" fillId="0" borderId="0" xfId="0" applyFont="1" applyAlignment="1"><alignment vertical="top" wrapText="1"/></xf><xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="165" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/><xf numFmtId="166" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>
<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>
</styleSheet>"""


@dataclass(frozen=True)
class SheetColumn:
    header: str
    width: int = 14
    percent: bool = False  # a rate in percent (42.9), shown as 42.9 % (the cell holds 0.429)


def column_letter(index: int) -> str:
    """1 → A, 27 → AA."""
    letters = ""
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def xml_text(text: str) -> str:
    """Text for an XML part: characters XML 1.0 forbids (control characters other than tab,
    CR and LF) become spaces; ``<``, ``&``, ``>`` are escaped."""
    if any(ord(ch) < 32 and ch not in "\t\n\r" for ch in text):
        text = "".join(ch if ord(ch) >= 32 or ch in "\t\n\r" else " " for ch in text)
    return escape(text)


def _serial(value: datetime | date) -> float:
    if isinstance(value, datetime):
        return (value.replace(tzinfo=None) - _EPOCH).total_seconds() / 86400
    return float((value - _EPOCH.date()).days)


def _text_cell(ref: str, text: str, style: int = 0) -> str:
    s = f' s="{style}"' if style else ""
    return f'<c r="{ref}" t="inlineStr"{s}><is><t xml:space="preserve">{xml_text(text)}</t></is></c>'


def _cell(ref: str, value: object, percent: bool) -> str:
    kind = type(value)
    if kind is str:
        return _text_cell(ref, value)  # type: ignore[arg-type]
    if value is None:
        return ""
    if kind is bool:
        return f'<c r="{ref}" t="b"><v>{int(value)}</v></c>'  # type: ignore[call-overload]
    if kind in (int, float, Decimal):
        if percent:
            return f'<c r="{ref}" s="{_PERCENT}"><v>{round(float(value) / 100, 4)!r}</v></c>'  # type: ignore[arg-type]
        return f'<c r="{ref}"><v>{value!r}</v></c>' if kind is float else f'<c r="{ref}"><v>{value}</v></c>'
    if kind is datetime:
        return f'<c r="{ref}" s="{_DATETIME}"><v>{_serial(value)!r}</v></c>'  # type: ignore[arg-type]
    if kind is date:
        return f'<c r="{ref}" s="{_DATE}"><v>{_serial(value)!r}</v></c>'  # type: ignore[arg-type]
    return _text_cell(ref, str(value))


def _sheet_name(title: str, number: int) -> str:
    """Excel's rules: at most 31 characters, none of []:*?/\\ ."""
    clean = "".join("_" if ch in "[]:*?/\\" else ch for ch in title).strip("'") or "Sheet"
    if number == 1:
        return clean[:31]
    suffix = f"({number})"
    return clean[:31 - len(suffix)] + suffix


def xlsx_stream(sheet_title: str, columns: Sequence[SheetColumn], rows: Iterable[Sequence[object]],
                title_lines: Sequence[str] = (), rows_per_write: int = 200,
                max_rows: int = EXCEL_MAX_ROWS) -> Iterator[bytes]:
    """The workbook's bytes, produced while ``rows`` are read."""
    archive = ZipStream()
    letters = [column_letter(i) for i in range(1, len(columns) + 1)]
    percent = [c.percent for c in columns]
    top = len(title_lines) + (2 if title_lines else 1)  # the header row
    cols = "".join(f'<col min="{i}" max="{i}" width="{c.width}" customWidth="1"/>'
                   for i, c in enumerate(columns, start=1))
    sheet_start = (
        _HEAD + f'<worksheet xmlns="{_MAIN}" xmlns:r="{_REL}"><sheetViews><sheetView workbookViewId="0">'
        f'<pane ySplit="{top}" topLeftCell="A{top + 1}" activePane="bottomLeft" state="frozen"/>'
        f'<selection pane="bottomLeft"/></sheetView></sheetViews><sheetFormatPr defaultRowHeight="15"/>'
        f"<cols>{cols}</cols><sheetData>"
    )
    head_rows: list[str] = []
    for n, line in enumerate(title_lines, start=1):
        head_rows.append(f'<row r="{n}">{_text_cell(f"A{n}", line, _TITLE if n == 1 else 0)}</row>')
    header = "".join(_text_cell(f"{letters[i]}{top}", c.header, _HEADER) for i, c in enumerate(columns))
    head_rows.append(f'<row r="{top}">{header}</row>')
    head = "".join(head_rows)

    sheets = 0
    iterator = iter(rows)
    exhausted = False
    while not exhausted:
        sheets += 1
        with archive.open(f"xl/worksheets/sheet{sheets}.xml") as entry:
            entry.write((sheet_start + head).encode())
            r = top
            pending: list[str] = []
            while r < max_rows:
                row = next(iterator, None)
                if row is None:
                    exhausted = True
                    break
                r += 1
                cells = "".join(_cell(f"{letters[i]}{r}", v, percent[i])
                                for i, v in enumerate(row) if i < len(letters))
                pending.append(f'<row r="{r}">{cells}</row>')
                if len(pending) >= rows_per_write:
                    entry.write("".join(pending).encode())
                    pending.clear()
                    yield from archive.drain()
            if pending:
                entry.write("".join(pending).encode())
            entry.write(b"</sheetData></worksheet>")
        yield from archive.drain()
        if not exhausted and (peek := next(iterator, None)) is not None:
            iterator = _chain_one(peek, iterator)
        else:
            exhausted = True

    names = [_sheet_name(sheet_title, n) for n in range(1, sheets + 1)]
    sheet_list = "".join(f"<sheet name={quoteattr(name)} sheetId=\"{n}\" r:id=\"rId{n}\"/>"
                         for n, name in enumerate(names, start=1))
    archive.writestr("xl/workbook.xml", _HEAD + f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}">'
                     f"<sheets>{sheet_list}</sheets></workbook>")
    rels = "".join(f'<Relationship Id="rId{n}" Type="{_REL}/worksheet" Target="worksheets/sheet{n}.xml"/>'
                   for n in range(1, sheets + 1))
    rels += f'<Relationship Id="rId{sheets + 1}" Type="{_REL}/styles" Target="styles.xml"/>'
    archive.writestr("xl/_rels/workbook.xml.rels", _HEAD + f'<Relationships xmlns="{_PKG_REL}">{rels}</Relationships>')
    archive.writestr("xl/styles.xml", _STYLES)
    archive.writestr("_rels/.rels", _HEAD + f'<Relationships xmlns="{_PKG_REL}"><Relationship Id="rId1" '
                     f'Type="{_REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>')
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{n}.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
        for n in range(1, sheets + 1))
    archive.writestr("[Content_Types].xml", _HEAD + (
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/styles.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        f"{overrides}</Types>"))
    yield from archive.close()


def _chain_one(first: Sequence[object], rest: Iterator[Sequence[object]]) -> Iterator[Sequence[object]]:
    yield first
    yield from rest
