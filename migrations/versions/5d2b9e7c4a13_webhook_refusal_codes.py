"""Why a webhook attempt was refused before sending is kept as a code and its parameters, put
into words in the reader's language; the free text of older rows stays and is shown as it is

Revision ID: 5d2b9e7c4a13
Revises: 3c8e5a1f7b20
Create Date: 2026-12-06 22:45:00

"""
import sqlalchemy as sa
from alembic import op


revision = '5d2b9e7c4a13'
down_revision = '3c8e5a1f7b20'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_attempt', schema=None) as batch_op:
        batch_op.add_column(sa.Column('error_code', sa.String(length=40), server_default='', nullable=False))
        batch_op.add_column(sa.Column('error_params', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('webhook_attempt', schema=None) as batch_op:
        batch_op.drop_column('error_params')
        batch_op.drop_column('error_code')
