"""Archives: trainers' management and resumable uploads (tus 1.0.0), staff playback, progress, search."""

from __future__ import annotations

from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf.csrf import ValidationError, validate_csrf
from sqlalchemy import select
from sqlalchemy.orm import joinedload
from werkzeug.http import (
    http_date,
    is_resource_modified,
    parse_date,
    parse_etags,
    parse_range_header,
    quote_etag,
    unquote_etag,
)
from wtforms.fields.choices import SelectChoice

from lms.archives import links, services
from lms.archives.body import body_pieces
from lms.archives.captions import chapters_from
from lms.archives.filetypes import KIND_LABELS, SLIDES, VIDEO
from lms.archives.forms import ActionForm, ArchiveForm
from lms.archives.models import CAPTIONS, READY, Archive, ArchiveFile
from lms.archives.storage import get_storage
from lms.auth.models import PLATFORM_ADMIN, TRAINER
from lms.common.access import role_required
from lms.common.database import begin_write
from lms.common.errors import Conflict, DomainError, InvalidInput, NotAllowed, NotFound
from lms.common.limits import limit_progress, limit_upload
from lms.common.public import public
from lms.common.timeutil import as_utc, to_tokyo, tokyo_to_utc
from lms.courses.models import TrainingSession
from lms.extensions import csrf, db
from lms.municipalities.models import Municipality

bp = Blueprint("archives", __name__, url_prefix="/archives")


@bp.record_once
def _allow_blob_media(state) -> None:
    """With Azure storage, players fetch media from the blob host through SAS redirects: let
    the Content-Security-Policy's media-src allow it (lms.common.web reads CSP_MEDIA_EXTRA
    when it builds the header, after the blueprints are registered)."""
    app = state.app
    if (app.config.get("LMS_STORAGE_BACKEND") or "local").lower() != "azure":
        return
    origin = app.config.get("LMS_AZURE_BLOB_ORIGIN")
    if not origin and app.config.get("AZURE_STORAGE_CONNECTION_STRING"):
        from lms.archives.storage import AzureBlobStorage

        origin = AzureBlobStorage(app.config["AZURE_STORAGE_CONNECTION_STRING"], "x").blob_origin()
    if origin:
        extra = list(app.config.get("CSP_MEDIA_EXTRA", []))
        if origin not in extra:
            app.config["CSP_MEDIA_EXTRA"] = [*extra, origin]

TUS_VERSION = "1.0.0"
READ_SIZE = 1024 * 1024


# ====================================================================== staff: list, page, search


@bp.get("/")
@login_required
def index():
    archives = services.visible_archives(current_user)
    return render_template("archives/index.html", archives=archives)


@bp.get("/search")
@login_required
def search():
    query = (request.args.get("q") or "").strip()[:100]
    hits = services.search_transcripts(current_user, query) if query else []
    return render_template("archives/search.html", query=query, hits=hits)


@bp.get("/<int:archive_id>")
@login_required
def view(archive_id: int):
    try:
        archive = services.get_viewable(current_user, archive_id)
    except NotFound:
        abort(404)
    except NotAllowed as exc:
        return render_template("archives/refused.html", message=exc.message), 403
    videos = services.ready_files(archive, VIDEO)
    captions = services.current_captions(archive)
    cues = services.cues_of(captions)
    staff = getattr(current_user, "staff_member", None)
    progress = services.progress_for(staff.id if staff else None, [v.id for v in videos])
    query = (request.args.get("q") or "").strip()[:100]
    hits = services.search_transcripts(current_user, query, archive=archive) if query else []
    start = request.args.get("t", type=int)
    # The player's video URL: a signed link served by nginx (or a blob SAS URL) when configured.
    link = links.issue(current_user, videos[0]) if videos else None
    page = render_template(
        "archives/view.html",
        archive=archive,
        videos=videos,
        captions=captions,
        cues=cues,
        chapters=chapters_from(cues),
        slides=services.ready_files(archive, SLIDES),
        progress=progress,
        query=query,
        hits=hits,
        start=start,
        can_manage=services.can_manage(current_user, archive),
        video_link=link,
    )
    response = Response(page)
    if link is not None:
        _set_viewer_cookie(response, link)
    return response


