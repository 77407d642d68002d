"""Indexes for the API's syncs: the platform client's across every municipality, attendance and viewing

The integration API pages rows in (updated_at, id) order; a municipality's client has
(municipality_id, updated_at, id), the platform client (every municipality) had none and
sorted the whole table for each page; attendance and viewing (read through their staff
member's municipality) are paged the same way.

Revision ID: a7c4e2d91f30
Revises: dfa8e7eb04aa
Create Date: 2026-12-04 03:15:00

"""
from alembic import op

revision = 'a7c4e2d91f30'
down_revision = 'dfa8e7eb04aa'
branch_labels = None
depends_on = None

TABLES = ('enrollment', 'staff_member', 'completion', 'attendance', 'viewing_progress')


def upgrade():
    for table in TABLES:
        op.create_index(op.f(f'ix_{table}_updated'), table, ['updated_at', 'id'], unique=False)


def downgrade():
    for table in TABLES:
        op.drop_index(op.f(f'ix_{table}_updated'), table_name=table)
