"""Administration under /admin/: the landing page, the allowed tenants, the audit log, the
mail outbox, and signing a user out of every device. The pages compose the public services
of the packages below.

Platform admins only, except the mail outbox and signing out, which a municipal admin does
for their own municipality.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user

from lms.admin import audit_log, audit_text
from lms.admin.forms import SynonymForm
from lms.audit.export import csv_bytes
from lms.audit.queries import select_entries
from lms.audit.services import record_access
from lms.auth.consent import admin_consent_link
from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN, User
from lms.auth.services import sign_out_everywhere, tenant_mapping_reach
from lms.common import once
from lms.common.access import municipality_scope, require_own_object, role_required
from lms.common.database import begin_write, ensure_writer
from lms.common.errors import DomainError, NotFound
from lms.common.forms import ActionForm, Form
from lms.common.limits import limit_export
from lms.common.pagination import Page, beyond_last_page, requested_page
from lms.common.timeutil import to_tokyo, utcnow
from lms.common.web import safe_next
from lms.courses import search
from lms.courses.models import SearchSynonym
from lms.extensions import db
from lms.municipalities.forms import RemoveTenantMappingForm, TenantMappingForm
from lms.municipalities.services import (
    add_tenant_mapping,
    list_municipalities,
    list_tenant_mappings,
    remove_tenant_mapping,
)
from lms.notifications.models import (
    FAILED,
    QUEUED,
    SENDING,
    SENT,
    SKIPPED,
    TEAMS_NOT_USED,
    TEAMS_SENT,
    TEAMS_UNAVAILABLE,
    OutboxMail,
)
from lms.notifications.services import compose_mail, delivery_backlog, is_uncomposed, outbox_query, retry_mail

bp = Blueprint("admin", __name__, url_prefix="/admin")

AUDIT_PER_PAGE = 50
OUTBOX_PER_PAGE = 50
MAIL_STATUS_LABELS = {
    QUEUED: _l("送信待ち"),
    SENDING: _l("送信中"),
    SENT: _l("送信済み"),
    FAILED: _l("送信失敗"),
    SKIPPED: _l("送信不要"),
}
TEAMS_STATE_LABELS = {
    TEAMS_SENT: _l("Teams のアクティビティに届けました"),
    TEAMS_NOT_USED: _l("Teams には送りません（メールのみ）"),
    TEAMS_UNAVAILABLE: _l("Teams に届けられないため、メールで送ります"),
}


@bp.get("/")
@role_required(PLATFORM_ADMIN)
def index():
    return render_template("admin/index.html")


# ---------------------------------------------------------------- allowed tenants


@bp.route("/tenants", methods=["GET", "POST"])
@role_required(PLATFORM_ADMIN)
def tenants():
    form = TenantMappingForm()
    form.municipality_code.choices = [("", _("選んでください"))] + [
        (m.code, f"{m.name}（{m.code}）") for m in list_municipalities(active_only=True)
    ]
    if form.validate_on_submit():
        try:
            add_tenant_mapping(current_user, form.tenant_id.data, form.municipality_code.data, form.mail_domain.data or "")
        except DomainError as exc:
            db.session.rollback()
            form.tenant_id.errors = [*form.tenant_id.errors, exc.message]
        else:
            db.session.commit()
            flash(_("テナントの対応付けを追加しました。"), "success")
            return redirect(url_for("admin.tenants"))
    rows = list_tenant_mappings()
    return render_template(
        "admin/tenants.html",
        form=form,
        rows=rows,
        consent_urls={row.tenant_id: admin_consent_link(row.tenant_id) for row in rows},
        remove_form=RemoveTenantMappingForm(),
        env_setting=bool(current_app.config.get("ENTRA_TENANTS")),
        client_id=current_app.config.get("ENTRA_CLIENT_ID"),
    ), 400 if form.errors else 200


@bp.route("/tenants/<int:mapping_id>/remove", methods=["GET", "POST"])
@role_required(PLATFORM_ADMIN)
def remove_tenant(mapping_id: int):
    if request.method == "GET":
        # One click would stop a whole municipality signing in: say so on a page first.
        try:
            row, users = tenant_mapping_reach(mapping_id)
        except DomainError:
            abort(404)
        return render_template(
            "confirm.html", heading=_("テナントの対応付けを削除"),
            lead=_("この対応付けを削除すると、このテナントのアカウントは %(name)s の職員としてサインインできなくなります。",
                   name=row.municipality.name),
            facts=[(_("区市町村"), f"{row.municipality.name}（{row.municipality.code}）"), (_("テナント ID"), row.tenant_id),
                   (_("メールドメイン"), row.mail_domain or _("（全員）")),
                   (_("これまでこの対応でサインインした利用者"), _("%(n)s 人", n=f"{users:,}"))],
            warning=_("環境変数 ENTRA_TENANTS にある対応は、ここで削除しても環境変数の設定が優先されます。")
            if row.source == "env" else "",
            action_url=url_for("admin.remove_tenant", mapping_id=row.id), button=_("削除する"),
            back_url=url_for("admin.tenants"))
    if not RemoveTenantMappingForm().validate_on_submit():
        abort(400)
    try:
        remove_tenant_mapping(current_user, mapping_id)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("admin.tenants"))
    db.session.commit()
    flash(_("テナントの対応付けを削除しました。"), "success")
    return redirect(url_for("admin.tenants"))


# ---------------------------------------------------------------- audit log


@bp.get("/audit/")
@role_required(PLATFORM_ADMIN)
def audit():
    form, flt = audit_log.filter_form(request.args)
    if flt is None:  # the form shows what to correct; nothing is listed meanwhile
        page: Any = Page(items=[], total=0, page=1, per_page=AUDIT_PER_PAGE)
        params = {}
    else:
        page = db.paginate(select_entries(flt), page=requested_page(), per_page=AUDIT_PER_PAGE, error_out=False)
        if (last := beyond_last_page(page)) is not None:
            return last
        params = flt.as_params()
    return render_template(
        "admin/audit.html", form=form, page=page, params=params, filter_invalid=flt is None,
        municipality_names=audit_log.municipality_names(), targets=audit_text.targets(page.items),
        action_label=audit_text.action_label, detail_lines=audit_text.detail_lines,
        detail_names=audit_text.detail_names(page.items),
    )


@bp.post("/audit/export")
@role_required(PLATFORM_ADMIN)
@limit_export
def audit_export():
    _form, flt = audit_log.filter_form(request.form)
    if flt is None:
        flash(_("絞り込みの条件に誤りがあるため、書き出していません。条件を直してから出力してください。"), "error")
        return redirect(url_for("admin.audit"))
    record_access(current_user, "export.audit", "audit_log", "", None, filters=flt.as_params())
    filename = f"audit-log-{to_tokyo(utcnow()):%Y%m%d-%H%M%S}.csv"
    return Response(
        csv_bytes(audit_log.EXPORT_HEADER, audit_log.export_rows(flt)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )


# ---------------------------------------------------------------- mail outbox


@bp.get("/mail")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def outbox():
    scope = municipality_scope(current_user)
    status = request.args.get("status", "")
    q = request.args.get("q", "").strip()[:100]
    page = db.paginate(outbox_query(scope, status=status, q=q), page=requested_page(), per_page=OUTBOX_PER_PAGE, error_out=False)
    if (last := beyond_last_page(page)) is not None:
        return last
    return render_template(
        "admin/outbox.html", page=page, status=status, q=q, status_labels=MAIL_STATUS_LABELS,
        backlog=delivery_backlog(scope),
    )


def _visible_mail(mail_id: int) -> OutboxMail:
    mail = db.get_or_404(OutboxMail, mail_id)
    require_own_object(current_user, mail.municipality_id, "outbox_mail", mail.id)
    return mail


@bp.get("/mail/<int:mail_id>")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def outbox_detail(mail_id: int):
    mail = _visible_mail(mail_id)
    if is_uncomposed(mail):
        ensure_writer()  # SQLite: the write lock before the first write (the mail is read again under it)
        if is_uncomposed(mail):  # (unless the worker composed it meanwhile)
            # Composed here as the worker would before sending it, so that the page shows the text.
            compose_mail(mail)
            db.session.commit()
    return render_template("admin/outbox_detail.html", mail=mail, status_labels=MAIL_STATUS_LABELS,
                           teams_labels=TEAMS_STATE_LABELS)


@bp.post("/mail/<int:mail_id>/retry")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def outbox_retry(mail_id: int):
    mail = _visible_mail(mail_id)
    try:
        retry_mail(mail.id, current_user)
        db.session.commit()
        flash(_("メールを再送の待ち行列に戻しました。"), "success")
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    return redirect(url_for("admin.outbox_detail", mail_id=mail_id))


# ---------------------------------------------------------------- search synonyms


@bp.route("/search/synonyms", methods=["GET", "POST"])
@role_required(PLATFORM_ADMIN)
def synonyms():
    form = SynonymForm()
    if form.validate_on_submit():
        if (again := once.repeated()) is not None:
            return again
        try:
            group = search.add_synonym_group(current_user, form.words.data or "")
        except DomainError as exc:
            db.session.rollback()
            form.words.errors = [*form.words.errors, exc.message]
        else:
            once.remember(url_for("admin.synonyms"))
            db.session.commit()
            flash(_("同義語を登録しました：%(words)s", words=group.words), "success")
            return redirect(url_for("admin.synonyms"))
    return render_template("admin/synonyms.html", form=form, groups=search.synonym_groups(),
                           action_form=ActionForm()), 400 if form.errors else 200


@bp.route("/search/synonyms/<int:group_id>/delete", methods=["GET", "POST"])
@role_required(PLATFORM_ADMIN)
def delete_synonym(group_id: int):
    """A page that names the group before it goes (no window.confirm)."""
    group = db.get_or_404(SearchSynonym, group_id)
    form = ActionForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        try:
            words = search.delete_synonym_group(current_user, group.id)
        except NotFound:  # deleted a moment ago (sent twice, two tabs)
            db.session.rollback()
            flash(_("この同義語のグループはすでに削除されています。"), "info")
            return redirect(url_for("admin.synonyms"))
        db.session.commit()
        flash(_("同義語のグループを削除しました：%(words)s", words=words), "success")
        return redirect(url_for("admin.synonyms"))
    return render_template("admin/synonym_delete.html", group=group, form=form)
# ---------------------------------------------------------------- users


@bp.post("/users/<int:user_id>/sign-out-everywhere")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def sign_out_user(user_id: int):
    """「すべての端末からサインアウト」 for a user: a platform admin for anyone, a municipal
    admin for the users of their own municipality (anyone else: 404, audited)."""
    if not Form().validate_on_submit():  # (the CSRF token)
        abort(400)
    user = db.get_or_404(User, user_id)
    require_own_object(current_user, user.municipality_id, "user", user.id)
    begin_write()  # (after the check: a refusal's audit entry is written on a connection of its own)
    user = db.session.get_one(User, user_id)
    sessions = sign_out_everywhere(user, actor=current_user)
    db.session.commit()
    flash(ngettext("%(name)s さんをすべての端末からサインアウトさせました（%(count)s 件のセッションを終了）。",
                   "%(name)s さんをすべての端末からサインアウトさせました（%(count)s 件のセッションを終了）。",
                   sessions, name=user.display_name, count=sessions), "success")
    return redirect(safe_next(request.form.get("next"), url_for("main.home")))
