"""Cursor pagination and ETags of the API's lists.

Rows come in (updated_at, id) order; the cursor names the last row of a page (opaque to
clients: URL-safe base64 of JSON). A row inserted or changed while a client walks the pages
gets a later updated_at, so it comes at the end: every row present at the start is seen
exactly once, and the changed ones again (that is what ``updated_since`` syncs are for).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from datetime import date, datetime
from functools import wraps

from flask import Response, request, url_for
from flask_babel import gettext as _
from sqlalchemy import tuple_

from lms.api.problems import ApiProblem
from lms.common.ids import MAX_ID
from lms.common.timeutil import plausible_year
from lms.extensions import db


def encode_cursor(updated_at: datetime, row_id: int) -> str:
    raw = json.dumps([updated_at.isoformat(), row_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, row_id = json.loads(raw)
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None or not plausible_year(when.year) or not isinstance(row_id, int) \
                or not 1 <= row_id <= MAX_ID:
            raise ValueError(cursor)
        return when, row_id
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise ApiProblem(400, "invalid-cursor", _("カーソルが正しくありません"),
                         _("cursor には前のページの next にある値をそのまま使ってください。")) from exc


def encode_row_cursor(row: int) -> str:
    """The cursor of a list in the order of a row number (a roster job's results)."""
    return base64.urlsafe_b64encode(json.dumps(["row", row]).encode()).decode().rstrip("=")


def decode_row_cursor(cursor: str) -> int:
    try:
        kind, row = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if kind != "row" or not isinstance(row, int) or not 0 <= row <= MAX_ID:
            raise ValueError(cursor)
        return row
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise ApiProblem(400, "invalid-cursor", _("カーソルが正しくありません"),
                         _("cursor には前のページの next にある値をそのまま使ってください。")) from exc


def page(query, model, args: dict, serialize, *, flat: bool = False) -> Response:
    """One page of ``query`` as ``{"items", "next"}`` (and ``Link: rel="next"``). Its rows are
    ``model`` first (``serialize(*row)``) or, ``flat``, plain columns naming ``id`` and
    ``updated_at`` (``serialize(row)``: no ORM objects for the long lists of a sync)."""
    if args.get("updated_since") is not None:
        query = query.where(model.updated_at >= args["updated_since"])
    if args.get("cursor"):
        after, last_id = decode_cursor(args["cursor"])
        # A row-value comparison: the (updated_at, id) index seeks straight to the page, where
        # "a > x OR (a = x AND b > y)" would scan every row before it on each page.
        query = query.where(tuple_(model.updated_at, model.id) > tuple_(after, last_id))
    limit = args["limit"]
    rows = db.session.execute(query.order_by(model.updated_at, model.id).limit(limit + 1)).all()
    more = len(rows) > limit
    rows = rows[:limit]
    next_url = None
    if more:
        last = rows[-1] if flat else rows[-1][0]
        params = request.args.to_dict()
        params["cursor"] = encode_cursor(last.updated_at, last.id)
        next_url = url_for(request.endpoint or "", **(request.view_args or {}), **params, _external=True)
    items = [serialize(row) for row in rows] if flat else [serialize(*row) for row in rows]
    return json_page(items, next_url)


def _json_value(value):
    if isinstance(value, datetime | date):
        return value.isoformat()  # as marshmallow's DateTime and Date fields write them
    raise TypeError(f"not JSON: {type(value).__name__}")


def json_page(items: list[dict], next_url: str | None) -> Response:
    """A list page written straight to JSON. Each item is built with exactly its schema's
    fields and JSON types (tests/api/test_resources.py checks every list against its
    schema), so the schema need not walk a thousand rows field by field on every page."""
    body = json.dumps({"items": items, "next": next_url}, default=_json_value, ensure_ascii=False,
                      separators=(",", ":"))
    response = Response(body, mimetype="application/json")
    if next_url:
        response.headers["Link"] = f'<{next_url}>; rel="next"'
    return response


def conditional(view):
    """A strong ETag of the JSON body; ``If-None-Match`` naming it answers 304 without the body
    (and keeps the Link header of a list). If-None-Match compares weakly (RFC 9110 13.1.2):
    ``W/"…"`` matches too — a proxy that compresses the body (nginx's gzip) sends the tag on
    weakened, and the client sends it back so — as does one tag of a list, or ``*``."""

    @wraps(view)
    def wrapped(*args, **kwargs):
        response: Response = view(*args, **kwargs)
        if response.status_code != 200:
            return response
        body = response.get_data()
        etag = hashlib.sha256(body).hexdigest()[:32]
        response.set_etag(etag)
        response.headers["Cache-Control"] = "private, no-cache"
        if request.if_none_match.contains_weak(etag):
            not_modified = Response(status=304)
            not_modified.set_etag(etag)
            for name in ("Cache-Control", "Link", "Vary"):
                if name in response.headers:
                    not_modified.headers[name] = response.headers[name]
            return not_modified
        return response

    return wrapped
