"""The one set of words for an enrollment's status, used by every page, export and mail.

``STATUS_LABELS`` are the short words (a badge, a table cell); a waitlisted place adds its
position with ``waitlist_text``. Templates reach them through the globals the enrollment
blueprint registers (``enrollment_status_label``, ``enrollment_status_badge``)."""

from __future__ import annotations

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup, escape

from lms.enrollment.models import CANCELLED, CONFIRMED, PENDING, REJECTED, WAITLISTED

STATUS_LABELS = {
    CONFIRMED: _l("受講確定"),
    WAITLISTED: _l("キャンセル待ち"),
    PENDING: _l("承認待ち"),
    REJECTED: _l("非承認"),
    CANCELLED: _l("取消"),
}
# Shown on the catalogue's card of a course the learner holds a place in, whatever the session.
ENROLLED_LABEL = _l("申込済み")


def status_label(status: str, position: int | None = None) -> str:
    """The short words for ``status``; a waitlisted place with its position."""
    label = str(STATUS_LABELS.get(status, status))
    if status == WAITLISTED and position:
        return _("%(label)s %(n)s 番目", label=label, n=position)
    return label


def status_badge(status: str, position: int | None = None) -> Markup:
    """A badge of ``status`` (the words only, never a sentence)."""
    css = status if status in STATUS_LABELS else "info"
    return Markup('<span class="badge badge-{}">{}</span>').format(css, escape(status_label(status, position)))
