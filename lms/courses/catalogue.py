"""Read side of the catalogue: search, filters, one page of results with its session figures.

Search is a Japanese substring search: the query is normalised the way ``Course.search_text``
is (NFKC + case folding, so ＴＥＡＭＳ finds Teams and ｿｳｻ finds ソウサ), split on white
space, and every term must occur (``LIKE '%term%'`` with % and _ escaped). On PostgreSQL
the GIN trigram index ``ix_course_search_trgm`` serves terms of three characters or more;
shorter terms (操作) cannot be served by trigrams and fall back to the same substring match
over the published courses — correct, merely not indexed. On SQLite the LIKE scan is
fast enough for thousands of courses.

A page costs a fixed number of queries whatever its size: the count, the page of courses,
and one aggregate over the sessions of the courses on the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, exists, func, or_, select

from lms.common.timeutil import TOKYO, to_tokyo, utcnow
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
class CatalogueRow:
    course: Course
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


def figures_for(course_ids: list[int], filters: CatalogueFilters, now: datetime | None = None) -> dict[int, CourseFigures]:
    """Next start, number of sessions and free seats of the matching sessions still to come,
    for every course of a page in one aggregate query."""
    if not course_ids:
        return {}
    now = now or utcnow()
    free = case(
        (TrainingSession.capacity > TrainingSession.confirmed_count, TrainingSession.capacity - TrainingSession.confirmed_count),
        else_=0,
    )
    rows = db.session.execute(
        select(TrainingSession.course_id, func.min(TrainingSession.starts_at), func.count(), func.sum(free))
        .where(TrainingSession.course_id.in_(course_ids), *_session_conditions(filters, now))
        .group_by(TrainingSession.course_id)
    ).all()
    found = {int(cid): CourseFigures(start, int(n), int(seats or 0)) for cid, start, n, seats in rows}
    empty = CourseFigures(None, 0, 0)
    return {cid: found.get(cid, empty) for cid in course_ids}


def open_course_ids(course_ids: list[int], municipality_id: int | None) -> set[int]:
    """Which of the page's courses with a municipality list include ``municipality_id``."""
    if not course_ids or municipality_id is None:
        return set()
    return set(
        db.session.scalars(
            select(CourseEligibility.course_id).where(
                CourseEligibility.course_id.in_(course_ids), CourseEligibility.municipality_id == municipality_id
            )
        )
    )


def catalogue_page(filters: CatalogueFilters, municipality_id: int | None, page: int = 1, per_page: int = PER_PAGE):
    """(pagination, rows) for one page of the catalogue."""
    now = utcnow()
    pagination = db.paginate(
        catalogue_select(filters, municipality_id, now), page=page, per_page=per_page, error_out=False, max_per_page=100
    )
    courses = list(pagination.items)
    ids = [c.id for c in courses]
    figures = figures_for(ids, filters, now)
    listed = open_course_ids([c.id for c in courses if not c.eligible_all], municipality_id)
    rows = [CatalogueRow(c, figures[c.id], c.eligible_all or c.id in listed) for c in courses]
    return pagination, rows


def categories() -> list[Category]:
    return list(db.session.scalars(select(Category).order_by(Category.sort_order, Category.name)))


__all__ = [
    "CatalogueFilters",
    "CatalogueRow",
    "CourseFigures",
    "PER_PAGE",
    "catalogue_page",
    "catalogue_select",
    "categories",
    "figures_for",
    "month_bounds",
    "month_choices",
    "search_terms",
]
