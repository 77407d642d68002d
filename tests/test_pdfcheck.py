"""The PDF check that refuses uploads cut short (lms.common.pdfcheck)."""

import io

from reportlab.pdfgen import canvas

from lms.common import pdfcheck


def _real_pdf() -> bytes:
    buffer = io.BytesIO()
    page = canvas.Canvas(buffer)
    page.drawString(100, 700, "Manabi")
    page.showPage()
    page.save()
    return buffer.getvalue()


def test_a_whole_pdf_passes_even_with_bytes_after_its_end():
    pdf = _real_pdf()
    assert pdfcheck.is_whole(pdf[-pdfcheck.TAIL_BYTES:])
    assert pdfcheck.is_whole((pdf + b"\r\n\x00" * 20)[-pdfcheck.TAIL_BYTES:])  # padding some writers leave
    assert pdfcheck.is_whole((pdf + b"\n" * 3000)[-pdfcheck.TAIL_BYTES:])  # more than Acrobat's kilobyte


def test_a_pdf_cut_short_or_without_its_cross_reference_offset_fails():
    pdf = _real_pdf()
    assert not pdfcheck.is_whole(pdf[: len(pdf) // 2][-pdfcheck.TAIL_BYTES:])
    assert not pdfcheck.is_whole(pdf[:-7])  # %%EOF itself lost
    assert not pdfcheck.is_whole(b"%PDF-1.7\n%%EOF\n")  # no startxref before the marker
    assert not pdfcheck.is_whole(b"%%EOF startxref")  # in the wrong order
    assert not pdfcheck.is_whole(b"")
