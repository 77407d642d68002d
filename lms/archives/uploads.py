"""Resumable uploads (tus 1.0.0): sessions, chunks, and the verification of a finished file.

A PATCH appends its body to the part, recognising the type from the first bytes on the way
(a wrong type or a body beyond the declared length stops at once). When the last byte is in,
``finish_upload`` checks the content (a slide deck that opens, captions that parse), commits the
part to its object and leaves the upload VERIFYING: a background job (``verify_upload``, run by
the worker after the commit) streams the stored object through SHA-256 and compares it with the
checksum the client declared (``Upload-Metadata: sha256 …``). Only then does the file appear
(READY) and can the archive be published; a mismatch deletes the bytes and marks the upload
FAILED with the reason. No request reads a large file back.
"""

from __future__ import annotations

import base64
import binascii
import errno
import logging
import re
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select
from werkzeug.exceptions import BadRequest

from lms.archives import filetypes, reasons, tasks
from lms.archives.access import can_manage, require_manager
from lms.archives.files import (
    ContentRejected,
    add_file,
    inspect_content,
    new_storage_key,
    object_reader,
    ready_video_of,
    sha256_of_object,
)
from lms.archives.models import (
    CANCELLED,
    CAPTIONS,
    EXPIRED,
    FAILED,
    READY,
    UPLOADING,
    VERIFYING,
    Archive,
    UploadSession,
)
from lms.archives.reasons import Reason
from lms.archives.storage import StorageError, get_storage
from lms.auth.models import PLATFORM_ADMIN
from lms.common.database import begin_write
from lms.common.errors import Conflict, InvalidInput, NotAllowed, NotFound
from lms.common.filenames import sanitise_filename
from lms.common.ids import parse_id
from lms.common.jobs import hand_over_after_commit
from lms.common.timeutil import utcnow
from lms.extensions import db

logger = logging.getLogger(__name__)

UPLOAD_TTL = timedelta(hours=24)
MAX_METADATA = 4096
# A verification not finished after this long is handed to the worker again (a lost job).
VERIFY_RETRY_AFTER = timedelta(minutes=15)
# The HTTP status of an upload refused because its stored bytes failed verification
# (tus checksum extension: 460 Checksum Mismatch).
CHECKSUM_MISMATCH = 460


class UploadRejected(ContentRejected):
    """An upload refused for good (type, size, checksum). ``status`` is the HTTP answer."""

    def __init__(self, reason: Reason, status: int = 422):
        super().__init__(reason, status)


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


def create_upload(actor, archive: Archive, length: int, metadata: dict[str, str]) -> UploadSession:
    require_manager(actor, archive)
    limit = max_upload_bytes()
    if length <= 0:
        raise InvalidInput(_("空のファイルはアップロードできません。"))
    if length > limit:
        raise UploadRejected(Reason(reasons.TOO_LARGE, {"limit": limit}), status=413)
    expected = (metadata.get("sha256") or "").strip().lower()
    if expected and not re.fullmatch(r"[0-9a-f]{64}", expected):
        raise InvalidInput(_("SHA-256 の値が正しくありません。"))
    extra: dict[str, int] = {}
    video_id = chosen_video_id(archive, metadata.get("video_id"))
    if video_id is not None:
        extra["video_id"] = video_id
    upload = UploadSession(
        id=str(uuid.uuid4()),
        archive_id=archive.id,
        kind="",
        filename=sanitise_filename(metadata.get("filename", ""), "upload"),
        declared_length=length,
        received_bytes=0,
        expected_sha256=expected,
        storage_key=new_storage_key(archive.id),
        metadata_json={"filetype": re.sub(r"[\x00-\x1f\x7f]", "", metadata.get("filetype") or "")[:100], **extra},
        created_by_id=actor.id,
        status=UPLOADING,
        expires_at=utcnow() + UPLOAD_TTL,
    )
    db.session.add(upload)
    return upload


