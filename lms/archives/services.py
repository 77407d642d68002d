"""Archive editing and management by trainers: create, edit, publish, withdraw, remove a file.

The other parts of the area live beside this module: ``access`` (who may manage and watch),
``uploads`` (tus), ``recording_import`` (Teams recordings and transcripts), ``progress``
(viewing progress) and ``search`` (transcript search).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import delete, func, select

from lms.archives.access import can_manage, captions_video_id, ready_files, require_manager
from lms.archives.durations import MEASURING, UNMEASURABLE, duration_state
from lms.archives.models import (
    AUDIENCE_ELIGIBLE,
    AUDIENCE_ENROLLEES,
    AUDIENCE_MUNICIPALITIES,
    CAPTIONS,
    DRAFT,
    PUBLISHED,
    READY,
    REMOVED,
    VERIFYING,
    VIDEO,
    WITHDRAWN,
    Archive,
    ArchiveFile,
    ArchiveMunicipality,
    TranscriptCue,
    UploadSession,
)
from lms.archives.storage import get_storage
from lms.audit.services import record_action
from lms.common.database import lock_fresh
from lms.common.errors import Conflict, InvalidInput, NotAllowed
from lms.common.i18n import join_list
from lms.common.signals import archive_part_removed
from lms.common.timeutil import utcnow
from lms.courses.models import Course, TrainingSession
from lms.extensions import db


@dataclass
class ArchiveInput:
    course_id: int
    session_id: int | None
    title: str
    description: str
    available_from: datetime | None
    available_until: datetime | None
    audience: str
    municipality_ids: list[int]


def _apply(archive: Archive, data: ArchiveInput, actor) -> None:
    course = db.session.get(Course, data.course_id)
    if course is None or not can_manage(actor, course=course):
        raise NotAllowed(_("この研修のアーカイブを作成する権限がありません。"))
    if data.session_id is not None:
        session = db.session.get(TrainingSession, data.session_id)
        if session is None or session.course_id != course.id:
            raise InvalidInput(_("研修回は選択した研修のものを指定してください。"), field="session_id")
    if data.available_from and data.available_until and data.available_until <= data.available_from:
        raise InvalidInput(_("公開終了は公開開始より後の日時にしてください。"), field="available_until")
    if data.audience not in (AUDIENCE_ENROLLEES, AUDIENCE_ELIGIBLE, AUDIENCE_MUNICIPALITIES):
        raise InvalidInput(_("視聴対象を選択してください。"), field="audience")
    if data.audience == AUDIENCE_MUNICIPALITIES and not data.municipality_ids:
        raise InvalidInput(_("視聴を許可する区市町村を1つ以上選択してください。"), field="municipality_ids")
    archive.course_id = course.id
    archive.course = course
    archive.session_id = data.session_id
    archive.title = data.title.strip()
    archive.description = data.description.strip()
    archive.available_from = data.available_from
    archive.available_until = data.available_until
    archive.audience = data.audience
    wanted = set(data.municipality_ids) if data.audience == AUDIENCE_MUNICIPALITIES else set()
    archive.municipalities = [m for m in archive.municipalities if m.municipality_id in wanted] + [
        ArchiveMunicipality(municipality_id=mid)
        for mid in sorted(wanted - {m.municipality_id for m in archive.municipalities})
    ]


def create_archive(actor, data: ArchiveInput) -> Archive:
    archive = Archive(created_by_id=actor.id, status=DRAFT, source="upload")
    _apply(archive, data, actor)
    db.session.add(archive)
    db.session.flush()
    record_action(actor, "archive.create", "archive", archive.id, None, title=archive.title)
    return archive


def update_archive(actor, archive: Archive, data: ArchiveInput) -> Archive:
    require_manager(actor, archive)
    _apply(archive, data, actor)
    record_action(actor, "archive.update", "archive", archive.id, None, title=archive.title)
    return archive


def verifying_uploads(archive: Archive) -> int:
    """How many finished uploads of the archive are still being verified (SHA-256)."""
    return db.session.scalar(
        select(func.count()).select_from(UploadSession)
        .where(UploadSession.archive_id == archive.id, UploadSession.status == VERIFYING)
    ) or 0


def publish_archive(actor, archive: Archive) -> Archive:
    """Publish a draft or withdrawn archive. Refused (Conflict) while an uploaded file is still
    being verified: what viewers get is only ever verified bytes."""
    require_manager(actor, archive)
    lock_fresh(archive)  # pressed twice at once: published (and recorded) once
    if verifying_uploads(archive):
        raise Conflict(_("アップロードしたファイルを検証しています。検証が終わってから公開してください。"))
    files = ready_files(archive)
    if not files:
        raise InvalidInput(_("公開するには、アップロードが完了したファイルが1つ以上必要です。"))
    _refuse_videos_without_length([f for f in files if f.kind == VIDEO])
    if archive.status == PUBLISHED:
        return archive
    archive.status = PUBLISHED
    archive.published_at = utcnow()
    archive.withdrawn_at = None
    record_action(actor, "archive.publish", "archive", archive.id, None, title=archive.title)
    return archive


def _refuse_videos_without_length(videos: list[ArchiveFile]) -> None:
    """Every video of a published archive needs a length that was read: viewing is credited
    against it, and the archive is completed only once every video is
    (``progress.archive_completed_at``). A file that is only a video's first bytes (its magic
    number) passes the type check, but neither its headers nor its timestamps give a length,
    and no browser plays it. While the worker is still measuring, publishing waits for it, as
    it waits for the verification."""
    states = [duration_state(video) for video in videos]
    if MEASURING in states:
        raise Conflict(_("動画の長さを確認しています。確認が終わってから公開してください。"))
    unreadable = [video.filename for video, state in zip(videos, states, strict=True) if state == UNMEASURABLE]
    if unreadable:
        raise InvalidInput(_("長さを読み取れない動画があるため公開できません（%(names)s）。動画ファイルが壊れているか、"
                             "最後まで書き出されていない可能性があります。MP4 または WebM で書き出し直してアップロードし直すか、"
                             "その動画を削除してください。", names=join_list(unreadable)))


def withdraw_archive(actor, archive: Archive) -> Archive:
    require_manager(actor, archive)
    lock_fresh(archive)
    if archive.status != PUBLISHED:
        raise InvalidInput(_("公開中のアーカイブではありません。"))
    archive.status = WITHDRAWN
    archive.withdrawn_at = utcnow()
    record_action(actor, "archive.withdraw", "archive", archive.id, None, title=archive.title)
    return archive


def captions_of_video(video: ArchiveFile) -> list[ArchiveFile]:
    """The ready captions that belong to ``video`` (those naming it; and, for the archive's
    first video, those naming none): they go with it when it is removed."""
    if video.kind != VIDEO or video.status != READY:
        return []
    archive = video.archive
    return [f for f in ready_files(archive, CAPTIONS) if captions_video_id(archive, f) == video.id]


def remove_file(actor, archive_file: ArchiveFile) -> None:
    """Remove a file (its bytes deleted). A video's captions are removed with it: they would
    show on no video (or, worse, on another one)."""
    require_manager(actor, archive_file.archive)
    lock_fresh(archive_file)
    if archive_file.status == REMOVED:
        return
    captions = captions_of_video(archive_file)
    for f in [archive_file, *captions]:
        f.status = REMOVED
        db.session.execute(delete(TranscriptCue).where(TranscriptCue.archive_file_id == f.id))
        get_storage().delete(f.storage_key)
    details = {"captions_removed": [c.filename for c in captions]} if captions else {}
    record_action(actor, "archive.file_remove", "archive_file", archive_file.id, None,
                  archive_id=archive_file.archive_id, filename=archive_file.filename, **details)
    if archive_file.kind == VIDEO:
        archive_part_removed.send(None, course_id=archive_file.archive.course_id, archive_id=archive_file.archive_id)


def session_choices(course_ids: list[int]) -> list[TrainingSession]:
    """The sessions of these courses, in time order (the archive form's session list)."""
    if not course_ids:
        return []
    return list(db.session.scalars(
        select(TrainingSession).where(TrainingSession.course_id.in_(course_ids)).order_by(TrainingSession.starts_at)
    ))
