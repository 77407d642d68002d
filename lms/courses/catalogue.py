"""Read side of the catalogue: search, filters, one page of results with its session figures.

Search is a Japanese substring search: the query is folded the way ``Course.search_text``
is (lms.courses.search: width, case, hiragana → katakana, long-vowel marks, so ＴＥＡＭＳ finds
Teams, えくせる finds エクセル and コンピュータ finds コンピューター), split on white space, and
every term must occur, or one of its synonyms (エクセル ↔ Excel). On PostgreSQL the GIN
trigram index ``ix_course_search_trgm`` serves words of three characters or more
(``LIKE '%word%'`` with % and _ escaped); shorter words (操作) cannot be served by trigrams
and are a plain substring test (``contains_text``) over the published courses — correct,
merely not indexed, and written so that no plan (a prepared statement's generic plan
included) scans the trigram index for them. On SQLite the scan is fast enough for
thousands of courses.

A page costs one statement whatever its size: the page of courses with the number of
matches, and, for those rows only, their session figures and eligibility.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from sqlalchemy import ColumnElement, Integer, bindparam, case, event, exists, func, literal, or_, select
from sqlalchemy.orm import Session

from lms.common.database import contains_text
from lms.common.i18n import localized_name
from lms.common.ids import parse_id
from lms.common.pagination import Page
from lms.common.timeutil import TOKYO, as_utc, to_tokyo, utcnow
from lms.courses import audience
from lms.courses.audience import Profile
from lms.courses.models import DELIVERIES, PUBLISHED, SCHEDULED, Category, Course, CourseEligibility, TrainingSession
from lms.courses.search import search_terms
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
            category_id=parse_id(category),
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
    free_seats: int  # of the next session


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


_MONTHS_TTL_SECONDS = 60.0
_months_cache: dict[str, tuple[float, list[tuple[str, int, int]]]] = {}


def month_choices(now: datetime | None = None, count: int = 12) -> list[tuple[str, int, int]]:
    """The months of the next ``count`` (Tokyo) in which a published course has a session to
    come, as ("YYYY-MM", year, month): empty months are not offered. Kept per process for a
    minute, like the categories."""
    local = to_tokyo(now or utcnow())
    key = f"{db.engine.url}|{local:%Y-%m-%d}|{count}"
    clock = time.monotonic()
    cached = _months_cache.get(key)
    if cached is not None and clock - cached[0] <= _MONTHS_TTL_SECONDS and now is None:
        return cached[1]
    year, mon = local.year, local.month
    window = []
    for _ in range(count):
        window.append((f"{year:04d}-{mon:02d}", year, mon))
        year, mon = (year + 1, 1) if mon == 12 else (year, mon + 1)
    start = month_bounds(window[0][0])
    end = month_bounds(window[-1][0])
    assert start is not None and end is not None
    starts = db.session.scalars(
        select(TrainingSession.starts_at).join(Course, Course.id == TrainingSession.course_id)
        .where(Course.status == PUBLISHED, TrainingSession.status == SCHEDULED,
               TrainingSession.starts_at > (now or utcnow()), TrainingSession.starts_at < end[1])
    )
    held = {f"{to_tokyo(as_utc(value)):%Y-%m}" for value in starts}
    months = [choice for choice in window if choice[0] in held]
    _months_cache[key] = (clock, months)
    return months


# ---------------------------------------------------------------- statements
#
# The statements are built once per *shape* of search (how many terms, which filters) with
# every value bound as a parameter, and kept: building and hashing a statement of this size
# costs more than running it. ``_params`` supplies the values.

_FREE = case(
    (TrainingSession.capacity > TrainingSession.confirmed_count, TrainingSession.capacity - TrainingSession.confirmed_count),
    else_=0,
)


@dataclass(frozen=True)
class _Shape:
    # per term, the words that may match it (the term and its synonyms): for each, whether a
    # trigram index can serve it (``_indexable``)
    terms: tuple[tuple[bool, ...], ...]
    category: bool
    month: bool
    delivery: bool
    free_only: bool
    open_to_me: bool
    municipality: bool
    audience: bool  # "for me" also applies the course's audience rules to the staff member

    @property
    def session_filters(self) -> bool:
        return self.month or self.delivery or self.free_only


def _shape(filters: CatalogueFilters, municipality_id: int | None, profile: Profile | None = None) -> _Shape:
    return _Shape(
        terms=tuple(tuple(_indexable(word) for word in words) for words in search_terms(filters.q)),
        category=filters.category_id is not None,
        month=bool(filters.month and month_bounds(filters.month)),
        delivery=bool(filters.delivery),
        free_only=filters.free_only,
        open_to_me=filters.open_to_me,
        municipality=municipality_id is not None,
        audience=filters.open_to_me and profile is not None,
    )


def _indexable(word: str) -> bool:
    """Whether to search for ``word`` with a LIKE that the trigram index may serve: three
    characters or more (pg_trgm takes its trigrams from runs of letters and digits, so a word
    of punctuation gives it little to look up; the LIKE is correct all the same). A shorter
    word is a plain substring test (``contains_text``), which no plan serves from that index:
    a prepared statement's generic plan would otherwise scan the whole index for it."""
    return len(word) >= 3


