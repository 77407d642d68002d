"""The audit log as the admin pages show and export it: entries with their municipality.

The audit log itself (lms.audit) knows only ids; the names come from lms.municipalities here.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from flask_babel import gettext as _
from werkzeug.datastructures import MultiDict

from lms.admin.audit_text import action_choices, action_label, detail_names, details_text, targets
from lms.admin.forms import AuditFilterForm
from lms.audit.queries import AuditFilter, known_actions, select_entries
from lms.common.ids import parse_id
from lms.common.timeutil import to_tokyo
from lms.extensions import db
from lms.municipalities.services import list_municipalities

EXPORT_HEADER = ("ID", "日時（日本時間）", "操作", "操作者ID", "操作者", "対象の種類", "対象ID",
                 "区市町村コード", "区市町村", "IPアドレス", "リクエストID", "詳細",
                 "操作（名称）", "対象（名称）", "詳細（読みやすい形）")


def filter_form(source: MultiDict[str, Any]) -> tuple[AuditFilterForm, AuditFilter | None]:
    """The filter form read from ``source`` and the filter it asks for; None while the form is
    invalid (a wrong date must not widen the search to every entry: nothing is listed or
    exported until it is corrected)."""
    form = AuditFilterForm(formdata=source)
    form.action.choices = [("", _("すべて"))] + action_choices(known_actions())
    form.municipality.choices = [("", _("すべて"))] + [(str(m.id), m.name) for m in list_municipalities()]
    if not form.validate():
        return form, None
    return form, AuditFilter(
        action=form.action.data or "",
        actor=(form.actor.data or "").strip(),
        municipality_id=parse_id(form.municipality.data),
        date_from=form.date_from.data,
        date_to=form.date_to.data,
        target=(form.target.data or "").strip(),
    )


def municipality_names() -> dict[int, str]:
    return {m.id: m.name for m in list_municipalities()}


def export_rows(flt: AuditFilter) -> Iterator[tuple[object, ...]]:
    """The CSV rows of the entries matching ``flt`` (header: EXPORT_HEADER), newest first."""
    municipalities = {m.id: m for m in list_municipalities()}
    for batch in db.session.scalars(select_entries(flt).execution_options(yield_per=1000)).partitions(1000):
        named, names = targets(batch), detail_names(batch)
        for entry in batch:
            yield _export_row(entry, municipalities, named.get(entry.id), names)


def _export_row(entry, municipalities, target, names) -> tuple[object, ...]:
    m = municipalities.get(entry.municipality_id) if entry.municipality_id is not None else None
    return (
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
        action_label(entry.action),
        f"{target.kind}：{target.name}" if target else "",
        details_text(entry.details, entry.action, names),
    )
