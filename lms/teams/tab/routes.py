"""The Teams app's personal tab (/teams/tab): Teams shows it in a frame and signs the person in
with single sign-on.

The tab's page asks Teams for a token of the person (the Teams JavaScript library, vendored:
``authentication.getAuthToken``) and posts it to ``/teams/tab/sso``. The token is checked here
as the web sign-in checks an ID token — signature against the provider's keys, issuer, expiry —
for the Teams app's application ID URI (or the client id, in v2 tokens) as audience, with the
delegated scope LMS_TEAMS_SSO_SCOPE in ``scp``; the person is then signed in by the same
``tid``/``oid`` rules as the web (``lms.auth.services.sign_in_identity``: the tenant decides the
municipality, the app roles the roles). The session's cookie is then ``SameSite=None; Secure;
Partitioned`` (``lms.auth.session``). Where Teams cannot give a token (consent missing), the tab
offers a pop-up window that signs in as the web does and hands the sign-in over to the tab with a
single-use code.

Only the tab and the learner pages it leads to may be framed, and only by Teams, Outlook and
Microsoft 365 (``lms.common.web.allow_teams_frame``); every other page refuses every frame.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select

from lms.auth.entra import ProviderUnavailable, SignInError, identity_from_claims, is_configured, verify_token
from lms.auth.models import User, UserSession
from lms.auth.services import AccountDisabled, TenantRefused, record_failure, record_refusal, sign_in_identity
from lms.auth.session import current_session_id, is_framed, mark_framed, start_session
from lms.common.database import begin_write
from lms.common.limits import limit_sign_in
from lms.common.public import public
from lms.common.web import allow_teams_frame, teams_frameable
from lms.extensions import db
from lms.teams import app_identity

bp = Blueprint("teams_tab", __name__, url_prefix="/teams/tab")

# The learner pages a tab leads to (besides the tabs' own pages), which Teams may frame too.
LEARNER_PAGES = ("courses.course_detail", "enrollment.cancel", "archives.search", "archives.view",
                 "notifications.notice_settings")
# The tab's own pages shown in the frame (the pop-up's pages are a window of their own).
FRAMED_HERE = ("teams_tab.tab", "teams_tab.sso", "teams_tab.redeem")
HANDOFF_SECONDS = 120
_HANDOFF_SALT = "teams-tab-handoff"
MAX_TOKEN_LENGTH = 16_384


@bp.record_once
def _frames(state) -> None:
    allow_teams_frame(state.app, *FRAMED_HERE, *(t.endpoint for t in app_identity.TABS), *LEARNER_PAGES,
                      *app_identity.SUB_PAGES.values())


@bp.app_context_processor
def _outside_the_frame() -> dict:
    """``teams_frame_outside(endpoint)``: in the Teams tab, a page Teams may not frame (an
    admin's page) opens in a new window instead of an empty frame (templates/base.html)."""
    framed = is_framed()
    return {"teams_frame_outside": lambda endpoint: framed and not teams_frameable(endpoint)}


def _after_sign_out() -> str:
    return url_for("teams_tab.tab", signed_out=1)


@bp.get("")
@public
def tab():
    """The tab's page: it signs the person in through Teams, then opens the tab's page."""
    chosen = tab_of(request.args.get("tab", ""))
    mark_framed(_after_sign_out())  # (the cookie of this frame: SameSite=None; Partitioned)
    return render_template("teams/tab.html", tab=chosen, signed_out=bool(request.args.get("signed_out")),
                           configured=is_configured(), next_url=url_for(chosen.endpoint))


def tab_of(entity_id) -> app_identity.Tab:
    return app_identity.tab(entity_id if isinstance(entity_id, str) else "")


def page_to_open(chosen: app_identity.Tab, data) -> str:
    """The tab's page, or the page a notice's deep link asked for (``page``: its subEntityId)."""
    sub_page = data.get("page") if isinstance(data, dict) else None
    endpoint = app_identity.SUB_PAGES.get(sub_page) if isinstance(sub_page, str) else None
    return url_for(endpoint or chosen.endpoint)


def _signed_in_here(user: User, next_url: str):
    """``user``'s session in this frame (committed); the answer names the page to open."""
    start_session(user, method="teams")
    mark_framed(_after_sign_out())
    db.session.commit()
    return jsonify({"next": next_url})


def _refused(status: int, message: str, reason: str):
    return jsonify({"error": reason, "message": message}), status


@bp.post("/sso")
@public
@limit_sign_in
def sso():
    """A Teams single sign-on token → this frame's session. JSON in (``token``, ``tab``),
    JSON out: ``next`` (the page to open) or ``error`` and a ``message`` to show."""
    data = request.get_json(silent=True)
    token = data.get("token") if isinstance(data, dict) else None
    chosen = tab_of(data.get("tab", "") if isinstance(data, dict) else "")
    if not is_configured():
        return _refused(404, _("Microsoft Entra ID によるサインインが設定されていません。"), "not_configured")
    if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN_LENGTH:
        return _refused(400, _("Teams からサインイン情報を受け取れませんでした。"), "no_token")
    scope = str(current_app.config.get("LMS_TEAMS_SSO_SCOPE") or "access_as_user")
    try:
        claims = verify_token(token.strip(), audience=app_identity.sso_audiences(), require=("iss", "aud", "exp", "iat"),
                              app=current_app)
        if scope not in str(claims.get("scp") or "").split():
            raise SignInError("invalid_token", f"the token does not hold the scope {scope}")
        identity = identity_from_claims(claims)
    except ProviderUnavailable:
        return _refused(503, _("Microsoft のサインインサービスに接続できませんでした。しばらく待ってから、もう一度お試しください。"),
                        "provider_unavailable")
    except SignInError as exc:
        db.session.rollback()
        current_app.logger.info("Teams tab token refused: %s", exc)
        record_failure("teams_sso_token", detail=exc.detail[:300])
        db.session.commit()
        return _refused(401, _("Teams から受け取ったサインイン情報を確認できませんでした。"), "invalid_token")
    if (current_user.is_authenticated and is_framed() and current_user.tenant_id == identity.tenant_id
            and current_user.object_id == identity.object_id):
        return jsonify({"next": page_to_open(chosen, data)})  # already signed in here, as this person
    begin_write()
    try:
        user = sign_in_identity(identity, method="teams")
    except TenantRefused:
        db.session.rollback()
        record_refusal(identity)
        db.session.commit()
        return _refused(403, _("所属団体のテナントは、このシステムの利用が許可されていません。"), "tenant_refused")
    except AccountDisabled:
        db.session.rollback()
        record_failure("disabled", tenant_id=identity.tenant_id, object_id=identity.object_id)
        db.session.commit()
        return _refused(403, _("このアカウントは利用停止されています。所属団体の研修担当にお問い合わせください。"), "disabled")
    return _signed_in_here(user, page_to_open(chosen, data))


# ---------------------------------------------------------------- the pop-up sign-in


def _handoff() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_HANDOFF_SALT)


