"""Transcript search: caption cues containing a word, in archives the user may watch."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from lms.archives.access import can_view, visible_archives
from lms.archives.models import CAPTIONS, READY, Archive, ArchiveFile, TranscriptCue
from lms.common.database import like_escaped
from lms.courses.search import normalise_for_search
from lms.extensions import db


@dataclass
class SearchHit:
    archive: Archive
    archive_file_id: int
    start_ms: int
    speaker: str
    text: str

    @property
    def start_seconds(self) -> int:
        return self.start_ms // 1000


def search_transcripts(user, query: str, archive: Archive | None = None, limit: int = 100) -> list[SearchHit]:
    """Caption cues containing ``query`` (Japanese substring) in archives the user may watch.

    Short queries (< 3 characters) are a plain substring match; longer ones use the
    pg_trgm GIN index on PostgreSQL (same SQL: ILIKE is served by the trigram index)."""
    needle = normalise_for_search(query or "").strip()
    if not needle:
        return []
    archives = [archive] if archive is not None else visible_archives(user)
    archives = [a for a in archives if can_view(user, a)]
    by_id = {a.id: a for a in archives}
    if not by_id:
        return []
    pattern = f"%{like_escaped(needle)}%"
    column = TranscriptCue.search_text
    condition = column.ilike(pattern, escape="\\") if db.engine.dialect.name == "postgresql" and len(needle) >= 3 \
        else column.like(pattern, escape="\\")
    rows = db.session.execute(
        select(TranscriptCue, ArchiveFile.archive_id)
        .join(ArchiveFile, ArchiveFile.id == TranscriptCue.archive_file_id)
        .where(ArchiveFile.archive_id.in_(by_id), ArchiveFile.status == READY, ArchiveFile.kind == CAPTIONS,
               condition)
        .order_by(ArchiveFile.archive_id.desc(), TranscriptCue.start_ms)
        .limit(limit)
    ).all()
    return [SearchHit(by_id[aid], cue.archive_file_id, cue.start_ms, cue.speaker, cue.text) for cue, aid in rows]


def cues_of(archive_file: ArchiveFile | None) -> list[TranscriptCue]:
    if archive_file is None:
        return []
    return list(
        db.session.scalars(
            select(TranscriptCue).where(TranscriptCue.archive_file_id == archive_file.id).order_by(TranscriptCue.start_ms)
        )
    )
