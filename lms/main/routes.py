"""Home, health check, language switch."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, redirect, render_template, request, session
from flask_login import current_user
from sqlalchemy import text

from lms.common.public import public
from lms.common.web import safe_next
from lms.extensions import db

bp = Blueprint("main", __name__)


@bp.get("/")
@public
def home():
    return render_template("main/home.html", user=current_user)


@bp.get("/healthz")
@public
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception:  # the check's whole point is to report, not raise
        current_app.logger.exception("health check failed")
        return {"status": "error", "database": "unreachable"}, 503
    return {"status": "ok", "database": "ok"}


@bp.get("/hello")
@public
def hello():
    """A bare view for benchmarks: touches neither the database nor the session."""
    return Response("hello", mimetype="text/plain")


@bp.post("/lang")
@public
def set_language():
    lang = request.form.get("lang", "")
    if lang in current_app.config["LANGUAGES"]:
        session["lang"] = lang
    return redirect(safe_next(request.form.get("next"), "/"))