def like_pattern(term: str) -> str:
    """'%term%' with the LIKE wildcards in ``term`` made literal (escape character '/')."""
    escaped = term.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def _params(filters: CatalogueFilters, municipality_id: int | None, now: datetime,
            profile: Profile | None = None) -> dict:
    params = {"now": now, "municipality_id": municipality_id, "category_id": filters.category_id,
              "delivery": filters.delivery}
    if filters.open_to_me and profile is not None:
        params.update(audience.params(profile))
    for i, words in enumerate(search_terms(filters.q)):
        for j, word in enumerate(words):
            params[f"term_{i}_{j}"] = like_pattern(word) if _indexable(word) else word
    bounds = month_bounds(filters.month) if filters.month else None
    if bounds:
        params["month_start"], params["month_end"] = bounds
    return params


def _session_conditions(shape: _Shape) -> list:
    """Which sessions count: scheduled, still to come, and matching the session filters."""
    conds = [TrainingSession.status == SCHEDULED, TrainingSession.starts_at > bindparam("now")]
    if shape.month:
        conds += [TrainingSession.starts_at >= bindparam("month_start"), TrainingSession.starts_at < bindparam("month_end")]
    if shape.delivery:
        conds.append(TrainingSession.delivery == bindparam("delivery"))
    if shape.free_only:
        conds.append(TrainingSession.confirmed_count < TrainingSession.capacity)
    return conds


def _course_conditions(shape: _Shape) -> list:
    conds = [Course.status == PUBLISHED]
    # Substring match on the normalised text. On PostgreSQL the trigram index serves words
    # of 3+ characters (LIKE); shorter ones are a plain substring test over the rows
    # (correct, unindexed). A term with synonyms is an OR of such matches.
    for i, alternatives in enumerate(shape.terms):
        matches = [
            Course.search_text.like(bindparam(f"term_{i}_{j}"), escape="/") if indexable
            else contains_text(Course.search_text, bindparam(f"term_{i}_{j}"))
            for j, indexable in enumerate(alternatives)
        ]
        conds.append(matches[0] if len(matches) == 1 else or_(*matches))
    if shape.category:
        conds.append(Course.category_id == bindparam("category_id"))
    if shape.open_to_me:
        if shape.municipality:
            conds.append(or_(
                Course.eligible_all.is_(True),
                exists().where(CourseEligibility.course_id == Course.id,
                               CourseEligibility.municipality_id == bindparam("municipality_id")),
            ))
        else:
            conds.append(Course.eligible_all.is_(True))
    if shape.audience:
        conds.append(audience.clause())
    if shape.session_filters:
        conds.append(exists().where(TrainingSession.course_id == Course.id, *_session_conditions(shape)))
    return conds


def _soonest(shape: _Shape) -> ColumnElement:
    """The start of a course's next session that matches the search: its sort key.

    Without session filters that is ``course.next_session_at``, kept by the database
    (lms.courses.next_session), trusted while it lies in the future or is NULL (no session
    to come); a course whose next session has just started, before the worker moves the
    value on, is worked out from its sessions. With session filters (month, delivery, free
    seats) it is always worked out: the next matching session is not the next session."""
    probe = (select(func.min(TrainingSession.starts_at))
             .where(TrainingSession.course_id == Course.id, *_session_conditions(shape))
             .scalar_subquery())
    if shape.session_filters:
        return probe
    return case(
        (Course.next_session_at.is_(None), None),
        (Course.next_session_at > bindparam("now"), Course.next_session_at),
        else_=probe,
    )


