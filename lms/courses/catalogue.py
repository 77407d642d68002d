"""Read side of the catalogue: search, filters, one page of results with its session figures.

Search is a Japanese substring search: the query is normalised the way ``Course.search_text``
is (NFKC + case folding, so ＴＥＡＭＳ finds Teams and ｿｳｻ finds ソウサ), split on white
space, and every term must occur (``LIKE '%term%'`` with % and _ escaped). On PostgreSQL
the GIN trigram index ``ix_course_search_trgm`` serves terms of three characters or more;
shorter terms (操作) cannot be served by trigrams and fall back to the same substring match
over the published courses — correct, merely not indexed. On SQLite the LIKE scan is
fast enough for thousands of courses.

A page costs one statement whatever its size: the page of courses with the number of
matches (a window count), and, for those rows only, their session figures and eligibility.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from flask_sqlalchemy.pagination import Pagination
from sqlalchemy import case, event, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from lms.common.timeutil import TOKYO, as_utc, to_tokyo, utcnow
from lms.courses.models import DELIVERIES, PUBLISHED, SCHEDULED, Category, Course, CourseEligibility, TrainingSession
from lms.courses.search import normalise_for_search
from lms.extensions import db

PER_PAGE = 20
MAX_QUERY_LENGTH = 100


@dataclass(frozen=True)
class CatalogueFilters:
    q: str = ""
    category_id: int | None = None
    month: str = ""  # "YYYY-MM", of the session start in Tokyo
    delivery: str = ""
    free_only: bool = False
    open_to_me: bool = False

    @classmethod
    def from_args(cls, args) -> CatalogueFilters:
        """Read the query string leniently: a value that makes no sense is ignored."""
        category = args.get("category", "")
        month = args.get("month", "")
        delivery = args.get("delivery", "")
        return cls(
            q=" ".join((args.get("q") or "").split())[:MAX_QUERY_LENGTH],
            category_id=int(category) if category.isdigit() else None,
            month=month if month_bounds(month) else "",
            delivery=delivery if delivery in DELIVERIES else "",
            free_only=args.get("free") == "1",
            open_to_me=args.get("mine") == "1",
        )

    def as_args(self) -> dict:
        """The query-string form (for pagination links), leaving out what is not set."""
        args = {
            "q": self.q,
            "category": self.category_id,
            "month": self.month,
            "delivery": self.delivery,
            "free": "1" if self.free_only else None,
            "mine": "1" if self.open_to_me else None,
        }
        return {k: v for k, v in args.items() if v}

    @property
    def any(self) -> bool:
        return bool(self.as_args())


@dataclass(frozen=True)
class CourseFigures:
    next_start: datetime | None
    sessions: int
    free_seats: int


@dataclass(frozen=True)
class CourseCard:
    """What a result shows of a course (plain values, not an ORM object: cheaper to load)."""

    id: int
    title: str
    summary: str
    category_id: int | None
    requires_approval: bool
    eligible_all: bool


@dataclass(frozen=True)
class CatalogueRow:
    course: CourseCard
    figures: CourseFigures
    open_to_me: bool


def search_terms(q: str) -> list[str]:
    return [t for t in normalise_for_search(q).split() if t]


def month_bounds(month: str) -> tuple[datetime, datetime] | None:
    """[start, end) in UTC of a Tokyo calendar month written "YYYY-MM"; None if malformed."""
    try:
        year, mon = (int(part) for part in month.split("-"))
        start = datetime(year, mon, 1, tzinfo=TOKYO)
    except (ValueError, TypeError):
        return None
    if not 2000 <= year <= 2100:
        return None
    end = datetime(year + (mon == 12), mon % 12 + 1, 1, tzinfo=TOKYO)
    return start, end


def month_choices(now: datetime | None = None, count: int = 12) -> list[tuple[str, int, int]]:
    """The next ``count`` months in Tokyo as ("YYYY-MM", year, month)."""
    local = to_tokyo(now or utcnow())
    year, mon = local.year, local.month
    out = []
    for _ in range(count):
        out.append((f"{year:04d}-{mon:02d}", year, mon))
        year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    return out


def _session_conditions(filters: CatalogueFilters, now: datetime) -> list:
    """Which sessions count: scheduled, still to come, and matching the session filters."""
    conds = [TrainingSession.status == SCHEDULED, TrainingSession.starts_at > now]
    bounds = month_bounds(filters.month) if filters.month else None
    if bounds:
        conds += [TrainingSession.starts_at >= bounds[0], TrainingSession.starts_at < bounds[1]]
    if filters.delivery:
        conds.append(TrainingSession.delivery == filters.delivery)
    if filters.free_only:
        conds.append(TrainingSession.confirmed_count < TrainingSession.capacity)
    return conds


def _uses_session_filters(filters: CatalogueFilters) -> bool:
    return bool(filters.month or filters.delivery or filters.free_only)


def _open_to(municipality_id: int | None):
    if municipality_id is None:
        return Course.eligible_all.is_(True)
    return or_(
        Course.eligible_all.is_(True),
        exists().where(
            CourseEligibility.course_id == Course.id, CourseEligibility.municipality_id == municipality_id
        ),
    )


def catalogue_select(filters: CatalogueFilters, municipality_id: int | None, now: datetime | None = None):
    now = now or utcnow()
    stmt = select(Course).where(Course.status == PUBLISHED)
    for term in search_terms(filters.q):
        # autoescape: % and _ in the query are literal characters.
        stmt = stmt.where(Course.search_text.contains(term, autoescape=True))
    if filters.category_id is not None:
        stmt = stmt.where(Course.category_id == filters.category_id)
    if filters.open_to_me:
        stmt = stmt.where(_open_to(municipality_id))
    if _uses_session_filters(filters):
        stmt = stmt.where(
            exists().where(TrainingSession.course_id == Course.id, *_session_conditions(filters, now))
        )
    return stmt.order_by(Course.published_at.desc(), Course.id.desc())


_FREE = case(
    (TrainingSession.capacity > TrainingSession.confirmed_count, TrainingSession.capacity - TrainingSession.confirmed_count),
    else_=0,
)


def _page_statement(filters: CatalogueFilters, municipality_id: int | None, now: datetime, limit: int, offset: int):
    """One statement for a whole page: the page of courses (with the total number of matches
    as a window count), then, for those rows only, their session figures and whether they
    are open to ``municipality_id``."""
    matches = catalogue_select(filters, municipality_id, now).with_only_columns(
        Course.id, Course.title, Course.summary, Course.category_id, Course.requires_approval, Course.eligible_all,
        Course.published_at, func.count().over().label("total"),
    )
    page = matches.limit(limit).offset(offset).subquery("page")
    sessions = [TrainingSession.course_id == page.c.id, *_session_conditions(filters, now)]
    next_start = select(func.min(TrainingSession.starts_at)).where(*sessions).scalar_subquery()
    count = select(func.count()).select_from(TrainingSession).where(*sessions).scalar_subquery()
    free = select(func.coalesce(func.sum(_FREE), 0)).where(*sessions).scalar_subquery()
    if municipality_id is None:
        listed = literal(0)
    else:
        listed = case(
            (exists().where(CourseEligibility.course_id == page.c.id, CourseEligibility.municipality_id == municipality_id), 1),
            else_=0,
        )
    return select(
        page, next_start.label("next_start"), count.label("sessions"), free.label("free_seats"), listed.label("listed")
    ).order_by(page.c.published_at.desc(), page.c.id.desc())


class CataloguePagination(Pagination):
    """``db.paginate``'s Pagination, filled by one statement per page (items and total together)."""

    def _query_items(self) -> list[CatalogueRow]:
        args = self._query_args
        rows = db.session.execute(
            _page_statement(args["filters"], args["municipality_id"], args["now"], self.per_page, self._query_offset)
        ).all()
        self._total = int(rows[0].total) if rows else None
        return [
            CatalogueRow(
                CourseCard(r.id, r.title, r.summary, r.category_id, bool(r.requires_approval), bool(r.eligible_all)),
                CourseFigures(as_utc(r.next_start), int(r.sessions or 0), int(r.free_seats or 0)),
                bool(r.eligible_all) or bool(r.listed),
            )
            for r in rows
        ]

    def _query_count(self) -> int:
        if self._total is not None:
            return self._total
        if self.page == 1:
            return 0
        # Past the last page: count separately (rare).
        args = self._query_args
        stmt = catalogue_select(args["filters"], args["municipality_id"], args["now"]).order_by(None)
        return db.session.scalar(select(func.count()).select_from(stmt.with_only_columns(Course.id).subquery()))


