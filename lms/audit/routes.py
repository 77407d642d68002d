"""The audit log page (platform administrators only): list, filter, export."""

from __future__ import annotations

import json

from flask import Blueprint, Response, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from sqlalchemy import select

from lms.audit.export import csv_bytes
from lms.audit.forms import AuditFilterForm
from lms.audit.queries import AuditFilter, known_actions, select_entries
from lms.audit.services import record_action
from lms.auth.models import PLATFORM_ADMIN
from lms.common.access import role_required
from lms.common.limits import limit_export
from lms.common.timeutil import to_tokyo, utcnow
from lms.extensions import db
from lms.municipalities.models import Municipality

bp = Blueprint("audit", __name__, url_prefix="/admin/audit")

PER_PAGE = 50


def _filter_form(source) -> tuple[AuditFilterForm, AuditFilter]:
    form = AuditFilterForm(formdata=source)
    municipalities = db.session.execute(
        select(Municipality.id, Municipality.name).order_by(Municipality.sort_order, Municipality.code)
    ).all()
    form.action.choices = [("", _("すべて"))] + [(a, a) for a in known_actions()]
    form.municipality.choices = [("", _("すべて"))] + [(str(m.id), m.name) for m in municipalities]
    if not form.validate():
        return form, AuditFilter()
    return form, AuditFilter(
        action=form.action.data or "",
        actor=(form.actor.data or "").strip(),
        municipality_id=int(form.municipality.data) if form.municipality.data else None,
        date_from=form.date_from.data,
        date_to=form.date_to.data,
        target=(form.target.data or "").strip(),
    )


@bp.get("/")
@role_required(PLATFORM_ADMIN)
def index():
    form, flt = _filter_form(request.args)
    page = db.paginate(select_entries(flt), per_page=PER_PAGE, error_out=False)
    names = dict(db.session.execute(select(Municipality.id, Municipality.name)).all())
    return render_template(
        "audit/index.html", form=form, page=page, params=flt.as_params(), municipality_names=names
    )


EXPORT_HEADER = ("ID", "日時（日本時間）", "操作", "操作者ID", "操作者", "対象の種類", "対象ID",
                 "区市町村コード", "区市町村", "IPアドレス", "リクエストID", "詳細")


@bp.post("/export")
@role_required(PLATFORM_ADMIN)
@limit_export
def export():
    _form, flt = _filter_form(request.form)
    record_action(current_user, "export.audit", "audit_log", "", None, filters=flt.as_params())
    db.session.commit()
    municipalities = {m.id: m for m in db.session.scalars(select(Municipality))}

    rows = []
    for entry in db.session.scalars(select_entries(flt).execution_options(yield_per=1000)):
        m = municipalities.get(entry.municipality_id)
        rows.append((
            entry.id,
            f"{to_tokyo(entry.occurred_at):%Y-%m-%d %H:%M:%S}",
            entry.action,
            entry.actor_id or "",
            entry.actor_label,
            entry.target_type,
            entry.target_id,
            m.code if m else "",
            m.name if m else "",
            entry.ip_address,
            entry.request_id,
            json.dumps(entry.details or {}, ensure_ascii=False, sort_keys=True, default=str),
        ))
    filename = f"audit-log-{to_tokyo(utcnow()):%Y%m%d-%H%M%S}.csv"
    return Response(
        csv_bytes(EXPORT_HEADER, rows),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )

