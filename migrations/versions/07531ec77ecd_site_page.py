"""site_page: アクセシビリティ方針 and 個人情報の取扱い, edited by platform admins

A page without a row shows the application's default text; the first edit writes the row.

Revision ID: 07531ec77ecd
Revises: 65501ca52c0d
Create Date: 2026-12-04 09:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '07531ec77ecd'
down_revision = '65501ca52c0d'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'site_page',
        sa.Column('slug', sa.String(length=40), nullable=False),
        sa.Column('title', sa.String(length=200), nullable=False),
        sa.Column('body_md', sa.Text(), nullable=False),
        sa.Column('title_en', sa.String(length=200), nullable=False),
        sa.Column('body_md_en', sa.Text(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['updated_by_id'], ['user_account.id'],
                                name=op.f('fk_site_page_updated_by_id_user_account')),
        sa.PrimaryKeyConstraint('slug', name=op.f('pk_site_page')),
    )


def downgrade():
    op.drop_table('site_page')
