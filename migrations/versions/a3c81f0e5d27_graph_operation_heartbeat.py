"""graph_operation.claimed_by and heartbeat_at: who runs an operation, and its lease

Revision ID: a3c81f0e5d27
Revises: d86059d51536
Create Date: 2026-11-27 10:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'a3c81f0e5d27'
down_revision = 'd86059d51536'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('graph_operation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_by', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    with op.batch_alter_table('graph_operation', schema=None) as batch_op:
        batch_op.drop_column('heartbeat_at')
        batch_op.drop_column('claimed_by')
