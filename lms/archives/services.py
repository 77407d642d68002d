"""Recorded archives: who may manage and view them, uploads, imports, captions, viewing progress, search.

Contract for the Teams (Graph) area:

* ``import_recording(session_id, recording_id, chunks, filename, content_type, size, actor=None, *, run=None) -> Archive``
* ``attach_transcript(archive_id, vtt_text, graph_content_id) -> ArchiveFile``
* ``sweep_import_files(live_runs) -> list[str]`` (housekeeping after a killed import)

Both imports add rows to the current transaction (flushed, not committed: the caller
commits) and are idempotent (by ``recording_id`` / ``graph_content_id``).
``import_recording`` commits the caller's transaction before it downloads (no transaction
stays open during a download) and writes in a fresh one.
"""

from __future__ import annotations

import base64
import binascii
import errno
import hashlib
import math
import re
import uuid
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import BadRequest

from lms.archives import filetypes, hashstate
from lms.archives.captions import CaptionError, parse_vtt
from lms.archives.models import (
    AUDIENCE_ELIGIBLE,
    AUDIENCE_ENROLLEES,
    AUDIENCE_MUNICIPALITIES,
    CANCELLED,
    CAPTIONS,
    DRAFT,
    EXPIRED,
    FAILED,
    PUBLISHED,
    READY,
    REMOVED,
    REPLACED,
    UPLOADING,
    VIDEO,
    WITHDRAWN,
    Archive,
    ArchiveFile,
    ArchiveMunicipality,
    TranscriptCue,
    UploadSession,
    ViewingProgress,
)
from lms.archives.storage import RangeReader, StorageError, get_storage
from lms.audit.services import record_action
from lms.auth.models import PLATFORM_ADMIN, TRAINER
from lms.common.database import begin_write
from lms.common.errors import Conflict, InvalidInput, NotAllowed, NotFound
from lms.common.signals import viewing_changed
from lms.common.timeutil import as_utc, utcnow
from lms.courses.models import Course, TrainingSession
from lms.courses.search import normalise_for_search
from lms.enrollment.models import CONFIRMED, Enrollment
from lms.extensions import db

UPLOAD_TTL = timedelta(hours=24)
MAX_METADATA = 4096

# ======================================================================= access


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


def is_available(archive: Archive, now: datetime | None = None) -> bool:
    now = now or utcnow()
    if archive.status != PUBLISHED:
        return False
    if archive.available_from and as_utc(archive.available_from) > now:
        return False
    return not (archive.available_until and as_utc(archive.available_until) <= now)


def view_refusal(user, archive: Archive, now: datetime | None = None) -> str | None:
    """None when ``user`` may watch ``archive`` now; otherwise the Japanese reason.

    Checked on every request for a page, a file or a byte range."""
    if user is None or not getattr(user, "is_authenticated", False):
        return _("サインインしてください。")
    if can_manage(user, archive):
        return None
    if archive.status == WITHDRAWN:
        return _("このアーカイブは公開を終了しました。")
    if archive.status != PUBLISHED:
        return _("このアーカイブは公開されていません。")
    now = now or utcnow()
    if archive.available_from and as_utc(archive.available_from) > now:
        return _("このアーカイブの公開期間はまだ始まっていません。")
    if archive.available_until and as_utc(archive.available_until) <= now:
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


def get_viewable(user, archive_id: int) -> Archive:
    archive = db.session.get(Archive, archive_id)
    if archive is None:
        raise NotFound(_("アーカイブが見つかりません。"))
    reason = view_refusal(user, archive)
    if reason:
        raise NotAllowed(reason)
    return archive


def get_manageable(user, archive_id: int) -> Archive:
    archive = db.session.get(Archive, archive_id)
    if archive is None:
        raise NotFound(_("アーカイブが見つかりません。"))
    if not can_manage(user, archive):
        raise NotAllowed(_("このアーカイブを管理する権限がありません。"))
    return archive


def ready_files(archive: Archive, kind: str | None = None) -> list[ArchiveFile]:
    return [f for f in archive.files if f.status == READY and (kind is None or f.kind == kind)]


def current_captions(archive: Archive) -> ArchiveFile | None:
    files = ready_files(archive, CAPTIONS)
    return files[-1] if files else None


# ======================================================================= archives (trainers)


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
    if not can_manage(actor, archive):
        raise NotAllowed(_("このアーカイブを管理する権限がありません。"))
    _apply(archive, data, actor)
    record_action(actor, "archive.update", "archive", archive.id, None, title=archive.title)
    return archive


