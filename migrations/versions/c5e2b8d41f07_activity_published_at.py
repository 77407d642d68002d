"""When an activity was first published: a required one counts toward a learner's completion
only if their session's window was still open then

Revision ID: c5e2b8d41f07
Revises: a4c8e2f19b73
Create Date: 2026-12-06 13:40:00

"""
import sqlalchemy as sa
from alembic import op


revision = 'c5e2b8d41f07'
down_revision = 'a4c8e2f19b73'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.add_column(sa.Column('published_at', sa.DateTime(timezone=True), nullable=True))
    # Published before this column: taken as published when created (as the rule was until now).
    op.execute("UPDATE activity SET published_at = created_at WHERE published")


def downgrade():
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_column('published_at')
