"""The signed-in session: Flask-Login, sign-in required by default, idle/absolute timeouts.

The cookie is signed but kept by the browser, so it also names a server-side record
(``UserSession``) that every request must find: signing out deletes the record, and a copy
of the cookie made before is refused from then on. The record is looked up in the same
statement that loads the user (a primary-key join), so it costs no extra round trip.
"""

from __future__ import annotations

import secrets
import time
from datetime import timedelta
from functools import lru_cache

from flask import Flask, current_app, flash, g, jsonify, redirect, request, session, url_for
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import LoginManager, current_user, login_url, login_user, logout_user
from sqlalchemy import and_, bindparam, delete, select
from sqlalchemy.orm import joinedload

from lms.auth.models import User, UserSession
from lms.common.database import begin_write
from lms.common.i18n import LANG_KEY, keep_chosen_language
from lms.common.public import is_public_endpoint
from lms.common.timeutil import utcnow
from lms.common.web import same_site_referrer, wants_json
from lms.extensions import db

_SIGNED_IN_AT = "signed_in_at"
_LAST_SEEN = "last_seen"
_SESSION_ID = "sid"  # the UserSession row this browser's session is
AUTH_METHOD = "auth_method"
_FRAMED = "framed"  # the session lives in a frame of another site (the Teams tab)
_AFTER_SIGN_OUT = "after_sign_out"  # where sign-out leads, when not home (the Teams tab)


class FramedSessionInterface(SecureCookieSessionInterface):
    """The signed cookie session, whose cookie is ``SameSite=None; Secure; Partitioned`` while
    the session lives in a frame of another site (Manabi as a Teams tab: a ``Lax`` cookie is not
    sent there, and a partitioned one is kept even where third-party cookies are blocked).
    Every other session keeps the configured ``SameSite=Lax``."""

    def get_cookie_samesite(self, app: Flask) -> str | None:
        return "None" if is_framed() else super().get_cookie_samesite(app)

    def get_cookie_secure(self, app: Flask) -> bool:
        return True if is_framed() else super().get_cookie_secure(app)

    def get_cookie_partitioned(self, app: Flask) -> bool:
        return True if is_framed() else super().get_cookie_partitioned(app)


def is_framed() -> bool:
    return bool(session.get(_FRAMED))


def mark_framed(after_sign_out: str) -> None:
    """This browser's session lives in a frame (the Teams tab); sign-out leads to
    ``after_sign_out`` (a path of this site)."""
    session[_FRAMED] = True
    session[_AFTER_SIGN_OUT] = after_sign_out


def after_sign_out_url() -> str | None:
    return session.get(_AFTER_SIGN_OUT)


def init_login(app: Flask, login_manager: LoginManager) -> None:
    app.session_interface = FramedSessionInterface()
    login_manager.init_app(app)
    login_manager.session_protection = "basic"
    login_manager.login_view = "auth.login_page"
    login_manager.login_message = _l("続けるにはサインインしてください。")
    login_manager.login_message_category = "info"

    @login_manager.user_loader
    def _load_user(user_id: str):
        try:
            raw_id, raw_version = user_id.split(":", 1)
            uid, version = int(raw_id), int(raw_version)
        except ValueError:
            return None
        session_id = session.get(_SESSION_ID)
        if not isinstance(session_id, str):
            return None
        user = user_for_request(uid, session_id)
        # A role change or "sign out everywhere" raises session_version.
        if user is None or user.session_version != version or not user.active:
            return None
        g.user_id = user.id  # for the request log
        return user

    @login_manager.unauthorized_handler
    def _unauthorized():
        """Not signed in (never, or no longer: signed out elsewhere, the session ended). A
        script's request (the player's progress report, a link refresh) is told so in JSON, 401,
        and keeps what it was sending; a page goes to the sign-in page, back to the page after —
        a post to where its form was (its own address answers only posts)."""
        if wants_json():
            return _signed_out(_("サインインしていないか、サインインの有効期限が切れました。もう一度サインインしてください。"))
        flash(login_manager.login_message, login_manager.login_message_category)
        return redirect(login_url(login_manager.login_view, next_url=_back_after_sign_in()))

    @app.before_request
    def _require_sign_in():
        endpoint = request.endpoint
        public = is_public_endpoint(app, endpoint)
        # /auth/* is reachable without signing in, but a signed-in session there is still
        # bound by the timeouts below.
        if public and (not (endpoint or "").startswith("auth.") or endpoint == "auth.logout"):
            return None  # (sign-out ends the session itself, the provider's included)
        if not current_user.is_authenticated:
            return None if public else login_manager.unauthorized()
        now = int(time.time())
        idle = current_app.config["LMS_SESSION_IDLE_MINUTES"] * 60
        absolute = current_app.config["LMS_SESSION_ABSOLUTE_MINUTES"] * 60
        signed_in_at = session.get(_SIGNED_IN_AT, 0)
        last_seen = session.get(_LAST_SEEN, 0)
        if now - signed_in_at > absolute or now - last_seen > idle:
            end_session()
            if public:
                flash(_l("一定時間操作がなかったため、サインアウトしました。もう一度サインインしてください。"), "info")
                return None  # carries on signed out (a protected auth view then asks to sign in)
            if wants_json():
                return _signed_out(_("一定時間操作がなかったため、サインアウトしました。もう一度サインインしてください。"))
            flash(_l("一定時間操作がなかったため、サインアウトしました。もう一度サインインしてください。"), "info")
            return redirect(login_url("auth.login_page", next_url=_back_after_sign_in()))
        # Writing the cookie on every request would defeat caching; once a minute is enough.
        if now - last_seen > 60:
            session[_LAST_SEEN] = now
        return None


