"""File types judged by content (magic bytes), never by name; file name sanitising; media duration."""

from __future__ import annotations

import re
import struct
import unicodedata
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
    return None


def confirm_pptx(fileobj) -> bool:
    """A ZIP holding ``[Content_Types].xml`` and a ``ppt/`` folder (PowerPoint Open XML)."""
    try:
        with zipfile.ZipFile(fileobj) as archive:
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return False
    return "[Content_Types].xml" in names and any(n.startswith("ppt/") for n in names)


_UNSAFE = re.compile(r"[\x00-\x1f\x7f<>:\"/\\|?*]+")


def sanitise_filename(name: str, fallback: str = "file") -> str:
    """A display/download name: no directories, no control or reserved characters, ≤ 120 chars.

    Used only for display and Content-Disposition; storage keys never derive from it."""
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(" .")
    name = re.sub(r"\.{2,}", ".", name)
    if not name:
        name = fallback
    if len(name) > 120:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 120 - len(ext) - 1] + "." + ext) if dot and len(ext) <= 10 else name[:120]
    return name


def with_extension(name: str, filetype: FileType) -> str:
    """Make the name's extension agree with the real type (a .mp4 that is WebM becomes .webm)."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{stem or 'file'}{filetype.extension}"


# ------------------------------------------------------------------ duration


def media_duration(reader, size: int, filetype: FileType) -> int | None:
    """Duration in whole seconds read from the container headers, or None if not found.

    ``reader(start, length) -> bytes``. MP4: moov/mvhd; WebM: Segment/Info/Duration."""
    try:
        if filetype is MP4:
            return _mp4_duration(reader, size)
        if filetype is WEBM:
            return _webm_duration(reader, size)
    except (struct.error, ValueError, IndexError):
        return None
    return None


def _mp4_boxes(reader, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        header = reader(pos, 16)
        if len(header) < 8:
            return
        size, box = struct.unpack(">I4s", header[:8])
        head_len = 8
        if size == 1:
            size = struct.unpack(">Q", header[8:16])[0]
            head_len = 16
        elif size == 0:
            size = end - pos
        if size < head_len:
            return
        yield box, pos + head_len, pos + size
        pos += size


def _mp4_duration(reader, size: int) -> int | None:
    for box, body, end in _mp4_boxes(reader, 0, size):
        if box != b"moov":
            continue
        for inner, ibody, _iend in _mp4_boxes(reader, body, end):
            if inner != b"mvhd":
                continue
            data = reader(ibody, 32)
            version = data[0]
            if version == 1:
                timescale, duration = struct.unpack(">IQ", data[20:32])
            else:
                timescale, duration = struct.unpack(">II", data[12:20])
            return round(duration / timescale) if timescale else None
    return None


def _ebml_vint(data: bytes, pos: int, keep_marker: bool) -> tuple[int, int]:
    first = data[pos]
    length = 1
    mask = 0x80
    while length <= 8 and not first & mask:
        mask >>= 1
        length += 1
    if length > 8:
        raise ValueError("bad EBML length")
    value = first if keep_marker else first & (mask - 1)
    for b in data[pos + 1 : pos + length]:
        value = (value << 8) | b
    return value, pos + length


def _webm_duration(reader, size: int) -> int | None:
    data = reader(0, min(size, 64 * 1024))
    pos = 0
    timecode_scale = 1_000_000
    duration = None
    containers = {0x18538067, 0x1549A966}  # Segment, Info: descend
    while pos < len(data) - 2:
        element, pos = _ebml_vint(data, pos, keep_marker=True)
        length, pos = _ebml_vint(data, pos, keep_marker=False)
        if element in containers:
            continue
        body = data[pos : pos + length]
        if element == 0x2AD7B1:  # TimecodeScale
            timecode_scale = int.from_bytes(body, "big")
        elif element == 0x4489:  # Duration (float)
            duration = struct.unpack(">f", body)[0] if length == 4 else struct.unpack(">d", body)[0]
        elif element == 0x1F43B675:  # Cluster: headers are over
            break
        pos += length
    if duration is None:
        return None
    return round(duration * timecode_scale / 1_000_000_000)
