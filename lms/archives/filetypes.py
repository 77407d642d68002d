"""File types judged by content (magic bytes), never by name (a name is made safe by
``lms.common.filenames``).

How long a video is: ``lms.archives.containers``."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

from lms.archives.models import CAPTIONS, SLIDES, VIDEO

MiB = 1024 * 1024


@dataclass(frozen=True)
class FileType:
    code: str
    kind: str
    content_type: str
    extension: str
    label: str


MP4 = FileType("mp4", VIDEO, "video/mp4", ".mp4", "MP4")
WEBM = FileType("webm", VIDEO, "video/webm", ".webm", "WebM")
PDF = FileType("pdf", SLIDES, "application/pdf", ".pdf", "PDF")
PPTX = FileType(
    "pptx", SLIDES, "application/vnd.openxmlformats-officedocument.presentationml.presentation", ".pptx", "PowerPoint"
)
VTT = FileType("vtt", CAPTIONS, "text/vtt", ".vtt", "WebVTT")
TYPES = {t.code: t for t in (MP4, WEBM, PDF, PPTX, VTT)}

# Per kind, on top of LMS_MAX_UPLOAD_BYTES (which caps videos).
KIND_LIMITS = {SLIDES: 200 * MiB, CAPTIONS: 10 * MiB}
KIND_LABELS = {VIDEO: _l("動画"), SLIDES: _l("資料"), CAPTIONS: _l("字幕")}


def human_size(n: int) -> str:
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GB"
    return f"{n / 1024**2:.0f} MB"

# Bytes needed from the start of a file to recognise it.
SNIFF_BYTES = 64


def sniff(head: bytes) -> FileType | None:
    """The type of a file from its first bytes (PPTX needs ``confirm_pptx`` on the whole file)."""
    if len(head) >= 12 and head[4:8] == b"ftyp":
        return MP4
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return WEBM
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"PK\x03\x04"):
        return PPTX
    text = head[3:] if head.startswith(b"\xef\xbb\xbf") else head
    if text.startswith(b"WEBVTT") and (len(text) == 6 or text[6:7] in (b" ", b"\t", b"\n", b"\r")):
        return VTT
    # Captions saved as UTF-16 ("Unicode" in Windows' Notepad): WebVTT all the same, so that the
    # refusal says what to do (save as UTF-8), not that the type is unknown.
    if head.startswith((b"\xff\xfeW\x00E\x00B\x00V\x00T\x00T\x00", b"\xfe\xff\x00W\x00E\x00B\x00V\x00T\x00T")):
        return VTT
    return None


def confirm_pptx(fileobj) -> bool:
    """A ZIP holding ``[Content_Types].xml`` and a ``ppt/`` folder (PowerPoint Open XML)."""
    try:
        with zipfile.ZipFile(fileobj) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False
    return "[Content_Types].xml" in names and any(n.startswith("ppt/") for n in names)


def with_extension(name: str, filetype: FileType) -> str:
    """Make the name's extension agree with the real type (a .mp4 that is WebM becomes .webm)."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{stem or 'file'}{filetype.extension}"
