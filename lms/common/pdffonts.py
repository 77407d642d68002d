"""Fonts of the PDFs Manabi makes (certificates, fee statements): one TrueType font that
covers 人名 characters (LMS_CERTIFICATE_FONT, e.g. IPAmj明朝), embedded as a subset; reportlab's
non-embedded CID fonts when the file is missing."""

from __future__ import annotations

import hashlib
import logging
import os
import threading

from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont

GOTHIC = "HeiseiKakuGo-W5"
MINCHO = "HeiseiMin-W3"
_fonts: dict[str, tuple[str, str]] = {}  # font file → (serif, sans) font names registered
_fonts_lock = threading.Lock()
log = logging.getLogger(__name__)


def document_fonts(path: str) -> tuple[str, str]:
    """(serif, sans): the TrueType font at ``path`` for both, embedded as a subset;
    reportlab's CID fonts when there is no such file. Registered once per process."""
    if path not in _fonts:
        with _fonts_lock:
            if path not in _fonts:
                if path and os.path.isfile(path):
                    name = "ManabiCertificate-" + hashlib.sha256(path.encode()).hexdigest()[:8]
                    pdfmetrics.registerFont(TTFont(name, path))
                    _fonts[path] = (name, name)
                else:
                    log.warning("document font %s not found: using non-embedded CID fonts "
                                "(install fonts-ipamj-mincho or set LMS_CERTIFICATE_FONT)", path)
                    pdfmetrics.registerFont(UnicodeCIDFont(GOTHIC))
                    pdfmetrics.registerFont(UnicodeCIDFont(MINCHO))
                    _fonts[path] = (MINCHO, GOTHIC)
    return _fonts[path]
