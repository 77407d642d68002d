"""Webhook pages under /admin/webhooks: the platform admins manage every endpoint (a platform
endpoint receives every municipality's events), a training office (municipal admin) its own
municipality's. Deliveries can be inspected and sent again from here."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from lms.api.webhooks import outbound, services
from lms.api.webhooks.forms import EndpointForm
from lms.api.webhooks.models import DELIVERED, FAILED, QUEUED, SENDING, WebhookAttempt, WebhookEndpoint
from lms.common import once
from lms.common.access import municipality_scope, require_own_object, role_required
from lms.common.errors import DomainError
from lms.common.forms import ActionForm
from lms.common.pagination import beyond_last_page, requested_page
from lms.common.roles import MUNICIPAL_ADMIN, PLATFORM_ADMIN
from lms.extensions import db
from lms.municipalities.services import list_municipalities

bp = Blueprint("webhooks", __name__, url_prefix="/admin/webhooks")

PER_PAGE = 50
STATUS_LABELS = {QUEUED: _l("送信待ち"), SENDING: _l("送信中"), DELIVERED: _l("配信済み"), FAILED: _l("失敗")}


def _status_labels() -> dict[str, str]:
    return {key: str(label) for key, label in STATUS_LABELS.items()}


def _form(endpoint: WebhookEndpoint | None = None) -> EndpointForm:
    form = EndpointForm()
    form.event_types.choices = [(key, str(label)) for key, label in services.EVENT_TYPES.items()]
    if current_user.has_role(PLATFORM_ADMIN) and endpoint is None:
        form.municipality_id.choices = [(0, _("プラットフォーム（全団体）"))] + [
            (m.id, f"{m.code} {m.name}") for m in list_municipalities()]
    else:
        del form.municipality_id
    if endpoint is not None and request.method == "GET":
        form.url.data, form.description.data = endpoint.url, endpoint.description
        form.event_types.data = endpoint.types
    return form


def _endpoint(endpoint_id: int) -> WebhookEndpoint:
    endpoint = db.get_or_404(WebhookEndpoint, endpoint_id)
    require_own_object(current_user, endpoint.municipality_id, "webhook_endpoint", endpoint.id)
    return endpoint


def _save(action, form: EndpointForm, *args, remember=None) -> WebhookEndpoint | None:
    try:
        endpoint = action(current_user, *args, form.url.data or "", form.description.data or "",
                          list(form.event_types.data or []))
    except DomainError as exc:
        db.session.rollback()
        target = form[exc.context.get("field", "url")]
        target.errors = [*target.errors, exc.message]
        return None
    if remember is not None:
        remember(endpoint)
    db.session.commit()
    return endpoint


@bp.route("", methods=["GET", "POST"])
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def index():
    scope = municipality_scope(current_user)
    form = _form()
    if form.validate_on_submit():
        municipality_id = scope if not current_user.has_role(PLATFORM_ADMIN) else (form.municipality_id.data or None)
        if (again := once.repeated()) is not None:
            return again
        endpoint = _save(services.register_endpoint, form, municipality_id,
                         remember=lambda e: once.remember(url_for("webhooks.detail", endpoint_id=e.id)))
        if endpoint is not None:
            flash(_("送信先を登録しました。署名シークレットで受信側の検証を設定してください。"), "success")
            return redirect(url_for("webhooks.detail", endpoint_id=endpoint.id))
    endpoints = db.session.scalars(services.endpoint_query(scope)).all()
    return render_template("webhooks/index.html", form=form, endpoints=endpoints, event_types=services.EVENT_TYPES,
                           counts={e.id: services.delivery_counts(e.id) for e in endpoints},
                           status_labels=_status_labels()), (400 if form.errors else 200)


@bp.route("/<int:endpoint_id>", methods=["GET", "POST"])
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def detail(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    form = _form(endpoint)
    if form.validate_on_submit() and _save(services.update_endpoint, form, endpoint) is not None:
        flash(_("送信先を変更しました。"), "success")
        return redirect(url_for("webhooks.detail", endpoint_id=endpoint.id))
    status = request.args.get("status", "")
    status = status if status in STATUS_LABELS else ""
    page = db.paginate(services.delivery_query(endpoint.id, status), page=requested_page(), per_page=PER_PAGE,
                       error_out=False)
    if (last := beyond_last_page(page)) is not None:
        return last
    return render_template("webhooks/detail.html", endpoint=endpoint, form=form, page=page, status=status,
                           counts=services.delivery_counts(endpoint.id), status_labels=_status_labels(),
                           event_types=services.EVENT_TYPES, action_form=ActionForm()), (400 if form.errors else 200)


def _act(endpoint: WebhookEndpoint, action, done: str, back: str | None = None):
    """A POST button's action: done (flash ``done``) or refused (flash why), then back."""
    form = ActionForm()
    if form.validate_on_submit():
        try:
            action()
        except DomainError as exc:
            db.session.rollback()
            flash(exc.message, "error")
        else:
            db.session.commit()
            flash(done, "success")
    return redirect(back or url_for("webhooks.detail", endpoint_id=endpoint.id))


