"""選考: courses whose requests the organiser selects (course.selection)

Revision ID: 4c8e2a7d91b5
Revises: 9b3e1f6a2c47
Create Date: 2026-12-04 13:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

revision = '4c8e2a7d91b5'
down_revision = '9b3e1f6a2c47'
branch_labels = None
depends_on = None


def upgrade():
    # A plain ADD COLUMN (no table rebuild: on SQLite a rebuilt course table would cascade).
    op.add_column('course', sa.Column('selection', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    op.drop_column('course', 'selection')
