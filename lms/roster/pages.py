"""What every municipal admin's page needs (研修担当): the municipality worked on, a staff
member of it, and the way back — used by the roster's, enrollment's and Teams' pages alike.

Municipal admins work on their own municipality only; platform admins choose one
(``?m=<municipality id>``). Asking for another municipality's pages is a 403, and for a staff
member of another municipality a 404 as for one that does not exist; both leave an
``access.denied`` audit entry (lms.common.access).
"""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select
from werkzeug.wrappers import Response

from lms.auth.models import MUNICIPAL_ADMIN, PLATFORM_ADMIN
from lms.common.access import municipality_scope, require_own_object
from lms.extensions import db
from lms.municipalities.models import Municipality
from lms.roster.forms import MunicipalityChoiceForm
from lms.roster.models import StaffMember

ADMINS = (MUNICIPAL_ADMIN, PLATFORM_ADMIN)


def scoped_municipality() -> Municipality | None:
    """The municipality worked on (``?m=``: a platform admin's choice; None: not chosen)."""
    scope = municipality_scope(current_user, request.values.get("m"))
    return db.session.get(Municipality, scope) if scope is not None else None


def municipality_or_chooser(endpoint: str) -> tuple[Municipality, None] | tuple[None, str]:
    """The municipality worked on, or (municipality None) the page on which a platform admin
    chooses one: ``municipality, chooser = …; if municipality is None: return chooser``."""
    municipality = scoped_municipality()
    if municipality is None:
        form = MunicipalityChoiceForm(request.args)
        form.m.choices = [(m.id, m.name) for m in db.session.scalars(select(Municipality).order_by(Municipality.sort_order))]
        return None, render_template("roster/choose_municipality.html", form=form, endpoint=endpoint)
    return municipality, None


def staff_member_or_404(member_id: int) -> StaffMember:
    """A staff member of the admin's municipality; another's is answered as if there were none."""
    member = db.get_or_404(StaffMember, member_id)
    require_own_object(current_user, member.municipality_id, "staff_member", member.id)
    return member


def municipality_args(municipality_id: int) -> dict[str, int]:
    """``?m=`` for a platform admin's links (a municipal admin's pages need none)."""
    return {"m": municipality_id} if current_user.has_role(PLATFORM_ADMIN) else {}


def back_to(endpoint: str, municipality_id: int, **values: Any) -> Response:
    return redirect(url_for(endpoint, **{**municipality_args(municipality_id), **values}))
