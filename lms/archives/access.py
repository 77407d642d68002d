"""Who may manage and who may watch an archive, and the one step every viewer route begins with:
``viewable_file_or_refusal`` (load the archive and/or file, check access, or say why not). An
archive outside the user's audience is answered like one that does not exist (404).

The check runs on every request for a page, a file, a byte range, a playback link or a progress
report: withdrawal and the end of the availability window take effect at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from flask_babel import gettext as _
from sqlalchemy import or_, select
from sqlalchemy.orm import joinedload

from lms.archives.models import (
    AUDIENCE_ELIGIBLE,
    AUDIENCE_ENROLLEES,
    AUDIENCE_MUNICIPALITIES,
    CAPTIONS,
    PUBLISHED,
    READY,
    VIDEO,
    WITHDRAWN,
    Archive,
    ArchiveFile,
)
from lms.auth.models import PLATFORM_ADMIN, TRAINER
from lms.common.errors import NotAllowed, NotFound
from lms.common.timeutil import as_utc, utcnow
from lms.courses.models import Course, TrainingSession
from lms.enrollment.models import CONFIRMED, Enrollment
from lms.extensions import db

# ---------------------------------------------------------------- managing


def can_manage(user, archive: Archive | None = None, course: Course | None = None) -> bool:
    """Platform admins manage every archive; trainers those of the courses they own."""
    if user is None or not getattr(user, "is_authenticated", False):
        return False
    if user.has_role(PLATFORM_ADMIN):
        return True
    if not user.has_role(TRAINER):
        return False
    course = course or (archive.course if archive is not None else None)
    if course is not None and course.owner_id == user.id:
        return True
    return archive is not None and archive.created_by_id == user.id


def manageable_courses(user) -> list[Course]:
    query = select(Course).order_by(Course.title)
    if not user.has_role(PLATFORM_ADMIN):
        query = query.where(Course.owner_id == user.id)
    return list(db.session.scalars(query))


def manageable_archives(user) -> list[Archive]:
    query = select(Archive).order_by(Archive.created_at.desc(), Archive.id.desc())
    if not user.has_role(PLATFORM_ADMIN):
        owned = select(Course.id).where(Course.owner_id == user.id)
        query = query.where(or_(Archive.course_id.in_(owned), Archive.created_by_id == user.id))
    return list(db.session.scalars(query))


def get_manageable(user, archive_id: int) -> Archive:
    archive = db.session.get(Archive, archive_id)
    if archive is None:
        raise NotFound(_("アーカイブが見つかりません。"))
    if not can_manage(user, archive):
        raise NotAllowed(_("このアーカイブを管理する権限がありません。"))
    return archive


def require_manager(user, archive: Archive) -> None:
    if not can_manage(user, archive):
        raise NotAllowed(_("このアーカイブを管理する権限がありません。"))


# ---------------------------------------------------------------- watching


def view_refusal(user, archive: Archive, now: datetime | None = None) -> str | None:
    """None when ``user`` may watch ``archive`` now; otherwise the Japanese reason."""
    if user is None or not getattr(user, "is_authenticated", False):
        return _("サインインしてください。")
    if can_manage(user, archive):
        return None
    if archive.status == WITHDRAWN:
        return _("このアーカイブは公開を終了しました。")
    if archive.status != PUBLISHED:
        return _("このアーカイブは公開されていません。")
    now = now or utcnow()
    opens, closes = as_utc(archive.available_from), as_utc(archive.available_until)
    if opens is not None and opens > now:
        return _("このアーカイブの公開期間はまだ始まっていません。")
    if closes is not None and closes <= now:
        return _("このアーカイブの公開期間は終了しました。")
    if user.has_role(TRAINER):
        return None
    if not _in_audience(user, archive):
        return _("このアーカイブの視聴対象ではありません。")
    return None


def can_view(user, archive: Archive, now: datetime | None = None) -> bool:
    return view_refusal(user, archive, now) is None


def _staff_municipality(user) -> int | None:
    staff = getattr(user, "staff_member", None)
    if staff is not None:
        return staff.municipality_id
    return user.municipality_id


def _in_audience(user, archive: Archive) -> bool:
    municipality_id = _staff_municipality(user)
    if archive.audience == AUDIENCE_ENROLLEES:
        staff = getattr(user, "staff_member", None)
        if staff is None:
            return False
        sessions = select(TrainingSession.id).where(TrainingSession.course_id == archive.course_id)
        hit = db.session.scalar(
            select(Enrollment.id).where(
                Enrollment.staff_member_id == staff.id,
                Enrollment.session_id.in_(sessions),
                Enrollment.status == CONFIRMED,
            ).limit(1)
        )
        return hit is not None
    if archive.audience == AUDIENCE_MUNICIPALITIES:
        return municipality_id is not None and any(
            row.municipality_id == municipality_id for row in archive.municipalities
        )
    if archive.audience == AUDIENCE_ELIGIBLE:
        return archive.course.is_open_to(municipality_id)
    return False


def visible_archives(user, now: datetime | None = None) -> list[Archive]:
    """Archives ``user`` may watch now, newest first."""
    now = now or utcnow()
    query = (
        select(Archive)
        .where(
            Archive.status == PUBLISHED,
            or_(Archive.available_from.is_(None), Archive.available_from <= now),
            or_(Archive.available_until.is_(None), Archive.available_until > now),
        )
        .order_by(Archive.published_at.desc(), Archive.id.desc())
    )
    return [a for a in db.session.scalars(query) if can_view(user, a, now)]


def ready_files(archive: Archive, kind: str | None = None) -> list[ArchiveFile]:
    return [f for f in archive.files if f.status == READY and (kind is None or f.kind == kind)]


def captions_video_id(archive: Archive, captions: ArchiveFile) -> int | None:
    """The id of the video ``captions`` belong to: the one they name, else (captions that came
    when the archive had no video) its first video; None without a video."""
    if captions.video_file_id is not None:
        return captions.video_file_id
    videos = ready_files(archive, VIDEO)
    return videos[0].id if videos else None


def captions_for(archive: Archive, video: ArchiveFile | None) -> ArchiveFile | None:
    """The current captions of ``video`` (the newest ready ones that belong to it); with no
    video, those of an archive that has none (its transcript)."""
    files = ready_files(archive, CAPTIONS)
    if video is None:
        files = [f for f in files if f.video_file_id is None]
    else:
        files = [f for f in files if captions_video_id(archive, f) == video.id]
    return files[-1] if files else None


@dataclass(frozen=True)
class Refusal:
    """Why a viewer route answers no: ``status`` 404 (nothing there, or nothing the user may know
    of) or 403 (known to the user, but not watchable now: withdrawn, outside its window)."""

    status: int
    message: str


@dataclass(frozen=True)
class Viewable:
    archive: Archive
    archive_file: ArchiveFile | None


def viewable_file_or_refusal(user, *, archive_id: int | None = None, file_id: int | None = None) -> Viewable | Refusal:
    """The archive (and, with ``file_id``, its ready file) ``user`` may watch now, or a Refusal.

    With both ids the file must belong to the archive. The archive is looked at first, so that
    someone refused the archive learns nothing about its files. One query for file, archive and
    course when a file is asked for (this runs for every range request of a video).
    """
    archive: Archive | None = None
    archive_file: ArchiveFile | None = None
    if file_id is not None:
        archive_file = db.session.get(
            ArchiveFile, file_id, options=[joinedload(ArchiveFile.archive).joinedload(Archive.course)]
        )
    if archive_file is not None and archive_id in (None, archive_file.archive_id):
        archive = archive_file.archive
    elif archive_id is not None:
        archive = db.session.get(Archive, archive_id)
        archive_file = None
    if archive is None:
        missing = _("アーカイブが見つかりません。") if file_id is None else _("ファイルが見つかりません。")
        return Refusal(404, missing)
    reason = view_refusal(user, archive)
    if reason:
        if not may_know_of(user, archive):  # answered as if there were none
            return Refusal(404, _("アーカイブが見つかりません。") if file_id is None else _("ファイルが見つかりません。"))
        return Refusal(403, reason)
    if file_id is not None and (archive_file is None or archive_file.status != READY):
        return Refusal(404, _("ファイルが見つかりません。"))
    return Viewable(archive, archive_file)


def may_know_of(user, archive: Archive) -> bool:
    """Whether ``user`` may learn that ``archive`` exists, and so why they cannot watch it now
    (withdrawn, outside its window): its managers, and once it was published, trainers and its
    audience. Anyone else is answered as for an id that names nothing."""
    if not getattr(user, "is_authenticated", False):
        return False
    if can_manage(user, archive):
        return True
    if archive.status not in (PUBLISHED, WITHDRAWN):
        return False
    return user.has_role(TRAINER) or _in_audience(user, archive)