@bp.post("/<int:endpoint_id>/test")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def send_test(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    return _act(endpoint, lambda: services.send_test_event(current_user, endpoint),
                _("テストイベントを送信待ちにしました。配信の一覧で結果を確認できます。"))


@bp.post("/<int:endpoint_id>/enable")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def enable(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    return _act(endpoint, lambda: services.enable_endpoint(current_user, endpoint),
                _("送信先を再開しました。停止中のイベントを順に送信します。"))


@bp.post("/<int:endpoint_id>/replay-failed")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def replay_failed(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    return _act(endpoint, lambda: services.replay_failed(current_user, endpoint),
                _("失敗した配信を送信待ちに戻しました（同じ webhook-id で送ります）。"))


def _confirm(endpoint: WebhookEndpoint, endpoint_name: str, heading: str, lead: str, button: str, action, done: str,
             after: str | None = None):
    """A page that asks first (GET), then acts (POST)."""
    form = ActionForm()
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                action()
            except DomainError as exc:
                db.session.rollback()
                flash(exc.message, "error")
                return redirect(url_for("webhooks.detail", endpoint_id=endpoint.id))
            db.session.commit()
            flash(done, "success")
            return redirect(after or url_for("webhooks.detail", endpoint_id=endpoint.id))
        return redirect(url_for("webhooks.detail", endpoint_id=endpoint.id))
    return render_template(
        "confirm.html", heading=heading, lead=lead,
        facts=[(_("送信先の URL"), endpoint.url), (_("説明"), endpoint.description or "—"),
               (_("対象の団体"), endpoint.municipality.name if endpoint.municipality else _("プラットフォーム（全団体）"))],
        warning=None, button=button, action_url=url_for(endpoint_name, endpoint_id=endpoint.id),
        back_url=url_for("webhooks.detail", endpoint_id=endpoint.id))


@bp.route("/<int:endpoint_id>/rotate", methods=["GET", "POST"])
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def rotate(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    return _confirm(
        endpoint, "webhooks.rotate", _("署名シークレットを更新する"),
        _("新しいシークレットを作ります。これまでのシークレットも24時間は署名に使われ（webhook-signature に2つの署名が並びます）、その間に受信側を新しいシークレットに切り替えます。"),
        _("シークレットを更新する"), lambda: services.rotate_secret(current_user, endpoint),
        _("署名シークレットを更新しました。24時間以内に受信側を新しいシークレットに切り替えてください。"))


@bp.route("/<int:endpoint_id>/disable", methods=["GET", "POST"])
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def disable(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    return _confirm(
        endpoint, "webhooks.disable", _("送信先を停止する"),
        _("停止中に起きたイベントは失われず、送信待ちのまま残ります。再開すると順に送信します。"),
        _("停止する"), lambda: services.disable_endpoint(current_user, endpoint, "stopped by an administrator"),
        _("送信先を停止しました。"))


@bp.route("/<int:endpoint_id>/delete", methods=["GET", "POST"])
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def delete(endpoint_id: int):
    endpoint = _endpoint(endpoint_id)
    return _confirm(
        endpoint, "webhooks.delete", _("送信先を削除する"),
        _("送信先と、その配信の記録（送信待ちのものを含む）を削除します。元に戻せません。"),
        _("削除する"), lambda: services.delete_endpoint(current_user, endpoint), _("送信先を削除しました。"),
        after=url_for("webhooks.index"))


@bp.get("/<int:endpoint_id>/deliveries/<int:delivery_id>")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def delivery(endpoint_id: int, delivery_id: int):
    endpoint = _endpoint(endpoint_id)
    item = services.get_delivery(endpoint.id, delivery_id) or abort(404)
    attempts = db.session.scalars(db.select(WebhookAttempt).where(WebhookAttempt.delivery_id == item.id)
                                  .order_by(WebhookAttempt.id.desc())).all()
    return render_template("webhooks/delivery.html", endpoint=endpoint, delivery=item, attempts=attempts,
                           status_labels=_status_labels(), action_form=ActionForm(),
                           attempt_error=outbound.attempt_error)


@bp.post("/<int:endpoint_id>/deliveries/<int:delivery_id>/replay")
@role_required(MUNICIPAL_ADMIN, PLATFORM_ADMIN)
def replay(endpoint_id: int, delivery_id: int):
    endpoint = _endpoint(endpoint_id)
    item = services.get_delivery(endpoint.id, delivery_id) or abort(404)
    return _act(endpoint, lambda: services.replay_delivery(current_user, item),
                _("配信を送信待ちに戻しました（同じ webhook-id で送ります）。"),
                back=url_for("webhooks.delivery", endpoint_id=endpoint.id, delivery_id=delivery_id))
