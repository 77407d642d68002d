"""Archive pages: staff's list, search and player page; trainers' management."""

from __future__ import annotations

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import func, select
from wtforms.fields.choices import SelectChoice

from lms.archives import access, durations, links, progress, search, services, uploads
from lms.archives.access import Refusal, viewable_file_or_refusal
from lms.archives.blueprint import bp, refusal_response
from lms.archives.captions import chapters_from
from lms.archives.filetypes import KIND_LABELS, SLIDES, VIDEO
from lms.archives.forms import ActionForm, ArchiveForm
from lms.archives.models import CAPTIONS, FAILED, READY, Archive, ArchiveFile, ViewingProgress
from lms.auth.models import PLATFORM_ADMIN, TRAINER
from lms.common import once
from lms.common.access import refuse_as_missing, role_required
from lms.common.errors import DomainError, InvalidInput, NotAllowed, NotFound
from lms.common.i18n import join_list
from lms.common.ids import parse_id
from lms.common.timeutil import to_tokyo, tokyo_to_utc
from lms.extensions import db
from lms.municipalities.models import KINDS, Municipality

# ====================================================================== staff: list, page, search


@bp.get("/")
@login_required
def index():
    return render_template("archives/index.html", archives=access.visible_archives(current_user))


@bp.get("/search", endpoint="search")
@login_required
def search_page():
    query = (request.args.get("q") or "").strip()[:100]
    hits = search.search_transcripts(current_user, query) if query else []
    return render_template("archives/search.html", query=query, hits=hits)


@bp.get("/<int:archive_id>")
@login_required
def view(archive_id: int):
    found = viewable_file_or_refusal(current_user, archive_id=archive_id)
    if isinstance(found, Refusal):
        return refusal_response(found)
    archive = found.archive
    videos = access.ready_files(archive, VIDEO)
    video = _chosen_video(videos, parse_id(request.args.get("video")))
    # Each video plays with its own captions (the player's track, chapters, the transcript);
    # an archive without a video has its transcript still.
    captions = access.captions_for(archive, video)
    cues = search.cues_of(captions)
    staff = getattr(current_user, "staff_member", None)
    query = (request.args.get("q") or "").strip()[:100]
    # The player's video URL: a signed link served by nginx (or a blob SAS URL) when configured.
    link = links.issue(current_user, video) if video is not None else None
    page = render_template(
        "archives/view.html",
        archive=archive,
        videos=videos,
        video_names={v.id: v.filename for v in videos},
        video=video,
        captions=captions,
        cues=cues,
        chapters=chapters_from(cues),
        slides=access.ready_files(archive, SLIDES),
        progress=progress.progress_for(staff.id if staff else None, [v.id for v in videos]),
        watched_percent=progress.watched_percent,
        query=query,
        hits=search.search_transcripts(current_user, query, archive=archive) if query else [],
        start=request.args.get("t", type=int),
        can_manage=access.can_manage(current_user, archive),
        video_link=link,
        video_notice=durations.viewer_notice(video) if video is not None else None,
    )
    response = Response(page)
    if link is not None:
        set_viewer_cookie(response, link)
    return response


def _chosen_video(videos: list[ArchiveFile], wanted: int | None) -> ArchiveFile | None:
    """The video in the player: the one ``?video=`` names (each video of a recording split in
    parts plays there and records its viewing), else the first."""
    return next((v for v in videos if v.id == wanted), videos[0] if videos else None)


def set_viewer_cookie(response: Response, link: links.MediaLink) -> None:
    if link.cookie:
        response.set_cookie(links.COOKIE, link.cookie, path=links.MEDIA_PATH, httponly=True, samesite="Lax",
                            secure=bool(current_app.config.get("SESSION_COOKIE_SECURE")))


# ====================================================================== trainers: management


@bp.get("/manage")
@role_required(TRAINER, PLATFORM_ADMIN)
def manage():
    return render_template("archives/manage.html", archives=access.manageable_archives(current_user))


def _fill_choices(form: ArchiveForm) -> None:
    courses = access.manageable_courses(current_user)
    form.course_id.choices = [SelectChoice(c.id, c.title) for c in courses]
    titles = {c.id: c.title for c in courses}
    order = {course_id: n for n, course_id in enumerate(titles)}
    # Sessions grouped under their course (one optgroup each, labelled with the course's
    # title): static/js/app.js shows only the chosen course's group; the service refuses a
    # session of another course beside the field, before anything is saved.
    form.session_id.choices = [SelectChoice(0, _("指定しない"))] + [
        SelectChoice(s.id, f"{s.title} {to_tokyo(s.starts_at):%Y-%m-%d %H:%M}".strip(), optgroup=titles[s.course_id])
        for s in sorted(services.session_choices(list(titles)), key=lambda s: (order[s.course_id], s.starts_at))
    ]
    municipalities = db.session.scalars(
        select(Municipality).where(Municipality.active.is_(True)).order_by(Municipality.sort_order, Municipality.code)
    ).all()
    # Each kind once (特別区, 市, 町, 村), in the prefecture's own order within a kind.
    ranked = sorted(municipalities, key=lambda m: KINDS.index(m.kind) if m.kind in KINDS else len(KINDS))
    form.municipality_ids.choices = [SelectChoice(m.id, m.name, optgroup=m.kind_label) for m in ranked]


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
        if (again := once.repeated()) is not None:
            return again
        try:
            archive = services.create_archive(current_user, _input(form))
            target = once.remember(url_for("archives.detail", archive_id=archive.id))
            db.session.commit()
        except (InvalidInput, NotAllowed) as exc:
            db.session.rollback()
            _form_error(form, exc)
        else:
            flash(_("アーカイブを作成しました。ファイルをアップロードしてください。"), "success")
            return redirect(target)
    return render_template("archives/form.html", form=form, archive=None)