def _signed_out(message: str):
    return jsonify(error=_("サインインが必要です"), message=message, sign_in=url_for("auth.login_page")), 401


def _back_after_sign_in() -> str | None:
    """Where sign-in leads back to: the page asked for, or for a post the same-site page its
    form was on (none: the home page)."""
    return request.url if request.method in ("GET", "HEAD") else same_site_referrer()


def user_for_request(user_id: int, session_id: str):
    """The user as every signed-in request loads it, or None when the session named by
    ``session_id`` is not (or no longer) the user's.

    Roles and municipality come with the user: every page needs them (menu, header). One
    statement built and compiled once, not a get() building its options per request."""
    params = {"uid": user_id, "sid": session_id}
    return db.session.execute(_user_statement(), params).unique().scalar_one_or_none()


@lru_cache(maxsize=1)
def _user_statement():
    return (
        select(User)
        .join(UserSession, and_(UserSession.id == bindparam("sid"), UserSession.user_id == User.id))
        .options(joinedload(User.role_rows), joinedload(User.municipality))
        .where(User.id == bindparam("uid"))
    )


def start_session(user, remember: bool = False, method: str = "demo") -> None:
    """Sign ``user`` in on a fresh session (no fixation: the old session's contents go).

    ``method`` ("entra" or "demo") decides whether sign-out also ends the provider's session.
    The session's server-side record is added to the database session; the caller commits.
    """
    keep_chosen_language(user)
    kept = {key: session[key] for key in (LANG_KEY, _FRAMED, _AFTER_SIGN_OUT) if key in session}
    session.clear()
    session.update(kept)
    login_user(user, remember=remember, fresh=True)
    g.user_id = user.id
    now = int(time.time())
    session[_SIGNED_IN_AT] = now
    session[_LAST_SEEN] = now
    session[AUTH_METHOD] = method
    session[_SESSION_ID] = open_session_record(user, method)
    session.permanent = True


def open_session_record(user, method: str) -> str:
    """A new server-side session record of ``user`` (its id, for the cookie). The user's
    records past the absolute limit go at the same time: every sign-in tidies its own."""
    started = utcnow()
    too_old = started - timedelta(minutes=current_app.config["LMS_SESSION_ABSOLUTE_MINUTES"])
    db.session.execute(delete(UserSession).where(UserSession.user_id == user.id, UserSession.created_at < too_old))
    record = UserSession(id=secrets.token_urlsafe(32), user_id=user.id, method=method, created_at=started)
    db.session.add(record)
    return record.id


def current_session_id() -> str | None:
    """The id of this browser's server-side session record."""
    value = session.get(_SESSION_ID)
    return value if isinstance(value, str) else None


def signed_in_with() -> str | None:
    return session.get(AUTH_METHOD)


def end_session() -> None:
    """Sign out this browser: its server-side record is deleted (committed at once, so that a
    copy of the cookie is refused from now on) and the cookie emptied."""
    session_id = session.get(_SESSION_ID)
    if isinstance(session_id, str):
        begin_write()  # (only reads before: the user's load)
        db.session.execute(delete(UserSession).where(UserSession.id == session_id))
        db.session.commit()
    kept = {key: session[key] for key in (LANG_KEY, _FRAMED, _AFTER_SIGN_OUT) if key in session}
    logout_user()
    g.pop("user_id", None)
    session.clear()
    session.update(kept)
