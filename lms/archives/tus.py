"""tus 1.0.0 resumable uploads (creation, termination, expiration).

Bodies are read through ``request.stream`` in bounded pieces. The last PATCH answers once the
bytes are stored and their type checked; the SHA-256 is verified by the worker afterwards, and
``Upload-Verification`` on that answer says whether it still is (``pending``) or is done
(``verified``; tests and a worker that was quick). A failed verification shows on the
archive's page, and on the upload resource (404 with the reason).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO

from flask import Response, current_app, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import ValidationError, validate_csrf
from werkzeug.http import http_date

from lms.archives import uploads
from lms.archives.access import can_manage
from lms.archives.blueprint import bp
from lms.archives.models import FAILED, READY, Archive, UploadSession
from lms.auth.models import PLATFORM_ADMIN, TRAINER
from lms.common.database import begin_write
from lms.common.errors import Conflict, InvalidInput, NotAllowed, NotFound
from lms.common.limits import limit_upload
from lms.common.signals import access_denied
from lms.common.timeutil import as_utc
from lms.extensions import csrf, db

TUS_VERSION = "1.0.0"
# Bytes of a PATCH body read (and written to storage) at a time.
BODY_PIECE = 1024 * 1024


def _tus(response: Response) -> Response:
    response.headers["Tus-Resumable"] = TUS_VERSION
    response.headers["Cache-Control"] = "no-store"
    return response


def _tus_error(status: int, message: str) -> Response:
    return _tus(Response(message, status=status, mimetype="text/plain"))


def _tus_guard() -> Response | None:
    """Sign-in, role, CSRF header (X-CSRFToken) and protocol version, for every tus request."""
    if not current_user.is_authenticated:
        return _tus_error(401, _("サインインしてください。"))
    if not current_user.has_role(TRAINER, PLATFORM_ADMIN):
        return _tus_error(403, _("アップロードする権限がありません。"))
    if request.method not in ("HEAD", "OPTIONS", "GET") and current_app.config.get("WTF_CSRF_ENABLED", True):
        try:
            validate_csrf(request.headers.get("X-CSRFToken", ""))
        except ValidationError:
            return _tus_error(403, _("ページの有効期限が切れました。再読み込みしてから、もう一度アップロードしてください。"))
    if request.method != "OPTIONS" and request.headers.get("Tus-Resumable") != TUS_VERSION:
        response = _tus_error(412, _("対応していないアップロード方式です。"))
        response.headers["Tus-Version"] = TUS_VERSION
        return response
    return None


def _expires(upload: UploadSession) -> str:
    return http_date(as_utc(upload.expires_at))


@bp.route("/uploads", methods=["OPTIONS"])
@csrf.exempt
@login_required
def tus_options():
    response = _tus(Response(status=204))
    response.headers["Tus-Version"] = TUS_VERSION
    response.headers["Tus-Extension"] = "creation,termination,expiration"
    response.headers["Tus-Max-Size"] = str(uploads.max_upload_bytes())
    return response


@bp.post("/manage/<int:archive_id>/uploads")
@csrf.exempt
@limit_upload
def tus_create(archive_id: int):
    refused = _tus_guard()
    if refused:
        return refused
    # Permission before anything else about the archive: another trainer's archive is answered
    # exactly as one that does not exist (and the attempt audited).
    archive = db.session.get(Archive, archive_id)
    if archive is None or not can_manage(current_user, archive):
        if archive is not None:
            access_denied.send(current_user, target_type="archive", target_id=archive_id)
        return _tus_error(404, _("アーカイブが見つかりません。"))
    raw_length = request.headers.get("Upload-Length", "").strip()
    # tus: a non-negative integer of digits only ("-5", "+5", "1_000" and "５" are not sizes).
    if not (raw_length.isascii() and raw_length.isdigit()):
        return _tus_error(400, _("ファイルのサイズが指定されていません。"))
    length = int(raw_length)
    try:
        metadata = uploads.parse_tus_metadata(request.headers.get("Upload-Metadata"))
        upload = uploads.create_upload(current_user, archive, length, metadata)
        db.session.commit()
    except uploads.UploadRejected as exc:
        db.session.rollback()
        return _tus_error(exc.status, exc.message)
    except NotAllowed as exc:
        db.session.rollback()
        return _tus_error(403, exc.message)
    except NotFound as exc:  # a video to caption that is not this archive's
        db.session.rollback()
        return _tus_error(404, exc.message)
    except InvalidInput as exc:
        db.session.rollback()
        return _tus_error(400, exc.message)
    response = _tus(Response(status=201))
    response.headers["Location"] = url_for("archives.tus_resource", upload_id=upload.id)
    response.headers["Upload-Expires"] = _expires(upload)
    return response


@bp.route("/uploads/<upload_id>", methods=["HEAD", "PATCH", "DELETE"])
@csrf.exempt
@limit_upload
def tus_resource(upload_id: str):
    refused = _tus_guard()
    if refused:
        return refused
    try:
        upload = uploads.get_upload(current_user, upload_id)
    except NotFound as exc:
        return _tus_error(404, exc.message)
    except NotAllowed:  # someone else's upload: as if there were none (audited)
        access_denied.send(current_user, target_type="upload", target_id=upload_id)
        return _tus_error(404, _("アップロードが見つかりません。"))
    gone = uploads.upload_gone(upload)
    if request.method == "DELETE":
        if gone:
            return _tus(Response(status=204))
        try:
            uploads.terminate_upload(upload)
        except Conflict as exc:
            return _tus_error(409, exc.message)
        db.session.commit()
        return _tus(Response(status=204))
    if gone:
        return _tus_error(410 if upload.status != FAILED else 404, gone)
    if request.method == "HEAD":
        response = _tus(Response(status=200))
        response.headers["Upload-Offset"] = str(uploads.current_offset(upload))
        response.headers["Upload-Length"] = str(upload.declared_length)
        response.headers["Upload-Expires"] = _expires(upload)
        return response
    return _tus_patch(upload)


def _body_pieces(stream: IO[bytes]) -> Iterator[memoryview]:
    """The request body in pieces of up to BODY_PIECE bytes, read into one reused buffer
    (bounded memory, no copy per piece): a consumer uses each piece before asking for the next
    (the storage writes it; the type sniffing copies the few bytes it keeps)."""
    buffer = bytearray(BODY_PIECE)
    view = memoryview(buffer)
    while True:
        got = stream.readinto(buffer)  # type: ignore[attr-defined]  # werkzeug's LimitedStream is a RawIOBase
        if not got:
            return
        yield view[:got]


def _tus_patch(upload: UploadSession) -> Response:
    if request.mimetype != "application/offset+octet-stream":
        return _tus_error(415, _("送信形式が正しくありません。"))
    try:
        offset = int(request.headers.get("Upload-Offset", ""))
    except ValueError:
        return _tus_error(400, _("アップロード位置が指定されていません。"))
    if uploads.is_complete(upload):
        response = _tus(Response(status=204))
        response.headers["Upload-Offset"] = str(upload.declared_length)
        return response
    if offset != uploads.current_offset(upload):
        return _tus_error(409, _("アップロード位置が一致しません。再開してください。"))
    snapshot = uploads.UploadSnapshot.of(upload)
    db.session.commit()  # no transaction stays open while the body streams in
    # Only this route reads big bodies: the form limit (MAX_CONTENT_LENGTH) is raised per chunk.
    request.max_content_length = current_app.config.get("LMS_UPLOAD_CHUNK_MAX_BYTES", 256 * 1024 * 1024)
    stream = request.stream  # refuses (413) a declared body above that limit
    try:
        result = uploads.receive_chunk(snapshot, offset, _body_pieces(stream))
    except Conflict as exc:
        return _tus_error(409, exc.message)
    begin_write()
    upload = db.session.get_one(UploadSession, snapshot.id)
    uploads.save_chunk_result(upload, result)
    if result.rejected is not None:
        uploads.reject_upload(upload, result.rejected.reason)
        db.session.commit()
        return _tus_error(result.rejected.status, result.rejected.message)
    finished = result.offset == upload.declared_length and not result.disconnected
    if finished:
        try:
            uploads.finish_upload(upload)
        except uploads.UploadRejected as exc:
            uploads.reject_upload(upload, exc.reason)
            db.session.commit()
            return _tus_error(exc.status, exc.message)
    db.session.commit()  # a finished upload goes to the worker for verification now
    if result.disconnected:
        return _tus_error(400, _("通信が途切れました。再開してください。"))
    if finished and upload.status == FAILED:  # verified already (inline), and it did not pass
        return _tus_error(uploads.CHECKSUM_MISMATCH, uploads.failure_text(upload))
    response = _tus(Response(status=204))
    response.headers["Upload-Offset"] = str(result.offset)
    response.headers["Upload-Expires"] = _expires(upload)
    if finished:
        response.headers["Upload-Verification"] = "verified" if upload.status == READY else "pending"
    return response
