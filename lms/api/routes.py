"""Platform-admin pages of the API's client applications, under /admin/api-clients:
register an Entra application for a municipality (or as the platform client), revoke it."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_login import current_user

from lms.api.forms import ApiClientForm
from lms.api.services import get_client, list_clients, register_client, revoke_client
from lms.common import once
from lms.common.access import role_required
from lms.common.errors import DomainError
from lms.common.forms import ActionForm
from lms.common.roles import PLATFORM_ADMIN
from lms.extensions import db
from lms.municipalities.services import list_municipalities

bp = Blueprint("api_clients", __name__, url_prefix="/admin/api-clients")


@bp.route("", methods=["GET", "POST"])
@role_required(PLATFORM_ADMIN)
def index():
    form = ApiClientForm()
    form.municipality_id.choices = [(0, _("プラットフォーム（全団体）"))] + [
        (m.id, f"{m.code} {m.name}") for m in list_municipalities()]
    if form.validate_on_submit():
        if (again := once.repeated()) is not None:
            return again
        try:
            client = register_client(form.application_id.data, form.name.data, form.municipality_id.data or None,
                                     current_user)
        except DomainError as exc:
            db.session.rollback()
            form.application_id.errors.append(exc.message)
        else:
            once.remember(url_for("api_clients.index"))
            db.session.commit()
            flash(_("アプリケーション「%(name)s」を登録しました。", name=client.name), "success")
            return redirect(url_for("api_clients.index"))
    status = 400 if form.errors else 200
    return render_template("api/clients.html", form=form, clients=list_clients()), status


@bp.route("/<int:client_id>/revoke", methods=["GET", "POST"])
@role_required(PLATFORM_ADMIN)
def revoke(client_id: int):
    client = get_client(client_id)
    if client is None:
        abort(404)
    form = ActionForm()
    if form.validate_on_submit():
        try:
            revoke_client(client.id, current_user)
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(_("アプリケーション「%(name)s」の登録を取り消しました。", name=client.name), "success")
        return redirect(url_for("api_clients.index"))
    scope = client.municipality.name if client.municipality else _("プラットフォーム（全団体）")
    return render_template(
        "confirm.html",
        heading=_("API クライアントの登録を取り消す"),
        lead=_("取り消すと、このアプリケーションのアクセストークンは直ちに受け付けられなくなります。取り消しは元に戻せません（同じアプリケーション ID は登録し直せないため、必要になったら Entra で新しいアプリケーションを作って登録します）。"),
        facts=[(_("名前"), client.name), (_("アプリケーション ID"), client.application_id), (_("団体"), scope)],
        warning=None,
        button=_("登録を取り消す"),
        action_url=url_for("api_clients.revoke", client_id=client.id),
        back_url=url_for("api_clients.index"),
    )