def catalogue_page(filters: CatalogueFilters, municipality_id: int | None, page: int = 1, per_page: int = PER_PAGE):
    """(pagination, rows) for one page of the catalogue: one database round trip."""
    pagination = CataloguePagination(
        page=page, per_page=per_page, max_per_page=100, error_out=False,
        filters=filters, municipality_id=municipality_id, now=utcnow(),
    )
    return pagination, pagination.items


def categories() -> list[Category]:
    return list(db.session.scalars(select(Category).order_by(Category.sort_order, Category.name)))


_CATEGORY_TTL_SECONDS = 60.0
_category_cache: dict[str, tuple[float, list[tuple[int, str]]]] = {}


def category_choices() -> list[tuple[int, str]]:
    """(id, name) of every category for the catalogue's filter, kept per process for a minute:
    the list changes a few times a year, and the catalogue is the busiest page."""
    key = str(db.engine.url)
    now = time.monotonic()
    cached = _category_cache.get(key)
    if cached is None or now - cached[0] > _CATEGORY_TTL_SECONDS:
        rows = db.session.execute(select(Category.id, Category.name).order_by(Category.sort_order, Category.name)).all()
        cached = (now, [(int(cid), name) for cid, name in rows])
        _category_cache[key] = cached
    return cached[1]


@event.listens_for(Session, "after_flush")
def _forget_categories(session, _context) -> None:
    # This process sees its own changes at once; other workers within the minute.
    if any(isinstance(obj, Category) for obj in (*session.new, *session.dirty, *session.deleted)):
        _category_cache.clear()


__all__ = [
    "CatalogueFilters",
    "CatalogueRow",
    "CourseCard",
    "CourseFigures",
    "PER_PAGE",
    "catalogue_page",
    "catalogue_select",
    "categories",
    "category_choices",
    "month_bounds",
    "month_choices",
    "search_terms",
]
