"""Sign-in and sign-out: Microsoft Entra ID (MSAL) and, on the embedded default, demo sign-in.

Also where a tenant administrator comes back from Entra's admin-consent page. The platform
admins' page of allowed tenants is ``admin.tenants`` (/admin/tenants).
"""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_required
from sqlalchemy import select

from lms.auth import entra
from lms.auth.consent import callback_url, is_consent_state, tenant_of_consent_state
from lms.auth.forms import DemoSignInForm
from lms.auth.models import User
from lms.auth.services import (
    AccountDisabled,
    TenantRefused,
    record_failure,
    record_refusal,
    sign_in_identity,
    sign_out_everywhere,
)
from lms.auth.session import after_sign_out_url, end_session, signed_in_with, start_session
from lms.common.database import begin_write
from lms.common.ids import parse_id
from lms.common.limits import limit_sign_in
from lms.common.timeutil import utcnow
from lms.common.web import safe_next
from lms.extensions import db
from lms.municipalities.services import record_tenant_consent

bp = Blueprint("auth", __name__, url_prefix="/auth")

_FLOWS = "entra_flows"  # {state: flow}: a few sign-ins may be under way in several tabs
_MAX_FLOWS = 3


def demo_enabled() -> bool:
    return bool(current_app.config.get("LMS_DEMO_LOGIN")) and current_app.config.get("LMS_ENV") != "production"


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
        flow = entra.begin_sign_in(callback_url())
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
    if "admin_consent" in request.args or is_consent_state(request.args.get("state", "")):
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
        begin_write()  # (after the provider's answer) the user's row and the session's record
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
    signed_tenant = tenant_of_consent_state(request.args.get("state", ""))
    if signed_tenant is None:
        return _failure_page(400, "state")
    tenant = (request.args.get("tenant") or "").lower()
    granted = request.args.get("admin_consent", "").lower() == "true" and not request.args.get("error")
    if granted and tenant == signed_tenant:
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
        user_id = parse_id(request.form.get("user_id"))
        chosen = db.session.scalar(demo_users.where(User.id == user_id)) if user_id is not None else None
        form.user_id.choices = [(chosen.id, chosen.display_name)] if chosen else []
    if form.validate_on_submit():
        begin_write()  # a writer from the start: the session's record and last_login_at
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
    return _after_sign_out(via_entra)


@bp.post("/logout/everywhere")
@login_required
def logout_everywhere():
    """「すべての端末からサインアウト」: every session of the signed-in user ends, this one too."""
    via_entra = signed_in_with() == "entra"
    begin_write()
    user = db.session.get_one(User, current_user.id)
    sign_out_everywhere(user, actor=user)
    db.session.commit()
    end_session()
    flash(_("すべての端末からサインアウトしました。"), "info")
    return _after_sign_out(via_entra)


def _after_sign_out(via_entra: bool):
    """Home, or first the identity provider's sign-out (which comes back home); in the Teams
    tab, the tab's own page (Teams keeps the account signed in: the tab offers to sign in again)."""
    framed = after_sign_out_url()
    if framed:
        return redirect(safe_next(framed, url_for("main.home")))
    if via_entra and entra.is_configured():
        target = current_app.config.get("ENTRA_POST_LOGOUT_REDIRECT_URI") or url_for("main.home", _external=True)
        provider_logout = entra.end_session_url(target)
        if provider_logout:
            return redirect(provider_logout)
    return redirect(url_for("main.home"))


# ---------------------------------------------------------------- moved pages


@bp.get("/tenants")
def tenants():
    """The allowed tenants page moved to /admin/tenants (bookmarks and the setup guide point here)."""
    return redirect(url_for("admin.tenants"), 301)
