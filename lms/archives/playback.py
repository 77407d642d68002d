"""Playback: archive files and their byte ranges, playback links, and viewing progress reports.

Every request passes ``viewable_file_or_refusal`` first (the access check runs on each range
request). Bytes come from nginx (X-Accel-Redirect, or signed media links), from the blob
service (SAS redirect), or — the embedded default — from here: werkzeug's conditional
responses answer Range (206, 416), If-Range, If-None-Match / If-Modified-Since (304) and
If-Match (412), for a file on local disk and for an object streamed through the storage API
alike (``_send``; why not ``send_file`` itself is measured there).
"""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from flask import Response, abort, current_app, jsonify, redirect, request
from flask_babel import gettext as _
from flask_login import current_user, login_required
from werkzeug.exceptions import RequestedRangeNotSatisfiable
from werkzeug.http import parse_date, parse_etags, parse_range_header
from werkzeug.wrappers import Response as BaseResponse
from werkzeug.wsgi import FileWrapper

from lms.archives import durations, links, progress
from lms.archives.access import Refusal, viewable_file_or_refusal
from lms.archives.blueprint import bp, refusal_response
from lms.archives.models import CAPTIONS, READY, ArchiveFile
from lms.archives.pages import set_viewer_cookie
from lms.archives.storage import READ_CHUNK, RangeReader, get_storage
from lms.common.database import begin_write
from lms.common.errors import Conflict, DomainError
from lms.common.limits import limit_progress
from lms.common.public import public
from lms.common.timeutil import as_utc
from lms.common.web import content_disposition
from lms.extensions import db


@bp.get("/<int:archive_id>/files/<int:file_id>/link")
@login_required
def file_link(archive_id: int, file_id: int):
    """A fresh playback URL for a file (the player asks when its link has expired): the same
    access check as every file request, then a signed link / SAS URL / the app's file URL."""
    found = viewable_file_or_refusal(current_user, archive_id=archive_id, file_id=file_id)
    if isinstance(found, Refusal):
        return refusal_response(found, json=True)
    assert found.archive_file is not None  # asked for by id
    link = links.issue(current_user, found.archive_file)
    response = jsonify(url=link.url, expires_at=link.expires_at or None)
    response.headers["Cache-Control"] = "no-store"
    set_viewer_cookie(response, link)
    return response


@bp.route("/<int:archive_id>/files/<int:file_id>/<path:name>", methods=["GET", "HEAD"])
@login_required
def file(archive_id: int, file_id: int, name: str):
    """Every byte range goes through here: the access check runs on each request."""
    found = viewable_file_or_refusal(current_user, archive_id=archive_id, file_id=file_id)
    if isinstance(found, Refusal):
        return refusal_response(found)
    assert found.archive_file is not None  # asked for by id
    return _serve(found.archive_file, download=request.args.get("download") == "1")


@bp.route("/media/<path:media_path>", methods=["GET", "HEAD"])
@public
def media(media_path: str):
    """Signed media links without nginx (development, tests): validated exactly as nginx's
    secure_link does (docs/nginx.conf), then the file is served with Range support. No session:
    the link and the viewer cookie are the credentials, as they are for nginx."""
    checked = links.check(links.MEDIA_PATH + media_path, request.args, request.cookies.get(links.COOKIE))
    if checked.outcome == links.EXPIRED:
        return _media_refused(410, _("再生用リンクの有効期限が切れました。ページを再読み込みしてください。"))
    if checked.outcome != links.VALID:
        return _media_refused(403, _("再生用リンクが正しくありません。"))
    archive_file = db.session.get(ArchiveFile, checked.file_id)
    if (archive_file is None or archive_file.storage_key != checked.storage_key or archive_file.status != READY
            or links.extension_of(archive_file) != checked.extension):
        abort(404)
    path = get_storage().local_path(archive_file.storage_key)
    if path is None or not path.is_file():
        abort(404)
    return _send_local(archive_file, path, download=False)


