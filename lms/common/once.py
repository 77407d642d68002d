"""Forms that create something are acted on once: a double click, a form sent again from two
tabs or the browser's "resend" make one course, one session, one request — not three.

A creating form carries a one-time token (``once_input()`` in its template, a hidden field
made when the page is drawn). The route claims it (``repeated`` / ``already_done``) after the
form validated and before it creates anything, in the same transaction as the creation: the
claim is a row whose key is the token, so a second copy of the post waits for the first
one's transaction (PostgreSQL: the unique key; SQLite: the request's write lock) and then
finds the token used. It is then sent to what the first copy made (``remember`` records that
address) with a message, instead of making a second one. A creation that fails rolls its
claim back with it (the form, shown again with its message, carries a fresh token).

A form sent without a token (a page drawn before this existed, a script) is acted on as
before. Claims are kept for two days (``forget_old``, the worker's nightly clean-up): the
same form sent again later than that (a page restored from the history days after) is acted
on again, as a new request.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import urlsplit

from flask import flash, redirect, request
from flask_babel import gettext as _
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import Integer, String, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.orm import Mapped, mapped_column
from werkzeug.wrappers import Response

from lms.common.timeutil import utcnow
from lms.common.types import UTCDateTime
from lms.common.web import safe_next
from lms.extensions import Model, db

KEEP = timedelta(days=2)
FIELD = "once"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{22,64}")


class FormSubmission(Model):
    """A creating form's token, claimed by the request that acted on it."""

    __tablename__ = "form_submission"

    token: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int | None] = mapped_column(Integer)
    # Where the first copy sent the user (what it made); empty until it is known.
    result_url: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


def new_token() -> str:
    return secrets.token_urlsafe(24)


def once_input() -> Markup:
    """The hidden one-time token of a creating form (a template global): a fresh one each time
    the page is drawn. A form shown again after a refusal gets a new one (the refused copy's
    claim was rolled back with it)."""
    return Markup('<input type="hidden" name="{}" value="{}">').format(FIELD, new_token())


def posted_token() -> str | None:
    return request.form.get(FIELD)


def already_done(token: str | None, user_id: int | None) -> str | None:
    """Claim ``token`` for this request. None: this is its first use (go on and create).
    Otherwise the address to send the user to: what the first copy of this form made (or, if
    that is not known — another person's token — the page the form was sent from)."""
    if not token or not _TOKEN.fullmatch(token):
        return None
    dialect = db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = FormSubmission.__table__
    claimed = db.session.execute(
        insert(table).values(token=token, user_id=user_id, result_url="", created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["token"]).returning(table.c.token)
    ).scalar()
    if claimed is not None:
        return None
    earlier = db.session.execute(
        select(FormSubmission.user_id, FormSubmission.result_url).where(FormSubmission.token == token)
    ).first()
    if earlier is not None and earlier.user_id == user_id and earlier.result_url:
        return earlier.result_url
    return _form_page()


def _form_page() -> str:
    """The page the form was sent from (this site's), else the start page: never the POST-only
    URL the form was sent to."""
    sent_from = urlsplit(request.referrer or "")
    if sent_from.netloc == request.host and sent_from.path:
        return safe_next(sent_from.path + (f"?{sent_from.query}" if sent_from.query else ""))
    return "/"


def remember(url: str) -> str:
    """Record where the posted form's first copy led (a later copy is sent there); returns
    ``url``."""
    token = posted_token()
    if token and _TOKEN.fullmatch(token):
        db.session.execute(
            FormSubmission.__table__.update().where(FormSubmission.token == token).values(result_url=url[:500])
        )
    return url


def forget_old(now: datetime | None = None) -> int:
    """Delete claims older than ``KEEP``; returns how many. The caller commits."""
    cutoff = (now or utcnow()) - KEEP
    result = db.session.execute(delete(FormSubmission.__table__).where(FormSubmission.created_at < cutoff))
    return cast(CursorResult[Any], result).rowcount or 0


def repeated() -> Response | None:
    """For a route, once the posted form validated: None when this is the form's first copy
    (go on and create, then ``remember`` where it led), else the redirect that answers a
    repeated copy, with a message saying the first was acted on."""
    url = already_done(posted_token(), getattr(current_user, "id", None))
    if url is None:
        return None
    flash(_("この送信はすでに受け付けています（同じフォームが2回以上送られました）。最初の送信の結果を表示します。"), "info")
    return redirect(url)
