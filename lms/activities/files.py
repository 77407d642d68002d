"""Files attached to answers (事前課題, 受講報告): judged by content, stored through the archives'
storage under a generated key, and never left half-stored.

A file is accepted when its first bytes (and, for a ZIP, its inside) show one of the types in
``ACCEPTED``, whatever its name says, and when it is no larger than
``LMS_ACTIVITY_FILE_MAX_BYTES``. It is written as a complete object before the database row
that names it; if that transaction rolls back, the object is deleted again (``on_rollback``),
and an object a newer upload replaced is deleted once the replacement is committed. A process
killed between storing and committing cannot roll back: ``sweep_orphans`` (the worker, every
30 minutes) deletes objects that no row names once they are older than ``ORPHAN_AGE``.
"""

from __future__ import annotations

import hashlib
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import IO

from flask import current_app
from flask_babel import gettext as _

from lms.activities.models import ActivityFile
from lms.archives.storage import READ_CHUNK, get_storage
from lms.common import pdfcheck
from lms.common.after_commit import after_commit, on_rollback
from lms.common.database import values_present
from lms.common.errors import InvalidInput, NotFound
from lms.common.filenames import sanitise_filename
from lms.common.timeutil import utcnow
from lms.extensions import db


@dataclass(frozen=True)
class Accepted:
    label: str
    content_type: str
    extension: str


PDF = Accepted("PDF", "application/pdf", ".pdf")
DOCX = Accepted("Word", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ".docx")
XLSX = Accepted("Excel", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", ".xlsx")
PPTX = Accepted("PowerPoint", "application/vnd.openxmlformats-officedocument.presentationml.presentation", ".pptx")
DOC = Accepted("Word 97-2003", "application/msword", ".doc")
XLS = Accepted("Excel 97-2003", "application/vnd.ms-excel", ".xls")
PPT = Accepted("PowerPoint 97-2003", "application/vnd.ms-powerpoint", ".ppt")
PNG = Accepted("PNG", "image/png", ".png")
JPEG = Accepted("JPEG", "image/jpeg", ".jpg")
GIF = Accepted("GIF", "image/gif", ".gif")
ACCEPTED = (PDF, DOCX, XLSX, PPTX, DOC, XLS, PPT, PNG, JPEG, GIF)
# The file input's hint to the browser's picker (the server decides by content).
ACCEPT_ATTRIBUTE = ",".join(sorted({a.extension for a in ACCEPTED} | {".jpeg"}))
# Office Open XML: the folder that says which application wrote the ZIP.
_OOXML = {"word/": DOCX, "xl/": XLSX, "ppt/": PPTX}
# Compound File Binary (Office 97-2003): the content cannot tell Word from Excel cheaply, so
# the name's extension picks among the three (the content has shown it is an Office file).
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE_BY_EXTENSION = {".doc": DOC, ".xls": XLS, ".ppt": PPT}
PREFIX = "activity-files"
# A stored object is committed (or rolled back) within its request: one older than this that
# no row names was left by a process that died in between.
ORPHAN_AGE = timedelta(hours=1)


def max_bytes() -> int:
    return int(current_app.config["LMS_ACTIVITY_FILE_MAX_BYTES"])


def judge(stream: IO[bytes], filename: str) -> Accepted | None:
    """The accepted type of the file's content, or None. ``stream`` must be seekable."""
    stream.seek(0)
    head = stream.read(16)
    stream.seek(0)
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"GIF87a", b"GIF89a")):
        return GIF
    if head.startswith(_OLE_MAGIC):
        name = filename.lower()
        return next((t for ext, t in _OLE_BY_EXTENSION.items() if name.endswith(ext)), None)
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(stream) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError, ValueError, EOFError):
            return None
        finally:
            stream.seek(0)
        if "[Content_Types].xml" in names:
            return next((t for folder, t in _OOXML.items() if any(n.startswith(folder) for n in names)), None)
    return None