def _set_viewer_cookie(response: Response, link: links.MediaLink) -> None:
    if link.cookie:
        response.set_cookie(links.COOKIE, link.cookie, path=links.MEDIA_PATH, httponly=True, samesite="Lax",
                            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))


@bp.get("/<int:archive_id>/files/<int:file_id>/link")
@login_required
def file_link(archive_id: int, file_id: int):
    """A fresh playback URL for a file (the player asks when its link has expired): the same
    access check as every file request, then a signed link / SAS URL / the app's file URL."""
    archive_file = db.session.get(ArchiveFile, file_id)
    archive = db.session.get(Archive, archive_id)
    if archive is None:
        return jsonify(error=_("アーカイブが見つかりません。")), 404
    reason = services.view_refusal(current_user, archive)
    if reason:
        return jsonify(error=reason), 403
    if archive_file is None or archive_file.archive_id != archive_id or archive_file.status != READY:
        return jsonify(error=_("ファイルが見つかりません。")), 404
    link = links.issue(current_user, archive_file)
    response = jsonify(url=link.url, expires_at=link.expires_at or None)
    response.headers["Cache-Control"] = "no-store"
    _set_viewer_cookie(response, link)
    return response


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
    if archive_file is None or archive_file.storage_key != checked.storage_key or archive_file.status != READY:
        abort(404)
    path = get_storage().local_path(archive_file.storage_key)
    if path is None or not path.is_file():
        abort(404)
    return _local_file_response(archive_file, path, download=False)


def _media_refused(status: int, message: str) -> Response:
    response = Response(message, status=status, mimetype="text/plain")
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/<int:archive_id>/files/<int:file_id>/<path:name>", methods=["GET", "HEAD"])
@login_required
def file(archive_id: int, file_id: int, name: str):
    """Every byte range goes through here: the access check runs on each request."""
    # One query for file, archive and course (this runs for every range request of a video).
    archive_file = db.session.get(
        ArchiveFile, file_id, options=[joinedload(ArchiveFile.archive).joinedload(Archive.course)]
    )
    if archive_file is None or archive_file.archive_id != archive_id:
        archive = db.session.get(Archive, archive_id)
        if archive is None:
            abort(404)
        reason = services.view_refusal(current_user, archive)
        if reason:
            return _refused(reason)
        abort(404)
    reason = services.view_refusal(current_user, archive_file.archive)
    if reason:
        return _refused(reason)
    if archive_file.status != READY:
        abort(404)
    return _serve(archive_file, download=request.args.get("download") == "1")


def _refused(message: str):
    if request.accept_mimetypes.best == "application/json":
        return jsonify(error=_("アクセスできません"), message=message), 403
    response = Response(render_template("archives/refused.html", message=message), status=403)
    response.headers["Cache-Control"] = "no-store"
    return response


def _content_disposition(archive_file: ArchiveFile, download: bool) -> str:
    kind = "attachment" if download else "inline"
    ascii_name = archive_file.filename.encode("ascii", "ignore").decode() or f"file{archive_file.id}"
    ascii_name = ascii_name.replace('"', "")
    return f"{kind}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(archive_file.filename)}"


def _serve(archive_file: ArchiveFile, download: bool):
    storage = get_storage()
    if archive_file.kind == CAPTIONS and storage.local_path(archive_file.storage_key) is None:
        # <track> loads same-origin only (no CORS on the blob service): captions are small.
        response = Response(b"".join(storage.open_range(archive_file.storage_key)), mimetype="text/vtt")
        response.headers["Cache-Control"] = "private, no-cache"
        return response
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
    path = storage.local_path(archive_file.storage_key)
    if path is None or not path.is_file():
        abort(404)
    return _local_file_response(archive_file, path, download)


