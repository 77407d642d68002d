"""The length of a video whose container does not state it, measured by the worker.

A verified upload or an imported recording whose headers give no duration (browser and
screen recordings: WebM without a Duration; fragmented MP4: ``mvhd`` duration 0) becomes
READY with ``duration_seconds`` None: playable, but viewing it counts nothing
(``lms.archives.progress``) and the management page says why. Once the row is committed,
``measure_duration`` runs in the worker: it reads the stored file for its last timestamps
(``lms.archives.containers.scanned_duration``) with no transaction open, then records the
length — or, when the file does not tell, that it could not be measured
(``duration_checked_at`` set, the length still None). A job lost with a crashed worker is
handed over again by the periodic task (``measure_stalled``).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from flask_babel import gettext as _
from sqlalchemy import select

from lms.archives import containers, tasks
from lms.archives.filetypes import TYPES
from lms.archives.models import READY, VIDEO, ArchiveFile
from lms.archives.storage import StorageError, get_storage
from lms.common.database import begin_write
from lms.common.jobs import hand_over_after_commit
from lms.common.timeutil import utcnow
from lms.extensions import db

logger = logging.getLogger(__name__)

# A measurement not finished after this long is handed to the worker again (a lost job).
MEASURE_RETRY_AFTER = timedelta(minutes=15)

KNOWN, MEASURING, UNMEASURABLE = "known", "measuring", "unmeasurable"


def duration_state(archive_file: ArchiveFile) -> str:
    """KNOWN (the length counts), MEASURING (the worker has yet to read it) or UNMEASURABLE."""
    if archive_file.duration_seconds:
        return KNOWN
    return UNMEASURABLE if archive_file.duration_checked_at is not None else MEASURING


def duration_notice(archive_file: ArchiveFile) -> str | None:
    """Why viewing this video counts nothing yet (None when it counts), for the trainer."""
    if archive_file.kind != VIDEO:
        return None
    state = duration_state(archive_file)
    if state == MEASURING:
        return _("ファイルに再生時間が記録されていないため、サーバーで動画の長さを確認しています。"
                 "確認が終わるまで、この動画の視聴は記録されず、修了の判定にも数えられません。")
    if state == UNMEASURABLE:
        return _("動画の長さを確認できませんでした。この動画の視聴は記録されず、修了の判定にも数えられません。"
                 "動画を MP4 または WebM で書き出し直して、もう一度アップロードしてください。")
    return None


def viewer_notice(archive_file: ArchiveFile) -> str | None:
    """Why viewing this video is not recorded (None when it is), for the viewer."""
    state = duration_state(archive_file)
    if state == MEASURING:
        return _("この動画の長さをサーバーで確認しています。確認が終わるまで、視聴した時間は記録されません。")
    if state == UNMEASURABLE:
        return _("この動画の長さを確認できないため、視聴した時間は記録されません。研修の担当者に連絡してください。")
    return None


def needs_measuring(archive_file: ArchiveFile) -> bool:
    return (archive_file.kind == VIDEO and archive_file.status == READY
            and archive_file.duration_seconds is None and archive_file.duration_checked_at is None)


def measure_after_commit(file_id: int) -> None:
    """Hand the file to the worker once the current transaction commits (inline in tests)."""
    hand_over_after_commit(lambda: tasks.measure_duration_task(file_id), key=("archives.measure_duration", file_id),
                           inline=True, what=f"the measurement of archive file {file_id}")


def _code_of(archive_file: ArchiveFile) -> str:
    return next((t.code for t in TYPES.values() if t.content_type == archive_file.content_type), "")


def measure_duration(file_id: int, now: datetime | None = None) -> int | None:
    """The worker's measurement of a video without a stated length: read the stored file
    for its last timestamps, then record the length (or that it could not be found).
    Idempotent; commits. Returns the file's length afterwards (None: unknown)."""
    archive_file = db.session.get(ArchiveFile, file_id)
    if archive_file is None or not needs_measuring(archive_file):
        duration = archive_file.duration_seconds if archive_file is not None else None
        db.session.commit()
        return duration
    key, size, code = archive_file.storage_key, archive_file.size_bytes, _code_of(archive_file)
    db.session.commit()  # no transaction stays open while the file is read
    storage = get_storage()
    try:
        seconds = containers.scanned_duration(
            lambda start, length: b"".join(storage.open_range(key, start, length)), size, code)
    except (OSError, StorageError):
        logger.exception("archive file %s: the stored file could not be read; measured again later", file_id)
        return None
    begin_write()
    query = select(ArchiveFile).where(ArchiveFile.id == file_id).with_for_update()
    archive_file = db.session.execute(query).scalar_one_or_none()
    if archive_file is not None and needs_measuring(archive_file):
        archive_file.duration_seconds = seconds
        archive_file.duration_checked_at = now or utcnow()
        if seconds is None:
            logger.warning("archive file %s: no length found in the container", file_id)
    duration = archive_file.duration_seconds if archive_file is not None else None
    db.session.commit()
    return duration


def measure_stalled(now: datetime | None = None) -> int:
    """Hand measurements that should long be over to the worker again (a job lost with a
    crashed worker, files from before measurements existed); returns how many."""
    now = now or utcnow()
    stalled = db.session.scalars(
        select(ArchiveFile.id).where(
            ArchiveFile.kind == VIDEO, ArchiveFile.status == READY, ArchiveFile.duration_seconds.is_(None),
            ArchiveFile.duration_checked_at.is_(None), ArchiveFile.created_at <= now - MEASURE_RETRY_AFTER,
        )
    ).all()
    for file_id in stalled:
        measure_after_commit(file_id)
    return len(stalled)