def size_of(stream: IO[bytes]) -> int:
    stream.seek(0, 2)
    size = stream.tell()
    stream.seek(0)
    return size


def check(stream: IO[bytes], filename: str) -> tuple[Accepted, int]:
    """The file's type and size, or InvalidInput with the reason in the learner's words."""
    size = size_of(stream)
    if size == 0:
        raise InvalidInput(_("ファイルが空です。内容のあるファイルを選んでください。"))
    limit = max_bytes()
    if size > limit:
        shown, most = human_size(size), human_size(limit)
        if shown == most:  # (just over: "20.0 MB … 20.0 MB or less" would not say why; the bytes do)
            shown, most = f"{size:,} B", f"{limit:,} B"
        raise InvalidInput(_("ファイルが大きすぎます（%(size)s）。%(limit)s 以下のファイルにしてください。",
                             size=shown, limit=most))
    accepted = judge(stream, filename)
    if accepted is None:
        raise InvalidInput(_("このファイルの形式は添付できません。PDF、Word、Excel、PowerPoint、画像（PNG・JPEG・GIF）のファイルを選んでください。"))
    if accepted is PDF:
        stream.seek(max(0, size - pdfcheck.TAIL_BYTES))
        whole = pdfcheck.is_whole(stream.read())
        stream.seek(0)
        if not whole:
            raise InvalidInput(_("この PDF は途中で切れているか壊れていて、開けません。PDF を保存し直してから選んでください。"))
    return accepted, size


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} B"


def _chunks(stream: IO[bytes], digest) -> Iterator[bytes]:
    stream.seek(0)
    while True:
        chunk = stream.read(READ_CHUNK)
        if not chunk:
            return
        digest.update(chunk)
        yield chunk


def store(stream: IO[bytes], filename: str, *, activity_id: int, submission_id: int, question_id: int) -> ActivityFile:
    """Check and store the file; returns its row (added to the session, not flushed). Should
    the transaction roll back, the stored object is deleted."""
    accepted, size = check(stream, filename)
    name = sanitise_filename(filename, fallback="file")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    name = f"{stem or 'file'}{accepted.extension}"
    key = f"{PREFIX}/{activity_id}/{uuid.uuid4().hex}"
    storage = get_storage()
    digest = hashlib.sha256()
    written = storage.write_object(key, _chunks(stream, digest), accepted.content_type)
    on_rollback(lambda: storage.delete(key))
    return ActivityFile(submission_id=submission_id, question_id=question_id, storage_key=key, filename=name[:200],
                        content_type=accepted.content_type, size=written, sha256=digest.hexdigest())


def forget(file: ActivityFile) -> None:
    """Delete a replaced file's object once the change is committed (the caller deletes the row)."""
    storage = get_storage()
    key = file.storage_key
    after_commit(lambda: storage.delete(key))


def read(file: ActivityFile) -> Iterator[bytes]:
    """The stored bytes; NotFound if the object is missing (the row outlived its file)."""
    storage = get_storage()
    if not storage.exists(file.storage_key):
        raise NotFound(_("ファイルが見つかりません。"))
    return storage.open_range(file.storage_key)


def sweep_orphans(now: datetime | None = None) -> list[str]:
    """Delete stored objects (and unfinished parts) under ``PREFIX`` that no attachment row
    names and that were last written more than ``ORPHAN_AGE`` ago. The storage is listed
    before the rows are read, so a file committed meanwhile is seen. Commits (ends the read
    transaction). Returns the keys deleted."""
    now = now or utcnow()
    storage = get_storage()
    stale = sorted(key for key, modified in storage.list_keys(PREFIX).items() if modified < now - ORPHAN_AGE)
    db.session.commit()  # a snapshot taken after the listing
    referenced = values_present(ActivityFile.storage_key, stale)
    db.session.commit()
    removed = []
    for key in stale:
        if key not in referenced:
            storage.delete_part(key)
            storage.delete(key)
            removed.append(key)
    return removed
