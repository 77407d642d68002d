"""Recorded archives of a course: files, uploads, captions and viewing progress."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.extensions import Model

# Publication state
DRAFT = "draft"
PUBLISHED = "published"
WITHDRAWN = "withdrawn"

# Audience
AUDIENCE_ENROLLEES = "enrollees"
AUDIENCE_ELIGIBLE = "eligible"
AUDIENCE_MUNICIPALITIES = "municipalities"

# File kinds
VIDEO = "video"
SLIDES = "slides"
CAPTIONS = "captions"

# File status
UPLOADING = "uploading"
# Upload sessions only: every byte received and stored; the SHA-256 is being checked by a
# background job (lms.archives.tasks). The file appears (READY) once it passes.
VERIFYING = "verifying"
READY = "ready"
FAILED = "failed"
# A captions file superseded by a newer one, or a file the trainer removed (bytes deleted).
REPLACED = "replaced"
REMOVED = "removed"
# Upload sessions only: the part expired unfinished, or the uploader cancelled it.
EXPIRED = "expired"
CANCELLED = "cancelled"


class Archive(Model):
    __tablename__ = "archive"

    id: Mapped[int] = mapped_column(primary_key=True)
    course_id: Mapped[int] = mapped_column(ForeignKey("course.id"), index=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("training_session.id"))
    title: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(10), default=DRAFT)
    available_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    available_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    audience: Mapped[str] = mapped_column(String(16), default=AUDIENCE_ELIGIBLE)
    # Teams recording this archive was imported from (imported once).
    source: Mapped[str] = mapped_column(String(10), default="upload")  # upload, teams
    graph_recording_id: Mapped[str | None] = mapped_column(String(512), unique=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("user_account.id"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    course = relationship("Course")
    session = relationship("TrainingSession")
    files: Mapped[list[ArchiveFile]] = relationship(back_populates="archive", order_by="ArchiveFile.id")
    municipalities: Mapped[list[ArchiveMunicipality]] = relationship(
        back_populates="archive", cascade="all, delete-orphan"
    )


class ArchiveMunicipality(Model):
    __tablename__ = "archive_municipality"

    archive_id: Mapped[int] = mapped_column(ForeignKey("archive.id", ondelete="CASCADE"), primary_key=True)
    municipality_id: Mapped[int] = mapped_column(ForeignKey("municipality.id"), primary_key=True)

    archive: Mapped[Archive] = relationship(back_populates="municipalities")


class ArchiveFile(Model):
    __tablename__ = "archive_file"

    id: Mapped[int] = mapped_column(primary_key=True)
    archive_id: Mapped[int] = mapped_column(ForeignKey("archive.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    sha256: Mapped[str] = mapped_column(String(64), default="")
    storage_key: Mapped[str] = mapped_column(String(500), unique=True)
    status: Mapped[str] = mapped_column(String(10), default=UPLOADING)
    # A video's length in whole seconds, the server's own figure: from the container's headers,
    # or measured by the worker from the last timestamps (lms.archives.durations). None: not
    # known — being measured while ``duration_checked_at`` is None, unmeasurable after.
    duration_seconds: Mapped[int | None] = mapped_column()
    duration_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    language: Mapped[str] = mapped_column(String(10), default="ja")
    graph_content_id: Mapped[str | None] = mapped_column(String(512), unique=True)
    # Captions only: the video of the same archive they belong to (its player's track, its
    # chapters, the caption search's link to it). None: an archive that had no video when they
    # came; they are then its first video's (``access.captions_for``).
    video_file_id: Mapped[int | None] = mapped_column(ForeignKey("archive_file.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    archive: Mapped[Archive] = relationship(back_populates="files")


class UploadSession(Model):
    """A resumable (tus) upload in progress; the part expires if not finished."""

    __tablename__ = "upload_session"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    archive_id: Mapped[int] = mapped_column(ForeignKey("archive.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))
    filename: Mapped[str] = mapped_column(String(255))
    declared_length: Mapped[int] = mapped_column(BigInteger)
    received_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    expected_sha256: Mapped[str] = mapped_column(String(64), default="")
    # Type recognised from the first bytes (lms.archives.filetypes code), empty until then.
    file_type: Mapped[str] = mapped_column(String(10), default="")
    storage_key: Mapped[str] = mapped_column(String(500))
    archive_file_id: Mapped[int | None] = mapped_column(ForeignKey("archive_file.id"))
    metadata_json: Mapped[dict] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("user_account.id"))
    status: Mapped[str] = mapped_column(String(10), default=UPLOADING, index=True)
    # Why it failed, was cancelled or expired, kept without a language: a code of
    # lms.archives.reasons and its parameters, put into words in the reader's language
    # (uploads.failure_text). ``error`` is the free text of rows from before the codes (written
    # in the uploader's language then), shown as it is; new rows leave it empty.
    error_code: Mapped[str] = mapped_column(String(40), default="", server_default="")
    error_params: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str] = mapped_column(Text, default="")
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class TranscriptCue(Model):
    """One caption cue, for transcript search and chapters."""

    __tablename__ = "transcript_cue"
    __table_args__ = (
        Index("ix_transcript_cue_file_start", "archive_file_id", "start_ms"),
        # Substring search of 3+ characters (Japanese) on PostgreSQL; needs the pg_trgm extension.
        Index(
            "ix_transcript_cue_search_trgm",
            "search_text",
            postgresql_using="gin",
            postgresql_ops={"search_text": "gin_trgm_ops"},
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    archive_file_id: Mapped[int] = mapped_column(ForeignKey("archive_file.id", ondelete="CASCADE"))
    start_ms: Mapped[int] = mapped_column()
    end_ms: Mapped[int] = mapped_column()
    speaker: Mapped[str] = mapped_column(String(200), default="")
    text: Mapped[str] = mapped_column(Text)
    # The folded copy of speaker and text for substring search (lms.courses.search).
    search_text: Mapped[str] = mapped_column(Text, default="")


class ViewingProgress(Model):
    """Unique seconds of a video actually watched by one staff member (credited against the
    learner's ``ViewingClock``; the video's length is ``ArchiveFile.duration_seconds``)."""

    __tablename__ = "viewing_progress"
    __table_args__ = (
        UniqueConstraint("staff_member_id", "archive_file_id"),
        # The integration API's syncs ((updated_at, id) pages).
        Index("ix_viewing_progress_updated", "updated_at", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    staff_member_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id"), index=True)
    archive_file_id: Mapped[int] = mapped_column(ForeignKey("archive_file.id"), index=True)
    # Merged watched intervals in seconds: [[start, end], ...]
    intervals: Mapped[list] = mapped_column(JSON, default=list)
    watched_seconds: Mapped[int] = mapped_column(default=0)
    last_position: Mapped[int] = mapped_column(default=0)
    last_report_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_report_id: Mapped[str] = mapped_column(String(64), default="")
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    staff_member = relationship("StaffMember")
    archive_file = relationship("ArchiveFile")


class ViewingClock(Model):
    """One learner's wall-clock budget for viewing credit, shared by every video, tab and
    archive (lms.archives.progress): credit is granted up to the wall-clock time since
    ``credited_until``, which then moves on by what was credited."""

    __tablename__ = "viewing_clock"

    staff_member_id: Mapped[int] = mapped_column(ForeignKey("staff_member.id"), primary_key=True)
    credited_until: Mapped[datetime] = mapped_column(UTCDateTime())
