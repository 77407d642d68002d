"""Sign-in and sign-out: Microsoft Entra ID (MSAL) and, on the embedded default, demo sign-in.

Also the platform admins' page of allowed tenants (``auth.tenants``).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import select

from lms.auth import entra
from lms.auth.forms import DemoSignInForm
from lms.auth.models import PLATFORM_ADMIN, User
from lms.auth.services import AccountDisabled, TenantRefused, record_failure, record_refusal, sign_in_identity
from lms.auth.session import end_session, signed_in_with, start_session
from lms.common.access import role_required
from lms.common.errors import DomainError
from lms.common.limits import limit_sign_in
from lms.common.timeutil import utcnow
from lms.common.web import safe_next
from lms.extensions import db

bp = Blueprint("auth", __name__, url_prefix="/auth")

_FLOWS = "entra_flows"  # {state: flow}: a few sign-ins may be under way in several tabs
_MAX_FLOWS = 3
_CONSENT_SALT = "manabi-admin-consent"


def demo_enabled() -> bool:
    return bool(current_app.config.get("LMS_DEMO_LOGIN")) and current_app.config.get("LMS_ENV") != "production"


def _redirect_uri() -> str:
    return current_app.config.get("ENTRA_REDIRECT_URI") or url_for("auth.callback", _external=True)


@bp.get("/login")
@limit_sign_in
def login_page():
    next_url = safe_next(request.args.get("next"), "")
    if current_user.is_authenticated:
        return redirect(next_url or url_for("main.home"))
    entra_on = entra.is_configured()
    if entra_on and not demo_enabled():
        return _start_entra(next_url)
    return render_template("auth/login.html", next_url=next_url, entra_configured=entra_on, demo=demo_enabled())


@bp.get("/login/microsoft")
@limit_sign_in
def start():
    if not entra.is_configured():
        abort(404)
    return _start_entra(safe_next(request.args.get("next"), ""))


def _start_entra(next_url: str):
    try:
        flow = entra.begin_sign_in(_redirect_uri())
    except entra.SignInError as exc:
        current_app.logger.warning("cannot start sign-in: %s", exc)
        return _failure_page(503, exc.reason)
    auth_uri = flow.pop("auth_uri")
    flow["next"] = next_url
    flows = dict(session.get(_FLOWS) or {})
    flows[flow["state"]] = flow
    session[_FLOWS] = dict(list(flows.items())[-_MAX_FLOWS:])
    return redirect(auth_uri)


@bp.get("/callback")
@limit_sign_in
def callback():
    if not entra.is_configured():
        abort(404)
    if "admin_consent" in request.args or request.args.get("state", "").startswith("consent."):
        return _admin_consent_response()
    flows = dict(session.get(_FLOWS) or {})
    flow = flows.pop(request.args.get("state", ""), None)  # single use: a replay finds nothing
    session[_FLOWS] = flows
    if flow is None:
        db.session.rollback()
        record_failure("state", has_code=bool(request.args.get("code")), error=request.args.get("error", "")[:100])
        db.session.commit()
        return _failure_page(400, "state")
    next_url = safe_next(flow.pop("next", ""), url_for("main.home"))
    try:
        identity = entra.complete_sign_in(flow, request.args.to_dict())
        user = sign_in_identity(identity)
    except TenantRefused:
        db.session.rollback()
        record_refusal(identity)
        db.session.commit()
        return render_template("auth/tenant_refused.html", tenant_id=identity.tenant_id), 403
    except AccountDisabled:
        db.session.rollback()
        record_failure("disabled", tenant_id=identity.tenant_id, object_id=identity.object_id)
        db.session.commit()
        return _failure_page(403, "disabled")
    except entra.SignInError as exc:
        db.session.rollback()
        current_app.logger.warning("sign-in refused: %s", exc)
        record_failure(exc.reason, detail=exc.detail[:300], **exc.context)
        db.session.commit()
        return _failure_page(503 if isinstance(exc, entra.ProviderUnavailable) else 400, exc.reason, exc.context.get("error"))
    start_session(user, method="entra")
    db.session.commit()
    flash(_("%(name)s さん、ようこそ。", name=user.display_name), "success")
    return redirect(next_url)


_FAILURES = {
    "state": (
        _l("サインインを完了できませんでした"),
        _l("サインインの手続きが途中で切れたか、別の画面で開始されたものです。もう一度サインインしてください。"),
    ),
    "provider_error": (
        _l("サインインが取り消されました"),
        _l("Microsoft のサインイン画面でサインインが完了しませんでした。もう一度お試しください。"),
    ),
    "token_refused": (
        _l("サインインを完了できませんでした"),
        _l("サインインの確認に失敗しました。同じ画面の再読み込みや「戻る」操作では完了できません。もう一度サインインしてください。"),
    ),
    "invalid_token": (
        _l("サインイン情報を確認できませんでした"),
        _l("受け取ったサインイン情報が正しくないため、安全のためサインインを中止しました。もう一度お試しください。"),
    ),
    "disabled": (
        _l("このアカウントは利用できません"),
        _l("このアカウントは利用停止されています。所属団体の研修担当にお問い合わせください。"),
    ),
    "provider_unavailable": (
        _l("サインインサービスに接続できません"),
        _l("Microsoft のサインインサービスに接続できませんでした。しばらく待ってから、もう一度お試しください。"),
    ),
    "configuration": (
        _l("サインインの設定に誤りがあります"),
        _l("サインインの設定が完了していません。システム管理者にお問い合わせください。"),
    ),
}


def _failure_page(status: int, reason: str, provider_error: str | None = None):
    title, message = _FAILURES.get(reason, _FAILURES["invalid_token"])
    if reason == "provider_error" and provider_error == "access_denied":
        message = _l("サインインが拒否されました。このシステムの利用が割り当てられていない可能性があります。所属団体の研修担当にお問い合わせください。")
    return (
        render_template("auth/sign_in_failed.html", title=str(title), message=str(message), code=status),
        status,
    )


def _admin_consent_response():
    """A tenant administrator comes back from Entra's admin-consent page."""
    serializer = URLSafeTimedSerializer(current_app.secret_key, salt=_CONSENT_SALT)
    raw_state = request.args.get("state", "").removeprefix("consent.")
    try:
        signed_tenant = serializer.loads(raw_state, max_age=60 * 60 * 24 * 30)
    except BadSignature:
        return _failure_page(400, "state")
    tenant = (request.args.get("tenant") or "").lower()
    granted = request.args.get("admin_consent", "").lower() == "true" and not request.args.get("error")
    if granted and tenant == signed_tenant:
        from lms.municipalities.services import record_tenant_consent

        record_tenant_consent(tenant)
        db.session.commit()
    return render_template("auth/admin_consent.html", granted=granted and tenant == signed_tenant, tenant_id=signed_tenant)