@lru_cache(maxsize=512)
def _statements(shape: _Shape):
    """(page statement, count statement) for a shape of search.

    The page statement is one round trip for a whole page: the page of courses and the
    number of matches, then, for those rows only, their session figures and whether they
    are open to the user's municipality."""
    where = _course_conditions(shape)
    # The matching courses are found once, for both the page and the number of matches (a
    # selective search would otherwise scan the courses twice: once counting, once walking
    # the date order for a page's worth).
    # Courses in the order staff look for them: the soonest next session first (those with
    # none to come last, newest first).
    soonest = _soonest(shape)
    # Only the sort keys are carried through the sort; the page's 20 rows join their columns.
    matches = (
        select(Course.id, Course.published_at, soonest.label("soonest"))
        .where(*where)
        .cte("matches")
    )
    order = (case((matches.c.soonest.is_(None), 1), else_=0), matches.c.soonest, matches.c.published_at.desc(),
             matches.c.id.desc())
    page = (
        select(matches)
        .order_by(*order)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
        .subquery("page")
    )
    total = select(func.count()).select_from(matches).scalar_subquery()
    sessions = [TrainingSession.course_id == page.c.id, *_session_conditions(shape)]
    count = select(func.count()).select_from(TrainingSession).where(*sessions).scalar_subquery()
    # Seats are per session: the free seats of the next one (a sum over sessions misleads).
    free = (select(_FREE).where(*sessions).order_by(TrainingSession.starts_at, TrainingSession.id).limit(1)
            .scalar_subquery())
    listed: ColumnElement[int]
    if shape.municipality:
        listed = case(
            (exists().where(CourseEligibility.course_id == page.c.id,
                            CourseEligibility.municipality_id == bindparam("municipality_id")), 1),
            else_=0,
        )
    else:
        listed = literal(0)
    page_stmt = select(
        page.c.id, Course.title, Course.summary, Course.category_id,
        or_(Course.requires_approval, Course.supervisor_approval).label("requires_approval"), Course.eligible_all,
        total.label("total"), page.c.soonest.label("next_start"), count.label("sessions"),
        free.label("free_seats"), listed.label("listed"),
    ).join_from(page, Course, Course.id == page.c.id).order_by(case((page.c.soonest.is_(None), 1), else_=0), page.c.soonest, page.c.published_at.desc(),
               page.c.id.desc())
    count_stmt = select(func.count()).select_from(Course).where(*where)
    return page_stmt, count_stmt


def catalogue_select(filters: CatalogueFilters, municipality_id: int | None, now: datetime | None = None,
                     profile: Profile | None = None):
    """(statement, params) selecting the ids of the matching courses in catalogue order."""
    shape = _shape(filters, municipality_id, profile)
    soonest = _soonest(shape)
    stmt = select(Course.id).where(*_course_conditions(shape)).order_by(
        case((soonest.is_(None), 1), else_=0), soonest, Course.published_at.desc(), Course.id.desc())
    return stmt, _params(filters, municipality_id, now or utcnow(), profile)


def catalogue_page(filters: CatalogueFilters, municipality_id: int | None, page: int = 1, per_page: int = PER_PAGE,
                   profile: Profile | None = None):
    """(pagination, rows) for one page of the catalogue: one database round trip (the rows
    carry the total; a page past the last one counts separately). ``profile``: the signed-in
    staff member's, for 「自分が対象の研修」 (the course's audience rules, lms.courses.audience)."""
    page = max(page, 1)
    per_page = min(max(per_page, 1), 100)
    shape = _shape(filters, municipality_id, profile)
    params = _params(filters, municipality_id, utcnow(), profile)
    page_stmt, count_stmt = _statements(shape)
    # A Core statement: run on the session's connection, skipping the ORM's per-statement work.
    rows = db.session.connection().execute(
        page_stmt, {**params, "limit": per_page, "offset": (page - 1) * per_page}).all()
    total = int(rows[0].total) if rows else 0
    if not rows and page > 1:  # past the last page: count separately (rare)
        total = int(db.session.scalar(count_stmt, params) or 0)
    items = [
        CatalogueRow(
            CourseCard(r.id, r.title, r.summary, r.category_id, bool(r.requires_approval), bool(r.eligible_all)),
            CourseFigures(as_utc(r.next_start), int(r.sessions or 0), int(r.free_seats or 0)),
            bool(r.eligible_all) or bool(r.listed),
        )
        for r in rows
    ]
    pagination = Page(page=page, per_page=per_page, total=total, items=items)
    return pagination, items


def categories() -> list[Category]:
    return list(db.session.scalars(select(Category).order_by(Category.sort_order, Category.name)))


_CATEGORY_TTL_SECONDS = 60.0
_category_cache: dict[str, tuple[float, list[tuple[int, str, str]]]] = {}


def category_choices() -> list[tuple[int, str]]:
    """(id, name) of every category for the catalogue's filter, in the page's language (the
    stored English name in English mode), kept per process for a minute: the list changes a
    few times a year, and the catalogue is the busiest page."""
    key = str(db.engine.url)
    now = time.monotonic()
    cached = _category_cache.get(key)
    if cached is None or now - cached[0] > _CATEGORY_TTL_SECONDS:
        rows = db.session.execute(
            select(Category.id, Category.name, Category.name_en).order_by(Category.sort_order, Category.name)
        ).all()
        cached = (now, [(int(cid), name, name_en or "") for cid, name, name_en in rows])
        _category_cache[key] = cached
    return [(cid, localized_name(name, name_en)) for cid, name, name_en in cached[1]]


@event.listens_for(Session, "after_flush")
def _forget_categories(session, _context) -> None:
    # This process sees its own changes at once; other workers within the minute.
    changed = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, Category) for obj in changed):
        _category_cache.clear()
    if any(isinstance(obj, TrainingSession | Course) for obj in changed):
        _months_cache.clear()


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