def publish_archive(actor, archive: Archive) -> Archive:
    if not can_manage(actor, archive):
        raise NotAllowed(_("このアーカイブを管理する権限がありません。"))
    if not ready_files(archive):
        raise InvalidInput(_("公開するには、アップロードが完了したファイルが1つ以上必要です。"))
    if archive.status == PUBLISHED:
        return archive
    archive.status = PUBLISHED
    archive.published_at = utcnow()
    archive.withdrawn_at = None
    record_action(actor, "archive.publish", "archive", archive.id, None, title=archive.title)
    return archive


def withdraw_archive(actor, archive: Archive) -> Archive:
    if not can_manage(actor, archive):
        raise NotAllowed(_("このアーカイブを管理する権限がありません。"))
    if archive.status != PUBLISHED:
        raise InvalidInput(_("公開中のアーカイブではありません。"))
    archive.status = WITHDRAWN
    archive.withdrawn_at = utcnow()
    record_action(actor, "archive.withdraw", "archive", archive.id, None, title=archive.title)
    return archive


def remove_file(actor, archive_file: ArchiveFile) -> None:
    if not can_manage(actor, archive_file.archive):
        raise NotAllowed(_("このアーカイブを管理する権限がありません。"))
    if archive_file.status == REMOVED:
        return
    archive_file.status = REMOVED
    db.session.execute(TranscriptCue.__table__.delete().where(TranscriptCue.archive_file_id == archive_file.id))
    get_storage().delete(archive_file.storage_key)
    record_action(actor, "archive.file_remove", "archive_file", archive_file.id, None,
                  archive_id=archive_file.archive_id, filename=archive_file.filename)


def new_storage_key(archive_id: int) -> str:
    return f"archives/{int(archive_id)}/{uuid.uuid4().hex}"


# ======================================================================= resumable uploads (tus)


