"""A page of results for the pager macro, when ``db.paginate`` does not fit (several columns,
a statement of our own)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from math import ceil
from typing import Any

from flask import redirect, request, url_for
from werkzeug.wrappers import Response

from lms.common.ids import parse_id

MAX_PAGE = 100_000


@dataclass
class Page:
    """One page of results: its rows (``items``), the total, and what the pager macro
    (templates/_macros.html) asks: pages, has_prev/has_next, prev_num/next_num, iter_pages —
    the same as Flask-SQLAlchemy's pagination gives for ``db.paginate`` (which returns
    first-column scalars only, and whose internals we do not reach into)."""

    items: list[Any]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return ceil(self.total / self.per_page) if self.total else 0

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def prev_num(self) -> int | None:
        return self.page - 1 if self.has_prev else None

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    @property
    def next_num(self) -> int | None:
        return self.page + 1 if self.has_next else None

    def iter_pages(self, *, left_edge: int = 2, left_current: int = 2, right_current: int = 4,
                   right_edge: int = 2) -> Iterator[int | None]:
        """Page numbers to link: the edges and those around the current page, with None
        for each gap (as Flask-SQLAlchemy's pagination yields them)."""
        end = self.pages + 1
        left_end = min(1 + left_edge, end)
        yield from range(1, left_end)
        if left_end == end:
            return
        mid_start, mid_end = max(left_end, self.page - left_current), min(self.page + right_current + 1, end)
        if mid_start > left_end:
            yield None
        yield from range(mid_start, mid_end)
        if mid_end == end:
            return
        right_start = max(mid_end, end - right_edge)
        if right_start > mid_end:
            yield None
        yield from range(right_start, end)


def requested_page() -> int:
    """The page a list was asked for (``?page=``): 1..MAX_PAGE, the first for anything that is
    no page number; a number past MAX_PAGE (however long) is MAX_PAGE, so that
    ``beyond_last_page`` leads to the last page, as for any number past it.
    Pass it to ``db.paginate(page=…)``, which would otherwise read any number itself."""
    value = request.args.get("page") or ""
    if value.isascii() and value.isdigit() and value.lstrip("0"):
        return min(parse_id(value) or MAX_PAGE, MAX_PAGE)
    return 1


def beyond_last_page(pagination) -> Response | None:
    """A list asked past its last page (a bookmark kept after rows went, a typed number): a
    redirect to the last page, where an empty one would say "nothing found" beside a total.
    ``pagination``: a ``Page`` or Flask-SQLAlchemy's (both give total, page and pages)."""
    if not pagination.total or pagination.page <= pagination.pages:
        return None
    return redirect(this_address(page=pagination.pages))


def this_address(**changes: Any) -> str:
    """The address of the current page with ``changes`` to its query (a redirect that corrects
    one value: the page past the last, the fiscal year out of range). A query argument named
    like one of the path's (?course_id= beside /courses/<course_id>) names nothing here, the
    path's own is kept; nor is one named like url_for's own options (_external, _anchor…)."""
    view_args = request.view_args or {}
    args: dict[str, Any] = {k: v for k, v in request.args.to_dict(flat=False).items()
                            if k not in view_args and not k.startswith("_")}
    return url_for(str(request.endpoint), **view_args, **{**args, **changes})