def chosen_video_id(archive: Archive, value: str | None) -> int | None:
    """The video captions are for (``Upload-Metadata: video_id …``, the uploader's choice
    among the archive's videos): None when not given; NotFound for an id that is no ready
    video of this archive. Other kinds of file ignore it."""
    value = (value or "").strip()
    if not value:
        return None
    video = ready_video_of(archive.id, parse_id(value))
    if video is None:
        raise NotFound(_("字幕を付ける動画が見つかりません。このアーカイブの動画を選んでください。"))
    return video.id


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
    if upload.status == EXPIRED or (upload.status == UPLOADING and upload.expires_at <= utcnow()):
        return _("アップロードの有効期限が切れました。最初からやり直してください。")
    if upload.status in (CANCELLED, FAILED):
        return failure_text(upload)
    return None


def record_failure(upload: UploadSession, status: str, reason: Reason) -> None:
    """The upload ends (FAILED, CANCELLED, EXPIRED) for ``reason``, stored without a language."""
    upload.status = status
    upload.error_code = reason.code
    upload.error_params = dict(reason.params) or None
    upload.error = ""


def failure_text(upload: UploadSession) -> str:
    """Why the upload ended, in the reader's language. A row from before the reasons were
    codes shows its stored text as it is."""
    text = reasons.describe(upload.error_code, upload.error_params) if upload.error_code else None
    return text or upload.error or _("このアップロードは中止されました。最初からやり直してください。")


def is_complete(upload: UploadSession) -> bool:
    """Every byte received (being verified, or verified)."""
    return upload.status in (VERIFYING, READY)


def current_offset(upload: UploadSession) -> int:
    if is_complete(upload):
        return upload.declared_length
    return get_storage().part_size(upload.storage_key)


# ---------------------------------------------------------------- receiving the bytes


@dataclass
class UploadSnapshot:
    """Plain values of an upload, so that no transaction is held while the bytes flow."""

    id: str
    storage_key: str
    declared_length: int
    file_type: str
    head: bytes

    @classmethod
    def of(cls, upload: UploadSession) -> UploadSnapshot:
        meta = upload.metadata_json or {}
        head = base64.b64decode(meta.get("head_b64", "")) if meta else b""
        return cls(upload.id, upload.storage_key, upload.declared_length, upload.file_type, head)


@dataclass
class ChunkResult:
    offset: int
    head: bytes
    file_type: str
    rejected: UploadRejected | None = None
    disconnected: bool = False


def receive_chunk(snapshot: UploadSnapshot, offset: int, chunks: Iterable[bytes | memoryview]) -> ChunkResult:
    """Append one PATCH body to the part, recognising the type from the first bytes on the way.

    A body of the wrong type or beyond the declared length stops at once (``rejected``); a
    dropped connection keeps what arrived (``disconnected``). Each chunk is written before the
    next is asked for (a chunk may be a view of a buffer that the next one reuses)."""
    storage = get_storage()
    limit = snapshot.declared_length - offset
    result = ChunkResult(offset, snapshot.head, snapshot.file_type)
    need = min(filetypes.SNIFF_BYTES, snapshot.declared_length)

    def checked() -> Iterator[bytes | memoryview]:
        seen = 0
        for chunk in chunks:
            if not chunk:
                continue
            seen += len(chunk)
            if seen > limit:
                raise UploadRejected(Reason(reasons.BEYOND_DECLARED_LENGTH), status=413)
            if not result.file_type and len(result.head) < need:
                result.head += bytes(chunk[: need - len(result.head)])
                if len(result.head) >= need:
                    result.file_type = check_head(snapshot.declared_length, result.head).code
            yield chunk

    try:
        result.offset = storage.append_part(snapshot.storage_key, offset, checked())
        return result
    except UploadRejected as exc:
        result.rejected = exc
    except StorageError:
        raise Conflict(_("アップロード位置が一致しません。再開してください。")) from None
    except OSError as exc:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            # The disk is full: a resume cannot help; the part is dropped (space freed).
            result.rejected = UploadRejected(Reason(reasons.DISK_FULL), status=507)
        else:
            # The client went away mid-body: what arrived is kept for the resume.
            result.disconnected = True
    except (ValueError, BadRequest):
        result.disconnected = True
    result.offset = storage.part_size(snapshot.storage_key)
    return result


