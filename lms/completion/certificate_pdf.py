"""A 修了証's page as PDF (reportlab, with the QR code of its check page): the drawing of
``lms.completion.certificates``' data.

Its own module, imported where a certificate is drawn (not at start-up): reportlab, qrcode and
Pillow add about 10 MB to every process that imports them, and a web or background worker
that never draws a certificate should not carry them (bench/upload.py's peak_rss_mb)."""

from __future__ import annotations

import io

import qrcode
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfgen import canvas

from lms.common.pdffonts import document_fonts
from lms.common.timeutil import fiscal_year_label
from lms.completion.certificates import CertificateData, japanese_date


def _actual_text(c: canvas.Canvas, text: str) -> None:
    """Open a marked-content span whose /ActualText is ``text`` (UTF-16BE with BOM)."""
    c.addLiteral(f"/Span <</ActualText <FEFF{text.encode('utf-16-be').hex().upper()}>>> BDC")


def _qr_image(url: str) -> ImageReader:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=6, border=2)
    qr.add_data(url)
    qr.make(fit=True)
    image = qr.make_image(fill_color="black", back_color="white").get_image()
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    buffer.seek(0)
    return ImageReader(buffer)


def _centred(c: canvas.Canvas, font: str, size: float, y: float, text: str, max_width: float) -> None:
    # Shrink long titles to fit rather than run off the page.
    while size > 9 and pdfmetrics.stringWidth(text, font, size) > max_width:
        size -= 1
    c.setFont(font, size)
    _actual_text(c, text)
    c.drawCentredString(A4[0] / 2, y, text)
    c.addLiteral("EMC")


def _line(c: canvas.Canvas, font: str, size: float, x: float, y: float, text: str) -> None:
    c.setFont(font, size)
    _actual_text(c, text)
    c.drawString(x, y, text)
    c.addLiteral("EMC")


def render_certificate_pdf(data: CertificateData, font_path: str) -> bytes:
    MINCHO, GOTHIC = document_fonts(font_path)  # noqa: N806 - the names of the two faces
    buffer = io.BytesIO()
    c = canvas.Canvas(buffer, pagesize=A4, pageCompression=1, initialFontName=MINCHO)
    c.setTitle(f"修了証 {data.course_title}")
    c.setAuthor(data.issuer or "Manabi")
    c.setSubject(data.serial)
    width, height = A4
    margin = 18 * mm
    c.setLineWidth(2)
    c.rect(margin, margin, width - 2 * margin, height - 2 * margin)
    c.setLineWidth(0.5)
    c.rect(margin + 3 * mm, margin + 3 * mm, width - 2 * margin - 6 * mm, height - 2 * margin - 6 * mm)
    usable = width - 2 * margin - 20 * mm

    _centred(c, MINCHO, 40, height - 60 * mm, "修 了 証", usable)
    _centred(c, MINCHO, 14, height - 75 * mm, data.municipality_name, usable)
    _centred(c, MINCHO, 26, height - 95 * mm, f"{data.holder_name} 様", usable)
    c.setLineWidth(0.8)
    c.line(width / 2 - 60 * mm, height - 98 * mm, width / 2 + 60 * mm, height - 98 * mm)

    _centred(c, MINCHO, 14, height - 120 * mm, "あなたは下記の研修を修了したことを証します。", usable)
    _centred(c, GOTHIC, 20, height - 140 * mm, data.course_title, usable)
    _centred(c, MINCHO, 13, height - 155 * mm, fiscal_year_label(data.fiscal_year, wareki=data.wareki), usable)
    _centred(c, MINCHO, 14, height - 170 * mm, f"修了日　{japanese_date(data.completed_at, data.wareki)}", usable)
    if data.issued_on is not None:
        _centred(c, MINCHO, 12, height - 185 * mm, f"発行日　{japanese_date(data.issued_on, data.wareki)}", usable)
    _centred(c, MINCHO, 18, height - 198 * mm, data.issuer or "Manabi", usable)

    # Verification: QR code and the URL in words, and the serial number.
    qr_size = 32 * mm
    c.drawImage(_qr_image(data.verify_url), margin + 10 * mm, margin + 10 * mm, qr_size, qr_size)
    text_x = margin + 10 * mm + qr_size + 6 * mm
    _line(c, GOTHIC, 9, text_x, margin + 34 * mm, f"証書番号　{data.serial}")
    _line(c, GOTHIC, 9, text_x, margin + 28 * mm, "真正性の確認:")
    _line(c, GOTHIC, 8, text_x, margin + 23 * mm, data.verify_url)
    if data.revoked:
        c.setFillColorRGB(0.7, 0, 0)
        _centred(c, GOTHIC, 28, height - 215 * mm, "この修了は取り消されています", usable)
    c.showPage()
    c.save()
    return buffer.getvalue()