def _local_file_response(archive_file: ArchiveFile, path, download: bool) -> Response:
    """RFC 9110 byte ranges and conditional requests for the embedded default (no nginx):
    206 + Content-Range, 416 beyond the end, If-Range, 304 (If-None-Match / If-Modified-Since),
    412 (If-Match / If-Unmodified-Since). Bytes are streamed from disk in 1 MiB pieces."""
    size = path.stat().st_size
    etag = archive_file.sha256[:32] or str(archive_file.id)
    last_modified = as_utc(archive_file.completed_at or archive_file.created_at).replace(microsecond=0)
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": quote_etag(etag),
        "Last-Modified": http_date(last_modified),
        "Content-Disposition": _content_disposition(archive_file, download),
        "Cache-Control": "private, no-cache",
    }
    failed = _precondition_failed(etag, last_modified)
    if failed is not None:
        return failed
    if not is_resource_modified(request.environ, etag, last_modified=last_modified, ignore_if_range=True):
        return Response(status=304, headers=headers)
    start, stop, status = 0, size, 200
    resolve = _requested_range(etag, last_modified)
    if resolve is not None:
        start, stop = resolve(size)
        if start >= size:
            return Response(status=416, headers={**headers, "Content-Range": f"bytes */{size}"})
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    body = [] if request.method == "HEAD" else _read_range(path, start, stop)
    response = Response(body, status=status, headers=headers, mimetype=archive_file.content_type,
                        direct_passthrough=True)
    response.content_length = stop - start
    return response


def _requested_range(etag: str, last_modified):
    """For a single byte range, a function of the file size giving (start, stop); None for the
    whole file. Several ranges are answered with the whole file (allowed by RFC 9110); a stale If-Range too."""
    header = request.headers.get("Range")
    if not header:
        return None
    if_range = request.headers.get("If-Range")
    if if_range:
        if if_range.startswith(('"', 'W/"')):
            tag, weak = unquote_etag(if_range)
            if weak or tag != etag:
                return None
        else:
            date = parse_date(if_range)
            if date is None or date != last_modified:
                return None
    parsed = parse_range_header(header)
    if parsed is None or parsed.units != "bytes" or len(parsed.ranges) != 1:
        return None
    first, end = parsed.ranges[0]

    def resolve(size: int):
        if first < 0:  # suffix: the last N bytes
            return max(size + first, 0), size
        return first, min(end if end is not None else size, size)

    return resolve


def _read_range(path, start: int, stop: int):
    """A generator: the file is closed when the response ends or the client goes away."""
    with open(path, "rb") as fh:
        fh.seek(start)
        remaining = stop - start
        while remaining > 0:
            data = fh.read(min(READ_SIZE, remaining))
            if not data:
                return
            remaining -= len(data)
            yield data


def _precondition_failed(etag: str, last_modified):
    """If-Match / If-Unmodified-Since (RFC 9110 13.1.1, 13.1.4): 412 when they do not hold."""
    if_match = request.headers.get("If-Match")
    if if_match:
        tags = parse_etags(if_match)
        if not tags.star_tag and not tags.contains(etag):
            return Response(status=412)
    elif request.headers.get("If-Unmodified-Since"):
        since = parse_date(request.headers["If-Unmodified-Since"])
        if since is not None and last_modified.replace(microsecond=0) > since:
            return Response(status=412)
    return None