def save_chunk_result(upload: UploadSession, result: ChunkResult) -> None:
    upload.received_bytes = result.offset
    upload.expires_at = utcnow() + UPLOAD_TTL
    meta = dict(upload.metadata_json or {})
    if result.head and not upload.file_type:
        meta["head_b64"] = base64.b64encode(result.head).decode()
    if meta != (upload.metadata_json or {}):
        upload.metadata_json = meta  # a new dict: the JSON column sees the change
    if result.file_type and not upload.file_type:
        upload.file_type = result.file_type
        upload.kind = filetypes.TYPES[result.file_type].kind


def check_head(declared_length: int, head: bytes) -> filetypes.FileType:
    """Type by magic bytes at the first chunk; refuse early what is not allowed."""
    filetype = filetypes.sniff(head)
    if filetype is None:
        raise UploadRejected(Reason(reasons.UNSUPPORTED_TYPE), status=415)
    limit = filetypes.KIND_LIMITS.get(filetype.kind)
    if limit and declared_length > limit:
        raise UploadRejected(Reason(reasons.KIND_TOO_LARGE, {"kind": filetype.kind, "limit": limit}), status=413)
    return filetype


def reject_upload(upload: UploadSession, reason: Reason) -> None:
    """Nothing is kept of a refused upload: the part goes, the session says why."""
    get_storage().delete_part(upload.storage_key)
    record_failure(upload, FAILED, reason)
    upload.received_bytes = 0


# ---------------------------------------------------------------- finishing and verifying


def finish_upload(upload: UploadSession) -> None:
    """Every byte is stored: check the content, commit the part to its object, and hand the
    SHA-256 check to the worker once the transaction commits. The upload is VERIFYING until
    then; nothing of it is visible. Raises UploadRejected (nothing kept) for a file whose
    content is not what its first bytes said."""
    storage = get_storage()
    filetype = filetypes.TYPES.get(upload.file_type)
    if filetype is None:
        raise UploadRejected(Reason(reasons.UNKNOWN_TYPE), status=415)
    storage.commit_part(upload.storage_key, filetype.content_type)
    try:
        inspect_content(filetype, object_reader(storage, upload.storage_key), upload.declared_length)
    except ContentRejected as exc:
        storage.delete(upload.storage_key)
        raise UploadRejected(exc.reason, exc.status) from None
    upload.status = VERIFYING
    upload.received_bytes = upload.declared_length
    upload.kind = filetype.kind
    _verify_after_commit(upload.id)


def _verify_after_commit(upload_id: str) -> None:
    """Hand the verification to the worker once committed (inline in tests); a failure to
    enqueue loses nothing: the periodic task finds the upload."""
    hand_over_after_commit(lambda: tasks.verify_upload_task(upload_id), key=("archives.verify_upload", upload_id),
                           inline=True, what=f"the verification of upload {upload_id}")


def verify_upload(upload_id: str) -> str | None:
    """The worker's check of a finished upload: stream the stored object through SHA-256 and
    compare it with the declared checksum (and the declared length). On success the file
    appears (READY); on a mismatch the bytes are deleted and the upload FAILED with the
    reason. Idempotent; commits. Returns the upload's status afterwards (None: no upload)."""
    upload = db.session.get(UploadSession, upload_id)
    if upload is None or upload.status != VERIFYING:
        status = upload.status if upload is not None else None
        db.session.commit()
        return status
    key, expected, size = upload.storage_key, upload.expected_sha256, upload.declared_length
    db.session.commit()  # no transaction stays open while the file is read
    storage = get_storage()
    try:
        digest, stored = sha256_of_object(storage, key)
    except (OSError, StorageError):
        digest, stored = "", -1
    upload = _verifying_locked(upload_id)
    if upload is None or upload.status != VERIFYING:  # verified (or cancelled) meanwhile
        status = upload.status if upload is not None else None
        db.session.commit()
        return status
    filetype = filetypes.TYPES[upload.file_type]
    duration, cues = None, None
    failure: Reason | None = None
    if stored != size:
        failure = Reason(reasons.INCOMPLETE)
    elif expected and digest != expected:
        failure = Reason(reasons.CHECKSUM_MISMATCH)
    if failure is None:
        try:
            duration, cues = inspect_content(filetype, object_reader(storage, key), size)
        except ContentRejected as exc:
            failure = exc.reason
        except Exception:  # a file no check foresaw: it fails, rather than stay "verifying" for ever
            logger.exception("upload %s: its content could not be checked", upload_id)
            failure = Reason(reasons.UNVERIFIABLE)
    video_id = (upload.metadata_json or {}).get("video_id") if filetype.kind == CAPTIONS else None
    if failure is None and video_id is not None and ready_video_of(upload.archive_id, video_id) is None:
        failure = Reason(reasons.CAPTIONS_VIDEO_GONE)
    if failure is None:
        try:
            archive_file = add_file(upload.archive_id, filetype, upload.filename, size, digest, key, duration, cues,
                                    video_file_id=video_id)
        except Exception:
            # The same file fails the same way on every retry (the periodic hand-over's too): the
            # upload fails with its reason instead. (Were the database itself down, recording
            # that fails too, and the upload waits for the periodic hand-over as before.)
            logger.exception("upload %s: its file could not be added", upload_id)
            db.session.rollback()
            upload = _verifying_locked(upload_id)
            if upload is None or upload.status != VERIFYING:
                status = upload.status if upload is not None else None
                db.session.commit()
                return status
            failure = Reason(reasons.UNVERIFIABLE)
        else:
            upload.status = READY
            upload.archive_file_id = archive_file.id
    if failure is not None:  # the bytes go; the upload says why
        storage.delete(key)
        record_failure(upload, FAILED, failure)
        upload.received_bytes = 0
    status = upload.status
    db.session.commit()
    return status


