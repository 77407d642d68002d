"""One-time tokens of creating forms (form_submission): a double click makes one object

Revision ID: 8f3c2a71d5e4
Revises: 5d2a9c4e7b13
Create Date: 2026-12-05 08:10:00

"""
import sqlalchemy as sa
from alembic import op


revision = '8f3c2a71d5e4'
down_revision = '5d2a9c4e7b13'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('form_submission',
    sa.Column('token', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('result_url', sa.String(length=500), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('token', name=op.f('pk_form_submission'))
    )
    op.create_index(op.f('ix_form_submission_created_at'), 'form_submission', ['created_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_form_submission_created_at'), table_name='form_submission')
    op.drop_table('form_submission')
