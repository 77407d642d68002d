"""A bulk roster job's per-entry results keep their message id and parameters, worded in the
language of each reader; the text of older rows (worded in the language of the feed's request)
stays and is shown as it is

Revision ID: 8f4a2c6d1e93
Revises: a7c4e2b9d051
Create Date: 2026-12-07 02:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = '8f4a2c6d1e93'
down_revision = 'a7c4e2b9d051'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_roster_job_row', schema=None) as batch_op:
        batch_op.add_column(sa.Column('message_id', sa.Text(), server_default='', nullable=False))
        batch_op.add_column(sa.Column('message_params', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('api_roster_job_row', schema=None) as batch_op:
        batch_op.drop_column('message_params')
        batch_op.drop_column('message_id')
