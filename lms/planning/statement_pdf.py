"""研修負担金 statements as PDF (A4, the font embedded as a subset): what a municipality's
accounting office files — the issuing body, the municipality, version, date of issue, the
total, and every line.

Imported where a statement is drawn, not at start-up: reportlab adds megabytes to every
process that imports it (bench/upload.py's peak_rss_mb), and few requests draw one."""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from lms.common.pdffonts import document_fonts
from lms.common.timeutil import fiscal_year_label, format_wareki, to_tokyo
from lms.planning.models import FeeStatement, TrainingPlan

KIND_LABELS = {"participant": "受講", "late_cancellation": "直前取消", "no_show": "欠席", "correction": "訂正"}


def _date(value, wareki: bool) -> str:
    day = to_tokyo(value).date()
    return format_wareki(day) if wareki else f"{day.year}年{day.month}月{day.day}日"


def render_statement_pdf(plan: TrainingPlan, statement: FeeStatement, *, issuer: str, font_path: str,
                         wareki: bool = False) -> bytes:
    serif, sans = document_fonts(font_path)
    buffer = io.BytesIO()
    title = f"{fiscal_year_label(plan.fiscal_year, wareki=wareki)} 研修負担金 請求明細（第{statement.version}版）"
    doc = SimpleDocTemplate(buffer, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm, topMargin=15 * mm,
                            bottomMargin=15 * mm, title=title, author=issuer or "Manabi")
    heading = ParagraphStyle("h", fontName=sans, fontSize=15, leading=20, spaceAfter=4 * mm)
    body = ParagraphStyle("b", fontName=serif, fontSize=10, leading=14)
    cell = ParagraphStyle("c", fontName=serif, fontSize=8, leading=10)
    story = [
        Paragraph(escape(title), heading),
        Paragraph(escape(f"請求先：{statement.municipality.name}"), body),
        Paragraph(escape(f"発行：{issuer}　発行日：{_date(statement.issued_at, wareki)}"), body),
        Paragraph(escape(f"合計：{statement.total_yen:,}円（明細 {len(statement.lines)} 行）"), body),
        Spacer(1, 5 * mm),
    ]
    rows = [["区分", "研修", "開催日時", "職員", "負担金", "減免", "請求額", "備考"]]
    for line in statement.lines:
        rows.append([
            KIND_LABELS.get(line.kind, line.kind), Paragraph(escape(line.course_title), cell),
            f"{to_tokyo(line.session_starts_at):%Y-%m-%d %H:%M}",
            Paragraph(escape(f"{line.staff_name}（{line.employee_number}）"), cell),
            f"{line.fee_yen:,}円", f"{line.exemption_percent}%", f"{line.amount_yen:,}円",
            Paragraph(escape(line.note), cell),
        ])
    rows.append(["", "", "", "", "", "合計", f"{statement.total_yen:,}円", ""])
    table = Table(rows, colWidths=[14 * mm, 40 * mm, 24 * mm, 30 * mm, 18 * mm, 12 * mm, 20 * mm, 22 * mm],
                  repeatRows=1)
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, -1), serif, 8),
        ("FONT", (0, 0), (-1, 0), sans, 8),
        ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#eeeeee")),
        ("ALIGN", (4, 1), (6, -1), "RIGHT"),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("FONT", (5, -1), (6, -1), sans, 9),
    ]))
    story.append(table)
    doc.build(story)
    return buffer.getvalue()