@bp.get("/sign-in")
@public
def sign_in_window():
    """The pop-up window's first page: the web sign-in, which comes back to ``signed_in``."""
    return redirect(url_for("auth.login_page", next=url_for("teams_tab.signed_in")))


@bp.get("/signed-in")
@login_required
def signed_in():
    """The pop-up window, signed in: it gives the tab a single-use code for this sign-in
    (``authentication.notifySuccess``) and closes."""
    code = _handoff().dumps({"u": current_user.id, "s": current_session_id()})
    return render_template("teams/tab_signed_in.html", code=code)


def _invalid_code():
    return _refused(400, _("サインインの受け渡しに失敗しました。もう一度サインインしてください。"), "invalid_code")


@bp.post("/redeem")
@public
@limit_sign_in
def redeem():
    """The pop-up's code → this frame's session. The pop-up's own session ends: the code
    cannot be used twice."""
    data = request.get_json(silent=True)
    code = data.get("code") if isinstance(data, dict) else None
    chosen = tab_of(data.get("tab", "") if isinstance(data, dict) else "")
    try:
        handed = _handoff().loads(code, max_age=HANDOFF_SECONDS) if isinstance(code, str) else None
    except (BadSignature, UnicodeEncodeError):  # (a lone surrogate cannot even be checked)
        handed = None
    if not isinstance(handed, dict):
        return _invalid_code()
    begin_write()
    ended = db.session.execute(delete(UserSession).where(UserSession.id == str(handed.get("s")),
                                                         UserSession.user_id == handed.get("u")))
    user = db.session.scalar(select(User).where(User.id == handed.get("u")))
    if not getattr(ended, "rowcount", 0) or user is None or not user.active:
        db.session.rollback()
        return _invalid_code()
    return _signed_in_here(user, page_to_open(chosen, data))
