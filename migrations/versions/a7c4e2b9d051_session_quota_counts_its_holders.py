"""A 割当 added to a session counted none of its municipality's people confirmed there already,
so their cancellation later broke the quota's CHECK: every quota row counts its holders again

(its seats raised to them where the quota was set below them, the number it should have been
refused under).

Revision ID: a7c4e2b9d051
Revises: 5d2b9e7c4a13
Create Date: 2026-12-07 02:10:00

"""
from alembic import op


revision = 'a7c4e2b9d051'
down_revision = '5d2b9e7c4a13'
branch_labels = None
depends_on = None

HOLDERS = (
    "(SELECT count(*) FROM enrollment e WHERE e.session_id = session_quota.session_id"
    " AND e.municipality_id = session_quota.municipality_id AND e.status = 'confirmed')"
)


def upgrade():
    op.execute(
        f"UPDATE session_quota SET confirmed_count = {HOLDERS},"
        f" seats = CASE WHEN seats < {HOLDERS} THEN {HOLDERS} ELSE seats END"
        f" WHERE confirmed_count <> {HOLDERS}"
    )


def downgrade():
    pass  # (the counts are right either way)
