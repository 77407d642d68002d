"""Platform administration: the landing page linking every admin tool."""

from flask import Blueprint, render_template

from lms.auth.models import PLATFORM_ADMIN
from lms.common.access import role_required

bp = Blueprint("admin", __name__, url_prefix="/admin")


@bp.get("/")
@role_required(PLATFORM_ADMIN)
def index():
    return render_template("admin/index.html")
