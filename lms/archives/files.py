"""Archive files: storage keys, content checks and the rows of ready files.

Shared by tus uploads (``uploads``), Teams imports (``recording_import``) and the demo data.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable, Iterable

from sqlalchemy import ColumnElement, delete, insert, or_, select

from lms.archives import containers, durations, filetypes, reasons
from lms.archives.captions import CaptionError, Cue, TooManyCues, parse_vtt
from lms.archives.models import CAPTIONS, READY, REPLACED, VIDEO, ArchiveFile, TranscriptCue
from lms.archives.reasons import Reason
from lms.archives.storage import RangeReader, Storage
from lms.common import pdfcheck
from lms.common.timeutil import utcnow
from lms.courses.search import normalise_for_search
from lms.extensions import db

# Stored bytes are hashed in pieces of this size (bounded memory).
HASH_PIECE = 4 * 1024 * 1024

Reader = Callable[[int, int], bytes]


class ContentRejected(Exception):
    """Stored bytes that are not what they claim to be. ``reason`` is kept without a language
    (``lms.archives.reasons``); ``message`` puts it into the current one. ``status`` is the
    HTTP answer of a tus request refused for it."""

    def __init__(self, reason: Reason, status: int = 415):
        super().__init__(reason.code)
        self.reason = reason
        self.status = status

    @property
    def message(self) -> str:
        return self.reason.text()


def new_storage_key(archive_id: int) -> str:
    return f"archives/{int(archive_id)}/{uuid.uuid4().hex}"


def object_reader(storage: Storage, key: str) -> Reader:
    """``reader(start, length) -> bytes`` over a committed object."""

    def reader(start: int, length: int) -> bytes:
        return b"".join(storage.open_range(key, start, length))

    return reader


def sha256_of_object(storage: Storage, key: str) -> tuple[str, int]:
    """SHA-256 (hex) and size of a committed object, streamed in bounded memory."""
    digest = hashlib.sha256()
    size = 0
    for piece in storage.open_range(key):
        digest.update(piece)
        size += len(piece)
    return digest.hexdigest(), size


def inspect_content(filetype: filetypes.FileType, reader: Reader, size: int) -> tuple[int | None, list[Cue] | None]:
    """Deeper content checks per type; returns (duration seconds, caption cues). Raises
    ContentRejected (415) for a slide deck or captions file that cannot be read as one, and
    for captions with no cue (they would replace working captions with an empty track)."""
    if filetype is filetypes.PPTX:
        if not filetypes.confirm_pptx(RangeReader(lambda s, n: [reader(s, n)], size)):
            raise ContentRejected(Reason(reasons.PPTX_UNREADABLE))
        return None, None
    if filetype is filetypes.PDF:
        start = max(0, size - pdfcheck.TAIL_BYTES)
        if not pdfcheck.is_whole(reader(start, size - start)):
            raise ContentRejected(Reason(reasons.PDF_UNREADABLE))
        return None, None
    if filetype is filetypes.VTT:
        try:
            cues = parse_vtt(reader(0, size).decode("utf-8"))
        except TooManyCues as exc:
            raise ContentRejected(Reason(reasons.VTT_TOO_MANY_CUES, {"limit": exc.limit})) from None
        except (UnicodeDecodeError, CaptionError):
            raise ContentRejected(Reason(reasons.VTT_UNREADABLE)) from None
        if not cues:
            raise ContentRejected(Reason(reasons.VTT_NO_CUES))
        return None, cues
    if filetype.kind == VIDEO:
        return containers.header_duration(reader, size, filetype.code), None
    return None, None


def first_video_id(archive_id: int) -> int | None:
    """The archive's first ready video (the player's default, and the one captions that name
    no video belong to)."""
    return db.session.scalar(
        select(ArchiveFile.id)
        .where(ArchiveFile.archive_id == archive_id, ArchiveFile.kind == VIDEO, ArchiveFile.status == READY)
        .order_by(ArchiveFile.id)
        .limit(1)
    )


def ready_video_of(archive_id: int, video_id: int | None) -> ArchiveFile | None:
    """The ready video ``video_id`` if it is one of the archive's (None otherwise)."""
    if video_id is None:
        return None
    video = db.session.get(ArchiveFile, video_id)
    if video is None or video.archive_id != archive_id or video.kind != VIDEO or video.status != READY:
        return None
    return video


def add_file(archive_id: int, filetype: filetypes.FileType, filename: str, size: int, digest: str, key: str,
             duration: int | None, cues: Iterable[Cue] | None, graph_content_id: str | None = None,
             video_file_id: int | None = None) -> ArchiveFile:
    """The row of a verified, ready file (its captions' cues stored with it). Flushes.

    Captions belong to the video ``video_file_id`` when it is a ready video of the archive,
    else to its first video (None: the archive has none yet).

    A video whose ``duration`` the container did not state is measured by the worker once
    the transaction commits (``lms.archives.durations``)."""
    if filetype.kind == CAPTIONS:
        chosen = ready_video_of(archive_id, video_file_id)
        video_file_id = chosen.id if chosen is not None else first_video_id(archive_id)
    else:
        video_file_id = None
    archive_file = ArchiveFile(
        archive_id=archive_id,
        kind=filetype.kind,
        filename=filetypes.with_extension(filename, filetype),
        content_type=filetype.content_type,
        size_bytes=size,
        sha256=digest,
        storage_key=key,
        status=READY,
        duration_seconds=duration,
        graph_content_id=graph_content_id,
        video_file_id=video_file_id,
        completed_at=utcnow(),
    )
    if filetype.kind == VIDEO and duration:
        archive_file.duration_checked_at = archive_file.completed_at
    db.session.add(archive_file)
    db.session.flush()
    if filetype.kind == VIDEO and not duration:
        archive_file.duration_seconds = None
        durations.measure_after_commit(archive_file.id)
    if cues is not None:
        _store_cues(archive_file, list(cues))
    return archive_file


def _store_cues(archive_file: ArchiveFile, cues: list[Cue]) -> None:
    # A newer captions file replaces the older ones of the same video (player and search);
    # one with no cue (an empty Teams transcript) replaces nothing. Captions that name no
    # video are the first video's.
    if not cues:
        return
    video_id = archive_file.video_file_id
    same_video: ColumnElement[bool] = ArchiveFile.video_file_id.is_(None)
    if video_id is not None:
        same_video = ArchiveFile.video_file_id == video_id
        if video_id == first_video_id(archive_file.archive_id):
            same_video = or_(same_video, ArchiveFile.video_file_id.is_(None))
    older = db.session.scalars(
        select(ArchiveFile).where(
            ArchiveFile.archive_id == archive_file.archive_id,
            ArchiveFile.kind == CAPTIONS,
            ArchiveFile.status == READY,
            ArchiveFile.id != archive_file.id,
            same_video,
        )
    ).all()
    for old in older:
        old.status = REPLACED
        db.session.execute(delete(TranscriptCue).where(TranscriptCue.archive_file_id == old.id))
    db.session.execute(
        insert(TranscriptCue),
        [
            {
                "archive_file_id": archive_file.id,
                "start_ms": cue.start_ms,
                "end_ms": cue.end_ms,
                "speaker": cue.speaker,
                "text": cue.text,
                "search_text": normalise_for_search(f"{cue.speaker} {cue.text}" if cue.speaker else cue.text),
            }
            for cue in cues
        ],
    )