class UploadRejected(Exception):
    """An upload refused for good (type, size, checksum). ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 422):
        super().__init__(message)
        self.message = message
        self.status = status


def max_upload_bytes() -> int:
    return int(current_app.config.get("LMS_MAX_UPLOAD_BYTES") or 5 * 1024**3)


def parse_tus_metadata(header: str | None) -> dict[str, str]:
    """``Upload-Metadata: key base64,key2 base64`` → dict (bad input raises InvalidInput)."""
    result: dict[str, str] = {}
    if not header:
        return result
    if len(header) > MAX_METADATA:
        raise InvalidInput(_("アップロードの情報が長すぎます。"))
    for pair in header.split(","):
        pair = pair.strip()
        if not pair:
            continue
        key, _sep, value = pair.partition(" ")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", key):
            raise InvalidInput(_("アップロードの情報の形式が正しくありません。"))
        try:
            result[key] = base64.b64decode(value.strip(), validate=True).decode("utf-8") if value else ""
        except (binascii.Error, UnicodeDecodeError):
            raise InvalidInput(_("アップロードの情報の形式が正しくありません。")) from None
    return result


def _human_size(n: int) -> str:
    if n >= 1024**3:
        return f"{n / 1024**3:.1f} GB"
    return f"{n / 1024**2:.0f} MB"


def create_upload(actor, archive: Archive, length: int, metadata: dict[str, str]) -> UploadSession:
    if not can_manage(actor, archive):
        raise NotAllowed(_("このアーカイブを管理する権限がありません。"))
    limit = max_upload_bytes()
    if length <= 0:
        raise InvalidInput(_("空のファイルはアップロードできません。"))
    if length > limit:
        raise UploadRejected(
            _("ファイルが大きすぎます（上限 %(limit)s）。", limit=_human_size(limit)), status=413
        )
    expected = (metadata.get("sha256") or "").strip().lower()
    if expected and not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise InvalidInput(_("SHA-256 の値が正しくありません。"))
    upload = UploadSession(
        id=str(uuid.uuid4()),
        archive_id=archive.id,
        kind="",
        filename=filetypes.sanitise_filename(metadata.get("filename", ""), "upload"),
        declared_length=length,
        received_bytes=0,
        expected_sha256=expected,
        storage_key=new_storage_key(archive.id),
        metadata_json={"filetype": (metadata.get("filetype") or "")[:100]},
        created_by_id=actor.id,
        status=UPLOADING,
        expires_at=utcnow() + UPLOAD_TTL,
    )
    db.session.add(upload)
    return upload


def get_upload(actor, upload_id: str) -> UploadSession:
    """An upload of the actor (or any, for platform admins) that is still usable."""
    try:
        uuid.UUID(upload_id)
    except ValueError:
        raise NotFound(_("アップロードが見つかりません。")) from None
    upload = db.session.get(UploadSession, upload_id)
    if upload is None:
        raise NotFound(_("アップロードが見つかりません。"))
    archive = db.session.get(Archive, upload.archive_id)
    if upload.created_by_id != actor.id and not actor.has_role(PLATFORM_ADMIN):
        raise NotAllowed(_("このアップロードを操作する権限がありません。"))
    if archive is None or not can_manage(actor, archive):
        raise NotAllowed(_("このアーカイブを管理する権限がありません。"))
    return upload


def upload_gone(upload: UploadSession) -> str | None:
    if upload.status == EXPIRED or (upload.status == UPLOADING and as_utc(upload.expires_at) <= utcnow()):
        return _("アップロードの有効期限が切れました。最初からやり直してください。")
    if upload.status in (CANCELLED, FAILED):
        return upload.error or _("このアップロードは中止されました。最初からやり直してください。")
    return None


def current_offset(upload: UploadSession) -> int:
    if upload.status == READY:
        return upload.declared_length
    return get_storage().part_size(upload.storage_key)


@dataclass
class UploadSnapshot:
    """Plain values of an upload, so that no transaction is held while the bytes flow."""

    id: str
    storage_key: str
    declared_length: int
    file_type: str
    head: bytes
    hash_state: str | None = None  # the running SHA-256 of the received bytes (hashstate.py)

    @classmethod
    def of(cls, upload: UploadSession) -> UploadSnapshot:
        meta = upload.metadata_json or {}
        head = base64.b64decode(meta.get("head_b64", "")) if meta else b""
        return cls(upload.id, upload.storage_key, upload.declared_length, upload.file_type, head,
                   meta.get("sha256_state"))


@dataclass
class ChunkResult:
    offset: int
    head: bytes
    file_type: str
    rejected: UploadRejected | None = None
    disconnected: bool = False
    hash_state: str | None = None


# Pieces at least this large are hashed on a helper thread while they are written.
PARALLEL_HASH_BYTES = 1024 * 1024


def receive_chunk(snapshot: UploadSnapshot, offset: int, chunks: Iterable[bytes]) -> ChunkResult:
    """Append one PATCH body to the part, recognising the type from the first bytes on the way.

    A body of the wrong type or beyond the declared length stops at once (``rejected``); a
    dropped connection keeps what arrived (``disconnected``). Returns the new offset."""
    storage = get_storage()
    limit = snapshot.declared_length - offset
    result = ChunkResult(offset, snapshot.head, snapshot.file_type)
    need = min(filetypes.SNIFF_BYTES, snapshot.declared_length)
    # SHA-256 as the bytes are written, continued from the previous PATCH when its state covers
    # exactly the bytes stored so far; otherwise finish_upload hashes the stored file instead.
    hasher = None
    if hashstate.available():
        hasher = (hashstate.ResumableSha256() if offset == 0
                  else hashstate.ResumableSha256.load(snapshot.hash_state, offset))

    def checked() -> Iterator[bytes]:
        seen = 0
        for chunk in chunks:
            if not chunk:
                continue
            seen += len(chunk)
            if seen > limit:
                raise UploadRejected(_("宣言されたサイズを超えるデータが送信されました。"), status=413)
            if not result.file_type and len(result.head) < need:
                result.head += bytes(chunk[: need - len(result.head)])
                if len(result.head) >= need:
                    result.file_type = check_head(snapshot.declared_length, result.head).code
            if hasher is None:
                yield chunk
            elif len(chunk) < PARALLEL_HASH_BYTES:
                hasher.update(chunk)
                yield chunk
            else:
                # Hash on a second thread while the storage writes the same piece (both release
                # the GIL); done before the next piece is read (it may reuse the buffer).
                hashing = pool().submit(hasher.update, chunk)
                try:
                    yield chunk
                finally:
                    hashing.result()

    executor = None

    def pool():
        nonlocal executor
        if executor is None:
            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload-sha256")
        return executor

    try:
        result.offset = storage.append_part(snapshot.storage_key, offset, checked())
    except UploadRejected as exc:
        result.rejected = exc
    except StorageError:
        raise Conflict(_("アップロード位置が一致しません。再開してください。")) from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            # The disk is full: a resume cannot help; the part is dropped (space freed).
            result.rejected = UploadRejected(_(
                "保存領域の空き容量が不足しているため、アップロードを保存できませんでした。"
                "システム管理者に連絡してください。"), status=507)
        else:
            # The client went away mid-body: what arrived is kept for the resume.
            result.disconnected = True
    except (ValueError, BadRequest):
        result.disconnected = True
    finally:
        if executor is not None:
            executor.shutdown(wait=True)
    if result.rejected is None and not result.disconnected:
        result.hash_state = _hash_state(hasher, result.offset)
        return result
    result.offset = storage.part_size(snapshot.storage_key)
    result.hash_state = _hash_state(hasher, result.offset) if result.rejected is None else None
    return result


def _hash_state(hasher, stored: int) -> str | None:
    """The hasher's state if it covers exactly the bytes stored (every piece handed to the
    storage was written before the next was read, so after a drop they normally agree)."""
    return hasher.dump() if hasher is not None and hasher.length == stored else None


def save_chunk_result(upload: UploadSession, result: ChunkResult) -> None:
    upload.received_bytes = result.offset
    upload.expires_at = utcnow() + UPLOAD_TTL
    meta = dict(upload.metadata_json or {})
    if result.hash_state:
        meta["sha256_state"] = result.hash_state
    else:
        meta.pop("sha256_state", None)
    if result.head and not upload.file_type:
        meta["head_b64"] = base64.b64encode(result.head).decode()
    if meta != (upload.metadata_json or {}):
        upload.metadata_json = meta  # a new dict: the JSON column sees the change
    if result.file_type and not upload.file_type:
        upload.file_type = result.file_type
        upload.kind = filetypes.TYPES[result.file_type].kind


def _read_part_or_object(upload: UploadSession, committed: bool):
    storage = get_storage()
    key = upload.storage_key

    def reader(start: int, length: int) -> bytes:
        source = storage.open_range(key, start, length) if committed else storage.read_part(key, start, length)
        return b"".join(source)

    return reader


def check_head(declared_length: int, head: bytes) -> filetypes.FileType:
    """Type by magic bytes at the first chunk; refuse early what is not allowed."""
    filetype = filetypes.sniff(head)
    if filetype is None:
        raise UploadRejected(
            _("このファイルの形式には対応していません。動画（MP4・WebM）、資料（PDF・PowerPoint）、字幕（WebVTT）をアップロードしてください。"),
            status=415,
        )
    limit = filetypes.KIND_LIMITS.get(filetype.kind)
    if limit and declared_length > limit:
        raise UploadRejected(
            _("%(kind)sファイルが大きすぎます（上限 %(limit)s）。", kind=filetypes.KIND_LABELS[filetype.kind],
              limit=_human_size(limit)),
            status=413,
        )
    return filetype


def reject_upload(upload: UploadSession, message: str) -> None:
    """Nothing is kept of a refused upload: the part goes, the session says why."""
    storage = get_storage()
    storage.delete_part(upload.storage_key)
    upload.status = FAILED
    upload.error = message
    upload.received_bytes = 0


def finish_upload(upload: UploadSession) -> ArchiveFile:
    """The part is complete: check the type by content, verify SHA-256, commit, make the file visible."""
    storage = get_storage()
    filetype = filetypes.TYPES.get(upload.file_type)
    if filetype is None:
        raise UploadRejected(_("このファイルの形式には対応していません。"), status=415)
    local = storage.name == "local"
    if not local:
        storage.commit_part(upload.storage_key, filetype.content_type)
    reader = _read_part_or_object(upload, committed=not local)
    size = upload.declared_length
    try:
        # Hashed while the bytes were written (all of them, in order); else one pass over the file.
        hasher = hashstate.ResumableSha256.load((upload.metadata_json or {}).get("sha256_state"), size)
        digest = hasher.hexdigest() if hasher is not None else _sha256_of(reader, size)
        if upload.expected_sha256 and digest != upload.expected_sha256:
            raise UploadRejected(
                _("ファイルの検証（SHA-256）に失敗しました。通信中に内容が変わった可能性があります。もう一度アップロードしてください。"),
                status=460,
            )
        duration, cues = _inspect(filetype, reader, size)
    except UploadRejected:
        if not local:
            storage.delete(upload.storage_key)
        raise
    if local:
        storage.commit_part(upload.storage_key, filetype.content_type)
    archive_file = _add_file(upload.archive_id, filetype, upload.filename, size, digest, upload.storage_key,
                             duration, cues)
    upload.status = READY
    upload.received_bytes = size
    upload.archive_file_id = archive_file.id
    upload.kind = filetype.kind
    return archive_file


def _sha256_of(reader, size: int) -> str:
    digest = hashlib.sha256()
    position = 0
    step = 4 * 1024 * 1024
    while position < size:
        data = reader(position, min(step, size - position))
        if not data:
            break
        digest.update(data)
        position += len(data)
    if position != size:
        raise UploadRejected(_("ファイルが途中までしか届いていません。もう一度アップロードしてください。"), status=422)
    return digest.hexdigest()


def _inspect(filetype, reader, size: int):
    """Deeper content checks per type; returns (duration seconds, caption cues)."""
    if filetype is filetypes.PPTX:
        if not filetypes.confirm_pptx(RangeReader(lambda s, n: [reader(s, n)], size)):
            raise UploadRejected(_("PowerPoint ファイルとして読み取れません（.pptx 形式のみ対応）。"), status=415)
        return None, None
    if filetype is filetypes.VTT:
        try:
            text = reader(0, size).decode("utf-8")
            cues = parse_vtt(text)
        except (UnicodeDecodeError, CaptionError):
            raise UploadRejected(_("字幕ファイル（WebVTT, UTF-8）として読み取れません。"), status=415) from None
        return None, cues
    if filetype.kind == VIDEO:
        return filetypes.media_duration(reader, size, filetype), None
    return None, None


def _add_file(archive_id: int, filetype, filename: str, size: int, digest: str, key: str,
              duration: int | None, cues, graph_content_id: str | None = None) -> ArchiveFile:
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
        completed_at=utcnow(),
    )
    db.session.add(archive_file)
    db.session.flush()
    if cues is not None:
        _store_cues(archive_file, cues)
    return archive_file


def _store_cues(archive_file: ArchiveFile, cues) -> None:
    # A newer captions file replaces the older ones of the same archive (player and search).
    older = db.session.scalars(
        select(ArchiveFile).where(
            ArchiveFile.archive_id == archive_file.archive_id,
            ArchiveFile.kind == CAPTIONS,
            ArchiveFile.status == READY,
            ArchiveFile.id != archive_file.id,
        )
    ).all()
    for old in older:
        old.status = REPLACED
        db.session.execute(TranscriptCue.__table__.delete().where(TranscriptCue.archive_file_id == old.id))
    if not cues:
        return
    db.session.execute(
        TranscriptCue.__table__.insert(),
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


def terminate_upload(upload: UploadSession) -> None:
    if upload.status == READY:
        raise Conflict(_("完了したアップロードは中止できません。"))
    get_storage().delete_part(upload.storage_key)
    upload.status = CANCELLED
    upload.error = _("アップロードは中止されました。")


def expire_uploads(now: datetime | None = None) -> int:
    """Delete the parts of unfinished uploads past their expiry; returns how many."""
    now = now or utcnow()
    storage = get_storage()
    stale = db.session.scalars(
        select(UploadSession).where(UploadSession.status == UPLOADING, UploadSession.expires_at <= now)
    ).all()
    for upload in stale:
        storage.delete_part(upload.storage_key)
        upload.status = EXPIRED
        upload.error = _("アップロードの有効期限が切れました。最初からやり直してください。")
    # Parts of failed/cancelled uploads whose deletion did not happen (crash) go as well.
    leftovers = db.session.scalars(
        select(UploadSession).where(UploadSession.status.in_((FAILED, CANCELLED)), UploadSession.expires_at <= now)
    ).all()
    for upload in leftovers:
        storage.delete_part(upload.storage_key)
    return len(stale)


def pending_uploads(archive: Archive) -> list[UploadSession]:
    return list(
        db.session.scalars(
            select(UploadSession)
            .where(UploadSession.archive_id == archive.id, UploadSession.status.in_((UPLOADING, FAILED)))
            .order_by(UploadSession.created_at.desc())
            .limit(20)
        )
    )


# ======================================================================= imports (Teams recordings)


IMPORT_PREFIX = "archives/import/"
_RUN_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,60}$")
_RUN_KEY_RE = re.compile(r"^archives/import/([a-z0-9][a-z0-9_]{0,60})-[0-9a-f]{24}$")


def import_storage_key(run: str | None, recording_id: str) -> str:
    """Where an import writes a recording (part, then the committed object).

    With ``run`` (who writes: ``op<operation id>_<attempt>`` for a Graph operation) the key
    is ``archives/import/<run>-<hash of the recording id>``: one writer per key, and the
    housekeeping can tell from the key whether its writer is still at work (see
    ``sweep_import_files``). Without, a random name, left alone for ``UPLOAD_TTL``.
    """
    if run is None:
        return f"{IMPORT_PREFIX}{uuid.uuid4().hex}"
    if not _RUN_RE.match(run):
        raise ValueError(f"invalid import run {run!r}")
    return f"{IMPORT_PREFIX}{run}-{hashlib.sha256(recording_id.encode()).hexdigest()[:24]}"


def import_run_of(key: str) -> str | None:
    """The ``run`` an import key was written by (None: a random name)."""
    match = _RUN_KEY_RE.match(key)
    return match.group(1) if match else None


def _archive_for_recording(recording_id: str) -> Archive | None:
    return db.session.scalar(select(Archive).where(Archive.graph_recording_id == recording_id))


def import_recording(session_id: int, recording_id: str, chunks: Iterable[bytes], filename: str,
                     content_type: str, size: int | None, actor=None, *, run: str | None = None) -> Archive:
    """Store a Teams recording as a DRAFT archive of the session's course (the trainer reviews it).

    Idempotent by ``recording_id``: a call that finds the archive returns it without reading
    ``chunks``. Streams in bounded memory; the type is checked by content (MP4 or WebM), the
    size against ``size`` when given, and the SHA-256 of the stored bytes against the one
    computed while streaming. Raises InvalidInput (nothing stored) otherwise.

    No transaction stays open during the download: what is needed is read first, then the
    current transaction is committed (with whatever the caller had in it), the bytes go to
    storage under ``import_storage_key(run, recording_id)`` — a part, then an object no row
    refers to, invisible to viewers — and the rows are written in a fresh transaction that
    takes SQLite's write lock first and checks again that no other run created the archive
    meanwhile (if one did, the bytes just stored are deleted and its archive returned).
    Flushes the new rows; the caller commits. Bytes of a run cut short by a killed process
    are removed by ``sweep_import_files``.
    """
    existing = _archive_for_recording(recording_id)
    if existing is not None:
        return existing
    session = db.session.get(TrainingSession, session_id)
    if session is None:
        raise NotFound(_("研修回が見つかりません。"))
    course = session.course
    course_id = course.id
    title = " ".join(p for p in (course.title, session.title) if p)
    actor_id = getattr(actor, "id", None)
    key = import_storage_key(run, recording_id)
    db.session.commit()  # the read ends here: a download may take minutes

    storage = get_storage()
    filetype, received, digest, duration = _store_recording(storage, key, chunks, size)
    try:
        begin_write()  # SQLite: the write lock first, then the check below holds until commit
        existing = _archive_for_recording(recording_id)
        if existing is not None:  # another run imported it during our download
            storage.delete(key)
            return existing
        archive = Archive(
            course_id=course_id,
            session_id=session_id,
            title=_("%(title)s（録画）", title=title)[:200],
            description="",
            status=DRAFT,
            audience=AUDIENCE_ELIGIBLE,
            source="teams",
            graph_recording_id=recording_id,
            created_by_id=actor_id,
        )
        try:
            with db.session.begin_nested():
                db.session.add(archive)
                db.session.flush()
        except IntegrityError:  # PostgreSQL: another run's archive committed just now
            storage.delete(key)
            existing = _archive_for_recording(recording_id)
            if existing is None:
                raise
            return existing
        _add_file(archive.id, filetype, filetypes.sanitise_filename(filename, "recording"), received,
                  digest, key, duration, None)
        record_action(actor, "archive.import", "archive", archive.id, None, recording_id=recording_id,
                      session_id=session_id, content_type=content_type)
    except BaseException:
        storage.delete(key)
        raise
    return archive


def _store_recording(storage, key: str, chunks: Iterable[bytes], size: int | None):
    """Stream ``chunks`` into the committed object ``key`` and verify it; nothing stays
    stored when it fails. Returns (filetype, size, sha256, duration)."""
    digest = hashlib.sha256()
    head = bytearray()
    received = 0
    limit = max_upload_bytes()

    def tee() -> Iterator[bytes]:
        nonlocal received
        for chunk in chunks:
            if not chunk:
                continue
            received += len(chunk)
            if received > limit:
                raise InvalidInput(_("録画ファイルが大きすぎます（上限 %(limit)s）。", limit=_human_size(limit)))
            if len(head) < filetypes.SNIFF_BYTES:
                head.extend(chunk[: filetypes.SNIFF_BYTES - len(head)])
                if len(head) >= filetypes.SNIFF_BYTES:
                    _require_video(bytes(head))
            digest.update(chunk)
            yield chunk

    try:
        storage.delete_part(key)
        storage.append_part(key, 0, tee())
        filetype = _require_video(bytes(head))
        if size is not None and received != size:
            raise InvalidInput(_("録画ファイルが途中までしか取得できませんでした。"))
        storage.commit_part(key, filetype.content_type)
        reader = lambda s, n: b"".join(storage.open_range(key, s, n))  # noqa: E731
        if _sha256_of(reader, received) != digest.hexdigest():
            raise InvalidInput(_("録画ファイルの検証（SHA-256）に失敗しました。"))
        duration = filetypes.media_duration(reader, received, filetype)
    except (InvalidInput, UploadRejected) as exc:
        storage.delete_part(key)
        storage.delete(key)
        if isinstance(exc, UploadRejected):
            raise InvalidInput(exc.message) from None
        raise
    except BaseException:
        storage.delete_part(key)
        storage.delete(key)
        raise
    return filetype, received, digest.hexdigest(), duration


def sweep_import_files(live_runs: Callable[[set[str]], set[str]], now: datetime | None = None) -> list[str]:
    """Delete imported bytes that no archive refers to and no live run is still writing:
    parts and committed objects left by a process killed in the middle of an import.

    ``live_runs(runs)`` returns those of the given runs still at work; it is asked after the
    storage was listed, so a run that began since cannot be missed. A key written by a run
    is kept while the run is live; a key with a random name for ``UPLOAD_TTL`` after it was
    last written. Whether a run is over is decided before the archive files are read, in a
    transaction begun after that, so an archive that its run committed just before it
    ended is seen. Commits. Returns the keys deleted.
    """
    now = now or utcnow()
    storage = get_storage()
    found = storage.list_keys(IMPORT_PREFIX)
    runs = {key: import_run_of(key) for key in found}
    live = live_runs({run for run in runs.values() if run is not None}) if any(runs.values()) else set()
    stale = []
    for key, modified in sorted(found.items()):
        run = runs[key]
        if (run in live if run is not None else as_utc(modified) > now - UPLOAD_TTL):
            continue
        stale.append(key)
    db.session.commit()  # a fresh snapshot for the archive files below
    if not stale:
        return []
    referenced = set()
    for start in range(0, len(stale), 500):
        batch = stale[start : start + 500]
        referenced.update(db.session.scalars(select(ArchiveFile.storage_key).where(ArchiveFile.storage_key.in_(batch))))
    db.session.commit()
    removed = []
    for key in stale:
        if key in referenced:
            continue
        storage.delete_part(key)
        storage.delete(key)
        removed.append(key)
    return removed


def _require_video(head: bytes):
    filetype = filetypes.sniff(head)
    if filetype is None or filetype.kind != VIDEO:
        raise InvalidInput(_("録画ファイルが動画（MP4・WebM）ではありません。"))
    return filetype


def attach_transcript(archive_id: int, vtt_text: str, graph_content_id: str | None) -> ArchiveFile:
    """Store a WebVTT transcript as the archive's captions (and cues for search and chapters).

    Idempotent by ``graph_content_id``. Raises InvalidInput if the text is not WebVTT.
    Flushes; the caller commits."""
    if graph_content_id:
        existing = db.session.scalar(select(ArchiveFile).where(ArchiveFile.graph_content_id == graph_content_id))
        if existing is not None:
            return existing
    archive = db.session.get(Archive, archive_id)
    if archive is None:
        raise NotFound(_("アーカイブが見つかりません。"))
    try:
        cues = parse_vtt(vtt_text)
    except CaptionError:
        raise InvalidInput(_("トランスクリプトが WebVTT 形式ではありません。")) from None
    data = vtt_text.encode("utf-8")
    storage = get_storage()
    key = new_storage_key(archive.id)
    storage.write_object(key, [data], filetypes.VTT.content_type)
    return _add_file(archive.id, filetypes.VTT, "transcript.vtt", len(data), hashlib.sha256(data).hexdigest(), key,
                     None, cues, graph_content_id=graph_content_id)


# ======================================================================= viewing progress

REPORT_GAP_SECONDS = 120  # a pause longer than this starts a new wall-clock window
WALL_SLACK_SECONDS = 3  # timer granularity between the browser and us
MAX_INTERVALS = 200


def merge_intervals(intervals: Iterable[tuple[int, int]]) -> list[list[int]]:
    merged: list[list[int]] = []
    for start, end in sorted((int(s), int(e)) for s, e in intervals if e > s):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    return merged


def measure(intervals: Iterable[Iterable[int]]) -> int:
    return sum(end - start for start, end in intervals)


def _subtract(new: list[list[int]], covered: list[list[int]]) -> list[list[int]]:
    """Parts of ``new`` not in ``covered`` (both merged and sorted)."""
    result = []
    for start, end in new:
        cursor = start
        for cstart, cend in covered:
            if cend <= cursor or cstart >= end:
                continue
            if cstart > cursor:
                result.append([cursor, cstart])
            cursor = max(cursor, cend)
            if cursor >= end:
                break
        if cursor < end:
            result.append([cursor, end])
    return result


def parse_report(payload) -> dict:
    """Validate a progress report from the player; raises InvalidInput on anything odd."""
    bad = InvalidInput(_("視聴状況の送信内容が正しくありません。"))
    if not isinstance(payload, dict):
        raise bad
    report_id = payload.get("report_id")
    if not isinstance(report_id, str) or not re.fullmatch(r"[A-Za-z0-9_-]{8,64}", report_id):
        raise bad
    raw = payload.get("intervals", [])
    if not isinstance(raw, list) or len(raw) > MAX_INTERVALS:
        raise bad
    intervals = []
    for item in raw:
        if not (isinstance(item, list | tuple) and len(item) == 2):
            raise bad
        start, end = item
        if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in (start, end)):
            raise bad
        if start < 0 or end < start:
            raise bad
        intervals.append((int(round(start)), int(round(end))))
    position = payload.get("position", 0)
    if not isinstance(position, int | float) or isinstance(position, bool) or not math.isfinite(position) \
            or position < 0:
        raise bad
    duration = payload.get("duration")
    if duration is not None and (not isinstance(duration, int | float) or isinstance(duration, bool)
                                 or not math.isfinite(duration) or duration < 0):
        raise bad
    return {"report_id": report_id, "intervals": intervals, "position": float(position),
            "duration": float(duration) if duration else None}


def record_progress(actor, archive_file: ArchiveFile, report: dict, now: datetime | None = None) -> ViewingProgress:
    """Merge watched intervals of the actor's own staff record, credited no faster than real time.

    Idempotent by ``report_id``. Completion at the course's ``viewing_threshold_pct``."""
    now = now or utcnow()
    staff = getattr(actor, "staff_member", None)
    if staff is None:
        raise Conflict(_("職員名簿に登録されていないため、視聴状況を記録できません。"))
    if archive_file.kind != VIDEO or archive_file.status != READY:
        raise InvalidInput(_("この動画の視聴状況は記録できません。"))
    progress = _progress_row(staff.id, archive_file.id, now)
    if report["report_id"] == progress.last_report_id:
        return progress
    duration = archive_file.duration_seconds or progress.duration_seconds or 0
    if not duration and report.get("duration"):
        # Duration unreadable from the container: the first player figure is kept.
        duration = int(math.ceil(report["duration"]))
    progress.duration_seconds = duration
    # Wall-clock budget: time the server has seen pass between reports of one playback.
    last = as_utc(progress.last_report_at)
    if last is not None and progress.playback_started_at is not None:
        gap = (now - last).total_seconds()
        if 0 < gap <= REPORT_GAP_SECONDS:
            progress.credited_wall_seconds += int(math.ceil(gap))
        elif gap > REPORT_GAP_SECONDS:
            progress.playback_started_at = now
    else:
        progress.playback_started_at = now
    progress.last_report_at = now
    progress.last_report_id = report["report_id"]

    upper = duration if duration else None
    clipped = [(max(0, s), min(e, upper) if upper else e) for s, e in report["intervals"]]
    existing = merge_intervals(progress.intervals or [])
    fresh = _subtract(merge_intervals(clipped), existing)
    allowance = progress.credited_wall_seconds + WALL_SLACK_SECONDS - measure(existing)
    credited = []
    for start, end in fresh:
        if allowance <= 0:
            break
        take = min(end - start, allowance)
        credited.append([start, start + take])
        allowance -= take
    merged = merge_intervals([*existing, *credited])
    progress.intervals = merged
    progress.watched_seconds = measure(merged)
    position = report["position"]
    progress.last_position = int(min(position, duration) if duration else position)
    threshold = archive_file.archive.course.viewing_threshold_pct or 90
    if (
        progress.completed_at is None
        and duration > 0
        and progress.watched_seconds * 100 >= threshold * duration
    ):
        progress.completed_at = now
        viewing_changed.send(None, staff_member_id=staff.id, archive_id=archive_file.archive_id)
    return progress


