"""Viva Learning pages for platform admins (``/teams/viva``): each mapped tenant's switch, its
provider registration id, what was sent and the latest runs; and the courses' thumbnail."""

from __future__ import annotations

from flask import Blueprint, Response, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from lms.audit.services import record_action
from lms.auth.models import PLATFORM_ADMIN
from lms.common.access import role_required
from lms.common.errors import DomainError, NotFound
from lms.common.forms import ActionForm
from lms.common.i18n import join_list
from lms.common.public import public
from lms.extensions import db
from lms.teams import app_package
from lms.teams.graph import graph_configured
from lms.teams.viva import services
from lms.teams.viva.forms import TenantSettingsForm

bp = Blueprint("teams_viva", __name__, url_prefix="/teams/viva")


def _tenant(mapping_id: int) -> services.TenantView:
    try:
        return services.tenant_of_mapping(mapping_id)
    except NotFound:
        abort(404)


@bp.get("/")
@role_required(PLATFORM_ADMIN)
def index():
    return render_template("teams/viva.html", tenants=services.mapped_tenants(), graph_enabled=graph_configured())


@bp.route("/tenants/<int:mapping_id>", methods=["GET", "POST"])
@role_required(PLATFORM_ADMIN)
def tenant(mapping_id: int):
    view = _tenant(mapping_id)
    row = view.row
    form = TenantSettingsForm(obj=row) if row is not None else TenantSettingsForm()
    if form.validate_on_submit():
        try:
            services.save_tenant(current_user, view.tenant_id, registration_id=form.registration_id.data or "",
                                 enabled=bool(form.enabled.data))
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            form.registration_id.errors = [*form.registration_id.errors, exc.message]
        else:
            flash(_("Viva Learning 連携の設定を保存しました。"), "success")
            return redirect(url_for("teams_viva.tenant", mapping_id=mapping_id))
    return render_template("teams/viva_tenant.html", view=view, form=form, action_form=ActionForm(),
                           operations=services.tenant_operations(view.tenant_id), graph_enabled=graph_configured())


@bp.post("/tenants/<int:mapping_id>/reconcile")
@role_required(PLATFORM_ADMIN)
def reconcile(mapping_id: int):
    view = _tenant(mapping_id)
    if ActionForm().validate_on_submit():
        try:
            services.reconcile_now(current_user, view.tenant_id)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            flash(_("Viva Learning との照合を受け付けました。結果はこのページの処理履歴に表示されます。"), "success")
    return redirect(url_for("teams_viva.tenant", mapping_id=mapping_id))


@bp.route("/tenants/<int:mapping_id>/disable", methods=["GET", "POST"])
@role_required(PLATFORM_ADMIN)
def disable(mapping_id: int):
    """Switching a tenant off asks on a page first: its learners' courses and progress stop
    reaching Viva Learning."""
    view = _tenant(mapping_id)
    back = url_for("teams_viva.tenant", mapping_id=mapping_id)
    if view.row is None or not view.row.enabled:
        flash(_("このテナントの Viva Learning 連携は有効になっていません。"), "error")
        return redirect(back)
    if ActionForm().validate_on_submit():
        view.row.enabled = False
        view.row.updated_by_id = current_user.id
        record_action(current_user, "teams.viva_disable", "viva_tenant", view.row.id, None, tenant_id=view.tenant_id)
        db.session.commit()
        flash(_("Viva Learning 連携を停止しました。"), "success")
        return redirect(back)
    return render_template(
        "confirm.html", heading=_("Viva Learning 連携の停止"),
        lead=_("停止すると、このテナントの Viva Learning には研修・指名研修・修了が送られなくなります。"
               "Viva Learning にすでにある研修と受講状況はそのまま残ります。"),
        facts=[(_("テナント ID"), view.tenant_id), (_("区市町村"), join_list(view.municipalities)),
               (_("送信済みの研修"), _("%(n)s 件", n=f"{view.contents:,}")),
               (_("送信済みの受講状況"), _("%(n)s 件", n=f"{view.activities:,}"))],
        action_url=url_for("teams_viva.disable", mapping_id=mapping_id), button=_("停止する"), back_url=back)


_thumbnail: dict[str, bytes] = {}
DEFAULT_COLOR = "#1D4F91"


@bp.get("/thumbnail.png")
@public
def thumbnail():
    """The courses' thumbnail in Viva Learning (the Teams app's colour icon): Viva Learning
    shows it to the tenant's users, who are not signed in to Manabi there."""
    try:
        color = app_package.accent_color()
    except app_package.PackageUnavailable:
        color = DEFAULT_COLOR
    data = _thumbnail.get(color)
    if data is None:
        data = _thumbnail[color] = app_package.color_icon(color)
    return Response(data, mimetype="image/png", headers={"Cache-Control": "public, max-age=86400"})