@bp.post("/files/<int:file_id>/progress")
@login_required
@limit_progress
def progress(file_id: int):
    archive_file = db.session.get(ArchiveFile, file_id)
    if archive_file is None:
        return jsonify(error=_("動画が見つかりません。")), 404
    reason = services.view_refusal(current_user, archive_file.archive)
    if reason:
        return jsonify(error=reason), 403
    try:
        report = services.parse_report(request.get_json(silent=True))
        begin_write()
        archive_file = db.session.get(ArchiveFile, file_id)
        row = services.record_progress(current_user, archive_file, report)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        return jsonify(error=exc.message), 409 if isinstance(exc, Conflict) else 400
    duration = row.duration_seconds or 0
    return jsonify(
        watched_seconds=row.watched_seconds,
        duration_seconds=duration,
        percent=min(100, round(row.watched_seconds * 100 / duration)) if duration else 0,
        completed=row.completed_at is not None,
        last_position=row.last_position,
    )


# ====================================================================== trainers: management


@bp.get("/manage")
@role_required(TRAINER, PLATFORM_ADMIN)
def manage():
    return render_template("archives/manage.html", archives=services.manageable_archives(current_user))


def _fill_choices(form: ArchiveForm) -> None:
    courses = services.manageable_courses(current_user)
    form.course_id.choices = [SelectChoice(c.id, c.title) for c in courses]
    course_ids = [c.id for c in courses]
    sessions = db.session.scalars(
        select(TrainingSession).where(TrainingSession.course_id.in_(course_ids)).order_by(TrainingSession.starts_at)
    ).all() if course_ids else []
    titles = {c.id: c.title for c in courses}
    form.session_id.choices = [SelectChoice(0, _("指定しない"))] + [
        SelectChoice(s.id, f"{titles[s.course_id]} {s.title} {to_tokyo(s.starts_at):%Y-%m-%d %H:%M}") for s in sessions
    ]
    municipalities = db.session.scalars(
        select(Municipality).where(Municipality.active.is_(True)).order_by(Municipality.sort_order, Municipality.code)
    ).all()
    form.municipality_ids.choices = [SelectChoice(m.id, m.name, optgroup=m.kind) for m in municipalities]


def _input(form: ArchiveForm) -> services.ArchiveInput:
    return services.ArchiveInput(
        course_id=form.course_id.data,
        session_id=form.session_id.data or None,
        title=form.title.data or "",
        description=form.description.data or "",
        available_from=tokyo_to_utc(form.available_from.data) if form.available_from.data else None,
        available_until=tokyo_to_utc(form.available_until.data) if form.available_until.data else None,
        audience=form.audience.data,
        municipality_ids=list(form.municipality_ids.data or []),
    )


def _form_error(form: ArchiveForm, exc: DomainError) -> None:
    name = exc.context.get("field")
    if name and name in form:
        form[name].errors = [*form[name].errors, exc.message]
    else:
        flash(exc.message, "error")


