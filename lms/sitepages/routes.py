"""アクセシビリティ方針 and 個人情報の取扱い: public pages (no sign-in), linked from every
page's footer; edited by platform admins under /admin/pages/<slug>."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import get_locale
from flask_babel import gettext as _
from flask_login import current_user

from lms.common.access import role_required
from lms.common.errors import NotFound
from lms.common.public import public
from lms.common.roles import PLATFORM_ADMIN
from lms.extensions import db
from lms.sitepages import services
from lms.sitepages.a11y_results import load_results
from lms.sitepages.defaults import ACCESSIBILITY, PRIVACY
from lms.sitepages.forms import SitePageForm

bp = Blueprint("site", __name__)


def _show(slug: str, **context):
    page = services.page_view(slug, str(get_locale() or "ja"))
    return render_template("sitepages/page.html", page=page, **context)


@bp.get("/accessibility")
@public
def accessibility():
    return _show(ACCESSIBILITY, results=load_results())


@bp.get("/privacy")
@public
def privacy():
    return _show(PRIVACY)


@bp.route("/admin/pages/<slug>", methods=["GET", "POST"])
@role_required(PLATFORM_ADMIN)
def edit(slug: str):
    try:
        page = services.page_for_editing(slug)
    except NotFound:
        abort(404)
    # The stored (or default) text fills the form; a POST is judged on what it sent alone.
    form = SitePageForm(obj=page if request.method == "GET" else None)
    if form.validate_on_submit():
        written = services.update_page(slug, current_user, title=form.title.data, body_md=form.body_md.data,
                                       title_en=form.title_en.data or "", body_md_en=form.body_md_en.data or "")
        db.session.commit()
        flash(_("ページを保存しました。") if written else _("変更はありませんでした。"), "success" if written else "info")
        return redirect(url_for(f"site.{slug}"))
    return render_template("sitepages/edit.html", form=form, page=page), 400 if form.errors else 200
