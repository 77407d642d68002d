"""職層 eligibility: staff_member.job_grade; course audience rules

A course may be limited to 職層/職名 values, a range of years of service, or the fiscal
year's new hires (lms.courses.audience). The roster gains 職層.

Revision ID: e5a1f0c93d27
Revises: c3d9a7e15b42
Create Date: 2026-12-03 23:55:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'e5a1f0c93d27'
down_revision = 'c3d9a7e15b42'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTER TABLE (no batch copy): on SQLite, copying course would break the triggers on
    # training_session that name it (lms.courses.next_session).
    op.add_column('staff_member', sa.Column('job_grade', sa.String(length=50), server_default='', nullable=False))
    op.add_column('course', sa.Column('audience_grades', sa.Text(), server_default='', nullable=False))
    op.add_column('course', sa.Column('audience_titles', sa.Text(), server_default='', nullable=False))
    op.add_column('course', sa.Column('min_years_of_service', sa.Integer(), nullable=True))
    op.add_column('course', sa.Column('max_years_of_service', sa.Integer(), nullable=True))
    op.add_column('course', sa.Column('new_hires_only', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    op.drop_column('course', 'new_hires_only')
    op.drop_column('course', 'max_years_of_service')
    op.drop_column('course', 'min_years_of_service')
    op.drop_column('course', 'audience_titles')
    op.drop_column('course', 'audience_grades')
    op.drop_column('staff_member', 'job_grade')