@bp.route("/demo", methods=["GET", "POST"])
@limit_sign_in
def demo():
    if not demo_enabled():
        abort(404)
    form = DemoSignInForm()
    demo_users = select(User).where(User.is_demo.is_(True), User.active.is_(True))
    if request.method == "POST":
        # Only the chosen user is a valid choice: one look-up, not the whole list (benchmarks
        # sign thousands of demo learners in).
        raw = (request.form.get("user_id") or "").strip()
        chosen = db.session.scalar(demo_users.where(User.id == int(raw))) if raw.isdigit() else None
        form.user_id.choices = [(chosen.id, chosen.display_name)] if chosen else []
    if form.validate_on_submit():
        user = db.session.get(User, form.user_id.data)
        if user is None or not user.is_demo:
            abort(400)
        start_session(user, method="demo")
        user.last_login_at = utcnow()
        db.session.commit()
        flash(_("%(name)s としてサインインしました（デモ）。", name=user.display_name), "success")
        return redirect(safe_next(form.next.data, url_for("main.home")))
    users = db.session.scalars(demo_users.order_by(User.id)).all()
    form.user_id.choices = [(u.id, u.display_name) for u in users]
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next"), "")
    return render_template("auth/demo.html", form=form, users=users)


@bp.post("/logout")
def logout():
    via_entra = signed_in_with() == "entra"
    end_session()
    flash(_("サインアウトしました。"), "info")
    if via_entra and entra.is_configured():
        target = current_app.config.get("ENTRA_POST_LOGOUT_REDIRECT_URI") or url_for("main.home", _external=True)
        provider_logout = entra.end_session_url(target)
        if provider_logout:
            return redirect(provider_logout)
    return redirect(url_for("main.home"))


# ---------------------------------------------------------------- platform admins: allowed tenants


@bp.route("/tenants", methods=["GET", "POST"])
@role_required(PLATFORM_ADMIN)
def tenants():
    from lms.municipalities.forms import RemoveTenantMappingForm, TenantMappingForm
    from lms.municipalities.models import Municipality
    from lms.municipalities.services import add_tenant_mapping, list_tenant_mappings

    form = TenantMappingForm()
    municipalities = db.session.scalars(
        select(Municipality).where(Municipality.active.is_(True)).order_by(Municipality.sort_order)
    ).all()
    form.municipality_code.choices = [("", _("選んでください"))] + [(m.code, f"{m.name}（{m.code}）") for m in municipalities]
    if form.validate_on_submit():
        try:
            add_tenant_mapping(current_user, form.tenant_id.data, form.municipality_code.data, form.mail_domain.data or "")
        except DomainError as exc:
            db.session.rollback()
            form.tenant_id.errors = [*form.tenant_id.errors, exc.message]
        else:
            db.session.commit()
            flash(_("テナントの対応付けを追加しました。"), "success")
            return redirect(url_for("auth.tenants"))
    serializer = URLSafeTimedSerializer(current_app.secret_key, salt=_CONSENT_SALT)
    rows = list_tenant_mappings()
    consent_urls = {
        row.tenant_id: entra.admin_consent_url(
            row.tenant_id, _redirect_uri(), state="consent." + serializer.dumps(row.tenant_id)
        )
        for row in rows
    }
    status = 400 if form.errors else 200
    return render_template(
        "auth/tenants.html",
        form=form,
        rows=rows,
        consent_urls=consent_urls,
        remove_form=RemoveTenantMappingForm(),
        env_setting=bool(current_app.config.get("ENTRA_TENANTS")),
        client_id=current_app.config.get("ENTRA_CLIENT_ID"),
    ), status


@bp.post("/tenants/<int:mapping_id>/remove")
@role_required(PLATFORM_ADMIN)
def remove_tenant(mapping_id: int):
    from lms.municipalities.forms import RemoveTenantMappingForm
    from lms.municipalities.services import remove_tenant_mapping

    if not RemoveTenantMappingForm().validate_on_submit():
        abort(400)
    try:
        remove_tenant_mapping(current_user, mapping_id)
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
        return redirect(url_for("auth.tenants"))
    db.session.commit()
    flash(_("テナントの対応付けを削除しました。"), "success")
    return redirect(url_for("auth.tenants"))
