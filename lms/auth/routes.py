"""Sign-in and sign-out: Microsoft Entra ID (MSAL) and, on the embedded default, demo sign-in."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from lms.auth.forms import DemoSignInForm
from lms.auth.models import User
from lms.auth.session import end_session, start_session
from lms.common.web import safe_next
from lms.extensions import db

bp = Blueprint("auth", __name__, url_prefix="/auth")


def demo_enabled() -> bool:
    return bool(current_app.config.get("LMS_DEMO_LOGIN")) and current_app.config.get("LMS_ENV") != "production"


@bp.get("/login")
def login_page():
    next_url = safe_next(request.args.get("next"), "")
    if current_user.is_authenticated:
        return redirect(next_url or url_for("main.home"))
    return render_template(
        "auth/login.html",
        next_url=next_url,
        entra_configured=bool(current_app.config.get("ENTRA_CLIENT_ID")),
        demo=demo_enabled(),
    )


@bp.route("/demo", methods=["GET", "POST"])
def demo():
    if not demo_enabled():
        abort(404)
    form = DemoSignInForm()
    users = db.session.scalars(
        select(User).where(User.is_demo.is_(True), User.active.is_(True)).order_by(User.id)
    ).all()
    form.user_id.choices = [(u.id, u.display_name) for u in users]
    if form.validate_on_submit():
        user = db.session.get(User, form.user_id.data)
        if user is None or not user.is_demo:
            abort(400)
        start_session(user)
        from lms.common.timeutil import utcnow

        user.last_login_at = utcnow()
        db.session.commit()
        flash(_("%(name)s としてサインインしました（デモ）。", name=user.display_name), "success")
        return redirect(safe_next(form.next.data, url_for("main.home")))
    if request.method == "GET":
        form.next.data = safe_next(request.args.get("next"), "")
    return render_template("auth/demo.html", form=form, users=users)


@bp.post("/logout")
def logout():

    end_session()
    flash(_("サインアウトしました。"), "info")
    return redirect(url_for("main.home"))
