"""Home, health check, language switch."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request
from flask_login import current_user

from lms.common.i18n import choose_language
from lms.common.public import public
from lms.common.web import safe_next
from lms.extensions import db
from lms.main import health
from lms.main.home import home_panels

bp = Blueprint("main", __name__)
health.register(bp)


@bp.get("/")
@public
def home():
    # Each signed-in role's figures and lists, scoped to the user (lms/main/home.py).
    panels = home_panels(current_user) if current_user.is_authenticated else {}
    return render_template("main/home.html", user=current_user, panels=panels)


@bp.post("/lang")
@public
def set_language():
    lang = request.form.get("lang", "")
    if lang in current_app.config["LANGUAGES"]:
        choose_language(lang)
        db.session.commit()
    return redirect(safe_next(request.form.get("next"), "/"))
