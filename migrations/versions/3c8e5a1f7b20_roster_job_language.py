"""Bulk roster feeds keep the language the client asked for: their results are worded in it

Revision ID: 3c8e5a1f7b20
Revises: a9e4c1d7b352
Create Date: 2026-12-06 22:40:00

"""
import sqlalchemy as sa
from alembic import op


revision = '3c8e5a1f7b20'
down_revision = 'a9e4c1d7b352'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_roster_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=5), nullable=False, server_default='ja'))


def downgrade():
    with op.batch_alter_table('api_roster_job', schema=None) as batch_op:
        batch_op.drop_column('language')