@bp.route("/manage/new", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def create():
    form = ArchiveForm()
    _fill_choices(form)
    if not form.course_id.choices:
        flash(_("アーカイブを作成できる研修がありません。研修の担当者に設定されている必要があります。"), "error")
        return redirect(url_for("archives.manage"))
    if form.validate_on_submit():
        try:
            archive = services.create_archive(current_user, _input(form))
            db.session.commit()
        except (InvalidInput, NotAllowed) as exc:
            db.session.rollback()
            _form_error(form, exc)
        else:
            flash(_("アーカイブを作成しました。ファイルをアップロードしてください。"), "success")
            return redirect(url_for("archives.detail", archive_id=archive.id))
    return render_template("archives/form.html", form=form, archive=None)


@bp.route("/manage/<int:archive_id>/edit", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def edit(archive_id: int):
    archive = _manageable_or_abort(archive_id)
    form = ArchiveForm(obj=None if request.method == "POST" else _form_data(archive))
    _fill_choices(form)
    if form.validate_on_submit():
        try:
            services.update_archive(current_user, archive, _input(form))
            db.session.commit()
        except (InvalidInput, NotAllowed) as exc:
            db.session.rollback()
            _form_error(form, exc)
        else:
            flash(_("アーカイブを更新しました。"), "success")
            return redirect(url_for("archives.detail", archive_id=archive.id))
    return render_template("archives/form.html", form=form, archive=archive)


class _FormData:
    def __init__(self, archive: Archive):
        self.course_id = archive.course_id
        self.session_id = archive.session_id or 0
        self.title = archive.title
        self.description = archive.description
        self.available_from = _naive_tokyo(archive.available_from)
        self.available_until = _naive_tokyo(archive.available_until)
        self.audience = archive.audience
        self.municipality_ids = [m.municipality_id for m in archive.municipalities]


def _form_data(archive: Archive) -> _FormData:
    return _FormData(archive)


def _naive_tokyo(value):
    value = to_tokyo(value)
    return value.replace(tzinfo=None) if value else None


def _manageable_or_abort(archive_id: int) -> Archive:
    try:
        return services.get_manageable(current_user, archive_id)
    except NotFound:
        abort(404)
    except NotAllowed:
        from lms.audit.services import record_denied

        record_denied(current_user, "archive", archive_id)
        abort(403)


@bp.get("/manage/<int:archive_id>")
@role_required(TRAINER, PLATFORM_ADMIN)
def detail(archive_id: int):
    archive = _manageable_or_abort(archive_id)
    files = [f for f in archive.files if f.status == READY]
    return render_template(
        "archives/detail.html",
        archive=archive,
        files=files,
        uploads=services.pending_uploads(archive),
        kind_labels=KIND_LABELS,
        action_form=ActionForm(),
        max_upload=services.max_upload_bytes(),
        has_captions=any(f.kind == CAPTIONS for f in files),
        municipality_names=dict(
            db.session.execute(
                select(Municipality.id, Municipality.name).where(
                    Municipality.id.in_([m.municipality_id for m in archive.municipalities])
                )
            ).all()
        ),
    )


@bp.post("/manage/<int:archive_id>/publish")
@role_required(TRAINER, PLATFORM_ADMIN)
def publish(archive_id: int):
    return _state_change(archive_id, services.publish_archive, _("アーカイブを公開しました。"))


@bp.post("/manage/<int:archive_id>/withdraw")
@role_required(TRAINER, PLATFORM_ADMIN)
def withdraw(archive_id: int):
    return _state_change(archive_id, services.withdraw_archive, _("アーカイブの公開を終了しました。視聴はただちに停止されます。"))


def _state_change(archive_id: int, action, message: str):
    archive = _manageable_or_abort(archive_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        action(current_user, archive)
        db.session.commit()
        flash(message, "success")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("archives.detail", archive_id=archive_id))


@bp.post("/manage/<int:archive_id>/files/<int:file_id>/remove")
@role_required(TRAINER, PLATFORM_ADMIN)
def remove_file(archive_id: int, file_id: int):
    archive = _manageable_or_abort(archive_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    archive_file = db.session.get(ArchiveFile, file_id)
    if archive_file is None or archive_file.archive_id != archive.id:
        abort(404)
    services.remove_file(current_user, archive_file)
    db.session.commit()
    flash(_("ファイル「%(name)s」を削除しました。", name=archive_file.filename), "success")
    return redirect(url_for("archives.detail", archive_id=archive_id))


# ====================================================================== tus 1.0.0 resumable uploads


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


def _expires(upload) -> str:
    return http_date(as_utc(upload.expires_at))


@bp.route("/uploads", methods=["OPTIONS"])
@csrf.exempt
@login_required
def tus_options():
    response = _tus(Response(status=204))
    response.headers["Tus-Version"] = TUS_VERSION
    response.headers["Tus-Extension"] = "creation,termination,expiration"
    response.headers["Tus-Max-Size"] = str(services.max_upload_bytes())
    return response


@bp.post("/manage/<int:archive_id>/uploads")
@csrf.exempt
@limit_upload
def tus_create(archive_id: int):
    refused = _tus_guard()
    if refused:
        return refused
    try:
        length = int(request.headers.get("Upload-Length", ""))
    except ValueError:
        return _tus_error(400, _("ファイルのサイズが指定されていません。"))
    archive = db.session.get(Archive, archive_id)
    if archive is None:
        return _tus_error(404, _("アーカイブが見つかりません。"))
    try:
        metadata = services.parse_tus_metadata(request.headers.get("Upload-Metadata"))
        upload = services.create_upload(current_user, archive, length, metadata)
        db.session.commit()
    except services.UploadRejected as exc:
        db.session.rollback()
        return _tus_error(exc.status, exc.message)
    except NotAllowed as exc:
        db.session.rollback()
        return _tus_error(403, exc.message)
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
        upload = services.get_upload(current_user, upload_id)
    except NotFound as exc:
        return _tus_error(404, exc.message)
    except NotAllowed as exc:
        return _tus_error(403, exc.message)
    gone = services.upload_gone(upload)
    if request.method == "DELETE":
        if gone:
            return _tus(Response(status=204))
        try:
            services.terminate_upload(upload)
        except Conflict as exc:
            return _tus_error(409, exc.message)
        db.session.commit()
        return _tus(Response(status=204))
    if gone:
        return _tus_error(410 if upload.status != "failed" else 404, gone)
    if request.method == "HEAD":
        response = _tus(Response(status=200))
        response.headers["Upload-Offset"] = str(services.current_offset(upload))
        response.headers["Upload-Length"] = str(upload.declared_length)
        response.headers["Upload-Expires"] = _expires(upload)
        return response
    return _tus_patch(upload)


def _tus_patch(upload) -> Response:
    if request.mimetype != "application/offset+octet-stream":
        return _tus_error(415, _("送信形式が正しくありません。"))
    try:
        offset = int(request.headers.get("Upload-Offset", ""))
    except ValueError:
        return _tus_error(400, _("アップロード位置が指定されていません。"))
    current = services.current_offset(upload)
    if upload.status == READY:
        response = _tus(Response(status=204))
        response.headers["Upload-Offset"] = str(upload.declared_length)
        return response
    if offset != current:
        return _tus_error(409, _("アップロード位置が一致しません。再開してください。"))
    snapshot = services.UploadSnapshot.of(upload)
    db.session.commit()  # no transaction stays open while the body streams in
    # Only this route reads big bodies: the form limit (MAX_CONTENT_LENGTH) is raised per chunk.
    request.max_content_length = current_app.config.get("LMS_UPLOAD_CHUNK_MAX_BYTES", 256 * 1024 * 1024)
    stream = request.stream  # refuses (413) a declared body above the limit
    pieces = body_pieces(request.environ, stream, request.content_length)
    try:
        result = services.receive_chunk(snapshot, offset, pieces)
    except Conflict as exc:
        return _tus_error(409, exc.message)
    begin_write()
    upload = db.session.get(services.UploadSession, snapshot.id)
    services.save_chunk_result(upload, result)
    if result.rejected is not None:
        services.reject_upload(upload, result.rejected.message)
        db.session.commit()
        return _tus_error(result.rejected.status, result.rejected.message)
    if result.offset == upload.declared_length and not result.disconnected:
        try:
            services.finish_upload(upload)
        except services.UploadRejected as exc:
            services.reject_upload(upload, exc.message)
            db.session.commit()
            return _tus_error(exc.status, exc.message)
    db.session.commit()
    if result.disconnected:
        return _tus_error(400, _("通信が途切れました。再開してください。"))
    response = _tus(Response(status=204))
    response.headers["Upload-Offset"] = str(result.offset)
    response.headers["Upload-Expires"] = _expires(upload)
    return response


# ====================================================================== CLI: flask --app wsgi archives …


@bp.cli.command("expire-uploads")
def expire_uploads_command():
    """Delete the parts of unfinished uploads past their expiry (also run by the worker)."""
    import click

    from lms.archives.tasks import run_expire_uploads

    click.echo(f"expired uploads: {run_expire_uploads()}")