def _verifying_locked(upload_id: str) -> UploadSession | None:
    """The upload read fresh under its row lock, in a write transaction."""
    begin_write()
    query = select(UploadSession).where(UploadSession.id == upload_id).with_for_update()
    return db.session.execute(query).scalar_one_or_none()


def verify_stalled_uploads(now: datetime | None = None) -> int:
    """Hand verifications that should long be over to the worker again (a job lost with a
    crashed worker or an unreachable queue); returns how many."""
    now = now or utcnow()
    stalled = db.session.scalars(
        select(UploadSession.id).where(UploadSession.status == VERIFYING,
                                       UploadSession.updated_at <= now - VERIFY_RETRY_AFTER)
    ).all()
    for upload_id in stalled:
        _verify_after_commit(upload_id)
    return len(stalled)


# ---------------------------------------------------------------- ending


def terminate_upload(upload: UploadSession) -> None:
    if is_complete(upload):
        raise Conflict(_("完了したアップロードは中止できません。"))
    get_storage().delete_part(upload.storage_key)
    record_failure(upload, CANCELLED, Reason(reasons.CANCELLED))


def dismiss_upload(upload: UploadSession) -> None:
    """A failed upload's notice taken off the archive's page (its parts went when it failed;
    deleted again in case that did not happen). Only a failed one: the others are live."""
    if upload.status != FAILED:
        raise Conflict(_("失敗したアップロードだけを一覧から消せます。"))
    get_storage().delete_part(upload.storage_key)
    db.session.delete(upload)


def expire_uploads(now: datetime | None = None) -> int:
    """Delete the parts of unfinished uploads past their expiry; returns how many."""
    now = now or utcnow()
    storage = get_storage()
    stale = db.session.scalars(
        select(UploadSession).where(UploadSession.status == UPLOADING, UploadSession.expires_at <= now)
    ).all()
    for upload in stale:
        storage.delete_part(upload.storage_key)
        record_failure(upload, EXPIRED, Reason(reasons.EXPIRED))
    # Parts of failed/cancelled uploads whose deletion did not happen (crash) go as well.
    leftovers = db.session.scalars(
        select(UploadSession).where(UploadSession.status.in_((FAILED, CANCELLED)), UploadSession.expires_at <= now)
    ).all()
    for upload in leftovers:
        storage.delete_part(upload.storage_key)
    return len(stale)


def pending_uploads(archive: Archive) -> list[UploadSession]:
    """Uploads of the archive that are not (yet) files: interrupted, being verified, failed."""
    return list(
        db.session.scalars(
            select(UploadSession)
            .where(UploadSession.archive_id == archive.id,
                   UploadSession.status.in_((UPLOADING, VERIFYING, FAILED)))
            .order_by(UploadSession.created_at.desc())
            .limit(20)
        )
    )
