"""Bulk roster feeds remember the client's Idempotency-Key: a feed sent again is one job

Revision ID: b7e19d4c2a86
Revises: 8f3c2a71d5e4
Create Date: 2026-12-05 12:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = 'b7e19d4c2a86'
down_revision = '8f3c2a71d5e4'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('api_roster_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('idempotency_key', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('request_digest', sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint(batch_op.f('uq_api_roster_job_client_id_idempotency_key'), ['client_id', 'idempotency_key'])


def downgrade():
    with op.batch_alter_table('api_roster_job', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_api_roster_job_client_id_idempotency_key'), type_='unique')
        batch_op.drop_column('request_digest')
        batch_op.drop_column('idempotency_key')
