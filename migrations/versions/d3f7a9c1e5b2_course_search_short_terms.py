"""Catalogue search terms of one or two characters (操作, 会議) served by an index on
PostgreSQL: lms_short_grams(text), the distinct characters and character pairs of a text,
and a GIN index on it over course.search_text (lms.courses.short_terms explains; this
migration carries its own copy of the function). Nothing changes on SQLite.

Revision ID: d3f7a9c1e5b2
Revises: c8e2f4a6b1d3
Create Date: 2026-12-07 17:00:00

"""
from alembic import op

revision = 'd3f7a9c1e5b2'
down_revision = 'c8e2f4a6b1d3'
branch_labels = None
depends_on = None

FUNCTION = r"""
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


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FUNCTION)
    op.execute("CREATE INDEX ix_course_search_short ON course USING gin (lms_short_grams(search_text))")


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP INDEX ix_course_search_short")
    op.execute("DROP FUNCTION lms_short_grams(text)")