@bp.route("/manage/<int:archive_id>/edit", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def edit(archive_id: int):
    archive = _manageable_or_abort(archive_id)
    form = ArchiveForm(obj=None if request.method == "POST" else _FormData(archive))
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


def _naive_tokyo(value):
    value = to_tokyo(value)
    return value.replace(tzinfo=None) if value else None


def _manageable_or_abort(archive_id: int) -> Archive:
    try:
        return access.get_manageable(current_user, archive_id)
    except NotFound:
        abort(404)
    except NotAllowed:  # another trainer's archive: answered as if there were none (audited)
        refuse_as_missing(current_user, "archive", archive_id)


@bp.get("/manage/<int:archive_id>")
@role_required(TRAINER, PLATFORM_ADMIN)
def detail(archive_id: int):
    archive = _manageable_or_abort(archive_id)
    files = [f for f in archive.files if f.status == READY]
    pending = uploads.pending_uploads(archive)
    videos = access.ready_files(archive, VIDEO)
    names = {v.id: v.filename for v in videos}
    return render_template(
        "archives/detail.html",
        archive=archive,
        files=files,
        videos=videos,
        caption_videos={f.id: names.get(access.captions_video_id(archive, f) or 0) for f in files
                        if f.kind == CAPTIONS},
        duration_notices={f.id: durations.duration_notice(f) for f in files},
        uploads=pending,
        failures={u.id: uploads.failure_text(u) for u in pending if u.status == FAILED},
        kind_labels=KIND_LABELS,
        action_form=ActionForm(),
        max_upload=uploads.max_upload_bytes(),
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


@bp.route("/manage/<int:archive_id>/withdraw", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def withdraw(archive_id: int):
    if request.method == "GET":
        archive = _manageable_or_abort(archive_id)
        viewers = db.session.scalar(select(func.count(func.distinct(ViewingProgress.staff_member_id)))
                                    .join(ArchiveFile, ArchiveFile.id == ViewingProgress.archive_file_id)
                                    .where(ArchiveFile.archive_id == archive.id)) or 0
        return render_template(
            "confirm.html", heading=_("アーカイブの公開を終了"),
            lead=_("公開を終了すると、視聴中の人も含めて直ちに視聴できなくなります。視聴の記録と修了は残ります。"),
            facts=[(_("アーカイブ"), archive.title), (_("これまでに視聴した職員"), _("%(n)s 人", n=f"{viewers:,}"))],
            action_url=url_for("archives.withdraw", archive_id=archive.id), button=_("公開を終了する"),
            back_url=url_for("archives.detail", archive_id=archive.id))
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


@bp.post("/manage/<int:archive_id>/uploads/<upload_id>/dismiss")
@role_required(TRAINER, PLATFORM_ADMIN)
def dismiss_upload(archive_id: int, upload_id: str):
    """Take a failed upload's notice off the page (the file was never kept)."""
    archive = _manageable_or_abort(archive_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    try:
        upload = uploads.get_upload(current_user, upload_id)
        if upload.archive_id != archive.id:
            raise NotFound(_("アップロードが見つかりません。"))
        name = upload.filename
        uploads.dismiss_upload(upload)
    except NotFound:
        abort(404)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        db.session.commit()
        flash(_("失敗したアップロード「%(name)s」を一覧から消しました。", name=name), "success")
    return redirect(url_for("archives.detail", archive_id=archive.id))


@bp.route("/manage/<int:archive_id>/files/<int:file_id>/remove", methods=["GET", "POST"])
@role_required(TRAINER, PLATFORM_ADMIN)
def remove_file(archive_id: int, file_id: int):
    archive = _manageable_or_abort(archive_id)
    archive_file = db.session.get(ArchiveFile, file_id)
    if archive_file is None or archive_file.archive_id != archive.id:
        abort(404)
    if request.method == "GET":
        captions = services.captions_of_video(archive_file)
        facts = [(_("アーカイブ"), archive.title), (_("ファイル名"), archive_file.filename)]
        if captions:
            facts.append((_("一緒に削除される字幕"), join_list(c.filename for c in captions)))
        return render_template(
            "confirm.html", heading=_("ファイルを削除"),
            lead=_("このファイルを削除します。元に戻せません。"),
            facts=facts,
            action_url=url_for("archives.remove_file", archive_id=archive.id, file_id=archive_file.id),
            button=_("削除する"), back_url=url_for("archives.detail", archive_id=archive.id))
    if not ActionForm().validate_on_submit():
        abort(400)
    services.remove_file(current_user, archive_file)
    db.session.commit()
    flash(_("ファイル「%(name)s」を削除しました。", name=archive_file.filename), "success")
    return redirect(url_for("archives.detail", archive_id=archive_id))

