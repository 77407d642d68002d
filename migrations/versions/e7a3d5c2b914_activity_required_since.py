"""An activity counts toward completion since it became a requirement (published and required),
not since it was first published: activity.published_at becomes activity.required_since

Revision ID: e7a3d5c2b914
Revises: c5e2b8d41f07
Create Date: 2026-12-06 16:30:00

"""
from alembic import op


revision = 'e7a3d5c2b914'
down_revision = 'c5e2b8d41f07'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.alter_column('published_at', new_column_name='required_since')
    # Only an activity that is a requirement now has a time since which it is one (for those that
    # are, the time they were first published: the rule until now).
    op.execute("UPDATE activity SET required_since = NULL WHERE NOT (published AND required)")


def downgrade():
    # (an optional or unpublished activity loses the time it was published: it was never kept
    # apart from the requirement's)
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.alter_column('required_since', new_column_name='published_at')
