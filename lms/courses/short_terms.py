"""Search terms of one or two characters (操作, 会議, 研修), indexed on PostgreSQL.

The catalogue's search is a substring search on ``course.search_text``. On PostgreSQL the
trigram index serves terms of three characters or more; a term of one or two characters has
no trigram, so ``LIKE '%会議%'`` walked every published course (about 2 ms of database time
for 2,000 courses, against 0.3 ms through an index), and Japanese searches are often two
characters long.

``lms_short_grams(text)`` lists the distinct characters and character pairs of a text
(none containing white space): a GIN index on it (``ix_course_search_short``) answers "does
the text contain this one- or two-character term" exactly, as ``@>`` (array contains): a
term of one or two characters occurs in a text exactly when it is one of its characters or
character pairs. ``short_term_match`` writes that condition on PostgreSQL and the same
``LIKE`` as every other term elsewhere (SQLite scans fast enough).

The function is IMMUTABLE (its result depends on its argument alone), as an index expression
must be. The migration that adds the index installs it with its own copy of the SQL;
``create_all`` installs it from here (the listener in ``lms.courses.models``).
"""

from __future__ import annotations

from sqlalchemy import Boolean
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

# The longest term the index serves; longer ones go through the trigram index.
SHORT_TERM_LENGTH = 2

FUNCTION_SQL = r"""
CREATE OR REPLACE FUNCTION lms_short_grams(t text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT g), '{}') FROM (
    SELECT substr(t, i, 1) AS g FROM generate_series(1, char_length(t)) AS i
    UNION ALL
    SELECT substr(t, i, 2) FROM generate_series(1, char_length(t) - 1) AS i
  ) AS grams
  WHERE g !~ '\s'
$$
"""


def install(connection) -> None:
    """Create the function (PostgreSQL; idempotent) on ``connection`` (SQLAlchemy)."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(FUNCTION_SQL)


def is_short(word: str) -> bool:
    return 0 < len(word) <= SHORT_TERM_LENGTH


class short_term_match(FunctionElement):  # noqa: N801 - reads as the SQL function it stands for
    """``short_term_match(search_text, like_pattern, term)``: the text contains ``term`` (one or
    two characters; ``like_pattern`` is '%term%' escaped with '/')."""

    type = Boolean()
    inherit_cache = True
    name = "short_term_match"


@compiles(short_term_match)
def _like(element, compiler, **kw) -> str:
    text, pattern, _term = list(element.clauses)
    return f"{compiler.process(text, **kw)} LIKE {compiler.process(pattern, **kw)} ESCAPE '/'"


@compiles(short_term_match, "postgresql")
def _grams(element, compiler, **kw) -> str:
    text, _pattern, term = list(element.clauses)
    return f"lms_short_grams({compiler.process(text, **kw)}) @> ARRAY[CAST({compiler.process(term, **kw)} AS TEXT)]"