def _media_refused(status: int, message: str) -> Response:
    response = Response(message, status=status, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/files/<int:file_id>/progress", endpoint="progress")
@login_required
@limit_progress
def progress_report(file_id: int):
    found = viewable_file_or_refusal(current_user, file_id=file_id)
    if isinstance(found, Refusal):
        return refusal_response(found, json=True)
    try:
        report = progress.parse_report(request.get_json(silent=True))
        begin_write()
        archive_file = db.session.get_one(ArchiveFile, file_id)
        recorded = progress.record_progress(current_user, archive_file, report)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return jsonify(error=exc.message), 409 if isinstance(exc, Conflict) else 400
    row = recorded.progress
    duration = archive_file.duration_seconds or 0
    body: dict[str, object] = {
        "watched_seconds": row.watched_seconds,
        "duration_seconds": duration,
        "percent": progress.watched_percent(row.watched_seconds, duration),
        "completed": row.completed_at is not None,
        "last_position": row.last_position,
        "counting": recorded.counting,
    }
    if not recorded.counting:
        body["notice"] = durations.viewer_notice(archive_file)
    return jsonify(body)


# ---------------------------------------------------------------- the bytes


def _serve(archive_file: ArchiveFile, download: bool) -> BaseResponse:
    storage = get_storage()
    path = storage.local_path(archive_file.storage_key)
    if path is None and archive_file.kind == CAPTIONS:
        # <track> loads same-origin only (no CORS on the blob service): captions are small.
        return _send_stored(archive_file, download)
    signed = storage.signed_url(
        archive_file.storage_key, seconds=60, filename=archive_file.filename,
        content_type=archive_file.content_type, inline=not download,
    )
    if signed:
        response = redirect(signed, code=302)
        response.headers["Cache-Control"] = "no-store"
        return response
    prefix = current_app.config.get("LMS_ACCEL_REDIRECT_PREFIX")
    if prefix:
        # nginx serves the bytes (Range, If-Range, sendfile) from an internal location.
        response = Response(status=200, mimetype=archive_file.content_type)
        response.headers["X-Accel-Redirect"] = f"{prefix.rstrip('/')}/{archive_file.storage_key}"
        response.headers["Content-Disposition"] = _content_disposition(archive_file, download)
        response.headers["Cache-Control"] = "private, no-cache"
        return response
    if path is None:
        return _send_stored(archive_file, download)
    if not path.is_file():
        abort(404)
    return _send_local(archive_file, path, download)


def _validators(archive_file: ArchiveFile) -> tuple[str, datetime]:
    """The file's ETag (from its verified SHA-256) and Last-Modified (when it became ready)."""
    etag = archive_file.sha256[:32] or str(archive_file.id)
    modified = as_utc(archive_file.completed_at or archive_file.created_at)
    assert modified is not None
    return etag, modified.replace(microsecond=0)


def _send_local(archive_file: ArchiveFile, path: Path, download: bool) -> BaseResponse:
    return _send(archive_file, path.stat().st_size, lambda: open(path, "rb"), download)  # noqa: SIM115 - closed with the response


def _send_stored(archive_file: ArchiveFile, download: bool) -> BaseResponse:
    """An object of a storage without local files, through the storage API: only the requested
    range is fetched (the reader is seekable)."""
    storage, key = get_storage(), archive_file.storage_key

    def opener() -> BinaryIO:
        reader = RangeReader(lambda start, length: storage.open_range(key, start, length), size)
        return io.BufferedReader(reader, buffer_size=READ_CHUNK)

    size = storage.size(key)
    return _send(archive_file, size, opener, download)


def _send(archive_file: ArchiveFile, size: int, opener: Callable[[], BinaryIO], download: bool) -> BaseResponse:
    """The file's bytes with werkzeug's conditional handling (``make_conditional``, what
    ``send_file(conditional=True)`` runs): Range → 206 or 416, If-Range, If-None-Match /
    If-Modified-Since → 304, If-Match → 412.

    Not ``send_file`` itself: it wraps the file in the server's ``wsgi.file_wrapper``, which
    under gunicorn cannot seek, so werkzeug reads every range from the first byte of the file
    (measured under gunicorn, 2 MiB ranges of a 512 MiB file: 24–40 ms at offset 0, 0.6–0.7 s at
    256 MiB, 1.0–1.5 s at 500 MiB; with werkzeug's seekable FileWrapper 12–52 ms at any offset).
    """
    etag, last_modified = _validators(archive_file)
    failed = _precondition_failed(etag, last_modified)
    if failed is not None:
        return failed
    _ignore_unserved_range(size)
    file = opener()
    response = Response(FileWrapper(file, READ_CHUNK), mimetype=archive_file.content_type, direct_passthrough=True)
    response.content_length = size
    response.set_etag(etag)
    response.last_modified = last_modified
    response.headers["Content-Disposition"] = _content_disposition(archive_file, download)
    response.headers["Cache-Control"] = "private, no-cache"
    try:
        return response.make_conditional(request, accept_ranges=True, complete_length=size)
    except RequestedRangeNotSatisfiable:
        file.close()
        raise


def _ignore_unserved_range(size: int) -> None:
    """Several ranges, another unit or a malformed Range header get the whole file (RFC 9110
    lets a server ignore Range; werkzeug would answer 416). A suffix range longer than the file
    (``bytes=-N``, N past its size) is the whole file as a range (RFC 9110 14.1.3; werkzeug
    would answer 416). An If-Range with a weak entity tag never matches (RFC 9110 13.1.5 asks
    for the strong comparison; werkzeug compares the tag without its ``W/``): the whole file."""
    header = request.headers.get("Range")
    if header is None:
        return
    if request.headers.get("If-Range", "").lstrip().startswith("W/"):
        request.environ.pop("HTTP_RANGE", None)
        return
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        request.environ.pop("HTTP_RANGE", None)
        return
    start, end = parsed.ranges[0]
    if start < 0 and end is None and -start > size > 0:
        request.environ["HTTP_RANGE"] = f"bytes=-{size}"


def _precondition_failed(etag: str, last_modified: datetime) -> Response | None:
    """If-Match / If-Unmodified-Since (RFC 9110 13.1.1, 13.1.4), evaluated before any range:
    412 when they do not hold."""
    if_match = request.headers.get("If-Match")
    if if_match:
        tags = parse_etags(if_match)
        if not tags.star_tag and not tags.contains(etag):
            return Response(status=412)
    elif request.headers.get("If-Unmodified-Since"):
        since = parse_date(request.headers["If-Unmodified-Since"])
        if since is not None and last_modified > since:
            return Response(status=412)
    return None


def _content_disposition(archive_file: ArchiveFile, download: bool) -> str:
    fallback = archive_file.filename.encode("ascii", "ignore").decode().replace('"', "") or f"file{archive_file.id}"
    return content_disposition(archive_file.filename, fallback, inline=not download)
