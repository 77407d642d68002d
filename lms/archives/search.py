"""Transcript search: caption cues containing a word, in archives the user may watch."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, or_, select

from lms.archives.access import can_view, ready_files, visible_archives
from lms.archives.models import CAPTIONS, READY, VIDEO, Archive, ArchiveFile, TranscriptCue
from lms.common.database import like_escaped
from lms.courses.search import search_terms
from lms.extensions import db


@dataclass
class SearchHit:
    archive: Archive
    archive_file_id: int
    start_ms: int
    speaker: str
    text: str
    # The video the captions belong to (the link plays it); None: the archive has no video.
    video_id: int | None = None

    @property
    def start_seconds(self) -> int:
        return self.start_ms // 1000


# More words than this in one query are left out (a cue is a sentence or two).
MAX_TERMS = 8


def search_transcripts(user, query: str, archive: Archive | None = None, limit: int = 100) -> list[SearchHit]:
    """Caption cues containing every word of ``query`` (Japanese substrings, each word or one
    of its synonyms, as the catalogue reads a query) in archives the user may watch.

    Short words (< 3 characters) are a plain substring match; longer ones use the
    pg_trgm GIN index on PostgreSQL (same SQL: ILIKE is served by the trigram index)."""
    terms = search_terms(query or "")[:MAX_TERMS]
    if not terms:
        return []
    archives = [archive] if archive is not None else visible_archives(user)
    archives = [a for a in archives if can_view(user, a)]
    by_id = {a.id: a for a in archives}
    if not by_id:
        return []
    condition = and_(*(or_(*(_contains(word) for word in words)) for words in terms))
    rows = db.session.execute(
        select(TranscriptCue, ArchiveFile.archive_id, ArchiveFile.video_file_id)
        .join(ArchiveFile, ArchiveFile.id == TranscriptCue.archive_file_id)
        .where(ArchiveFile.archive_id.in_(by_id), ArchiveFile.status == READY, ArchiveFile.kind == CAPTIONS,
               condition)
        .order_by(ArchiveFile.archive_id.desc(), ArchiveFile.video_file_id, TranscriptCue.start_ms)
        .limit(limit)
    ).all()
    return [SearchHit(by_id[aid], cue.archive_file_id, cue.start_ms, cue.speaker, cue.text,
                      video_id if video_id is not None else _first_video_id(by_id[aid]))
            for cue, aid, video_id in rows]


def _first_video_id(archive: Archive) -> int | None:
    videos = ready_files(archive, VIDEO)
    return videos[0].id if videos else None


def _contains(word: str):
    pattern = f"%{like_escaped(word)}%"
    column = TranscriptCue.search_text
    if db.engine.dialect.name == "postgresql" and len(word) >= 3:
        return column.ilike(pattern, escape="\\")
    return column.like(pattern, escape="\\")


def cues_of(archive_file: ArchiveFile | None) -> list[TranscriptCue]:
    if archive_file is None:
        return []
    return list(
        db.session.scalars(
            select(TranscriptCue).where(TranscriptCue.archive_file_id == archive_file.id).order_by(TranscriptCue.start_ms)
        )
    )