def _progress_row(staff_member_id: int, archive_file_id: int, now: datetime) -> ViewingProgress:
    query = select(ViewingProgress).where(
        ViewingProgress.staff_member_id == staff_member_id, ViewingProgress.archive_file_id == archive_file_id
    )
    if db.engine.dialect.name == "postgresql":
        query = query.with_for_update()
    progress = db.session.scalar(query)
    if progress is not None:
        return progress
    progress = ViewingProgress(staff_member_id=staff_member_id, archive_file_id=archive_file_id, intervals=[],
                               watched_seconds=0, credited_wall_seconds=0, last_report_id="", duration_seconds=0,
                               last_position=0)
    try:
        with db.session.begin_nested():
            db.session.add(progress)
            db.session.flush()
    except IntegrityError:
        progress = db.session.scalar(query)
        if progress is None:
            raise
    return progress


def progress_for(staff_member_id: int | None, file_ids: list[int]) -> dict[int, ViewingProgress]:
    if staff_member_id is None or not file_ids:
        return {}
    rows = db.session.scalars(
        select(ViewingProgress).where(
            ViewingProgress.staff_member_id == staff_member_id, ViewingProgress.archive_file_id.in_(file_ids)
        )
    )
    return {row.archive_file_id: row for row in rows}


def archive_completed_at(staff_member_id: int, archive_id: int) -> datetime | None:
    """When the staff member completed the archive (every ready video watched to the
    course's threshold), or None. For the completion area."""
    videos = db.session.scalars(
        select(ArchiveFile.id).where(
            ArchiveFile.archive_id == archive_id, ArchiveFile.kind == VIDEO, ArchiveFile.status == READY
        )
    ).all()
    if not videos:
        return None
    done = db.session.execute(
        select(func.count(), func.max(ViewingProgress.completed_at)).where(
            ViewingProgress.staff_member_id == staff_member_id,
            ViewingProgress.archive_file_id.in_(videos),
            ViewingProgress.completed_at.is_not(None),
        )
    ).one()
    return as_utc(done[1]) if done[0] == len(videos) else None


# ======================================================================= transcript search


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


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


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
    pattern = f"%{_escape_like(needle)}%"
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
