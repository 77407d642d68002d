"""completion dashboard summaries: completion_course_summary and completion_staff_summary

Also ix_completion_course_year_status becomes ix_completion_course_year_status_municipality
(the municipality added, covering), so that one summary key's completions are read from the
index alone.

Per (municipality, fiscal year, course) and (municipality, fiscal year, staff member):
what the completion dashboards count, kept in step with every change by
lms.completion.summary. Filled from the existing data on upgrade.

Revision ID: 5b2e9c41d7a3
Revises: a3c81f0e5d27
Create Date: 2026-11-27 11:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '5b2e9c41d7a3'
down_revision = 'a3c81f0e5d27'
branch_labels = None
depends_on = None

COURSE_COUNTS = ('enrolled', 'done', 'attended', 'completed_live', 'completed_archive', 'completed_both',
                 'completed_manual', *(f'm{i}' for i in range(1, 13)))


def upgrade():
    op.create_table(
        'completion_course_summary',
        sa.Column('municipality_id', sa.Integer(), nullable=False),
        sa.Column('fiscal_year', sa.Integer(), nullable=False),
        sa.Column('course_id', sa.Integer(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COURSE_COUNTS),
        sa.ForeignKeyConstraint(['course_id'], ['course.id'], name=op.f('fk_completion_course_summary_course_id_course')),
        sa.ForeignKeyConstraint(['municipality_id'], ['municipality.id'],
                                name=op.f('fk_completion_course_summary_municipality_id_municipality')),
        sa.PrimaryKeyConstraint('municipality_id', 'fiscal_year', 'course_id', name=op.f('pk_completion_course_summary')),
    )
    op.create_table(
        'completion_staff_summary',
        sa.Column('municipality_id', sa.Integer(), nullable=False),
        sa.Column('fiscal_year', sa.Integer(), nullable=False),
        sa.Column('staff_member_id', sa.Integer(), nullable=False),
        sa.Column('enrolled_courses', sa.Integer(), nullable=False),
        sa.Column('completed_courses', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['municipality_id'], ['municipality.id'],
                                name=op.f('fk_completion_staff_summary_municipality_id_municipality')),
        sa.ForeignKeyConstraint(['staff_member_id'], ['staff_member.id'],
                                name=op.f('fk_completion_staff_summary_staff_member_id_staff_member')),
        sa.PrimaryKeyConstraint('municipality_id', 'fiscal_year', 'staff_member_id',
                                name=op.f('pk_completion_staff_summary')),
    )
    # One summary key's completions from the index alone (replaces the index on
    # course_id, fiscal_year, status, of which it is an extension).
    with op.batch_alter_table('completion', schema=None) as batch_op:
        batch_op.drop_index('ix_completion_course_year_status')
        batch_op.create_index('ix_completion_course_year_status_municipality',
                              ['course_id', 'fiscal_year', 'status', 'municipality_id'], unique=False,
                              postgresql_include=['staff_member_id', 'method', 'completed_at'])
    # Fill them from the existing enrollments, attendance and completions (the same code
    # that checks them: `flask lms completion-summary --rebuild` does the same later).
    from sqlalchemy.orm import Session

    from lms.completion.summary import rebuild

    session = Session(bind=op.get_bind())
    rebuild(session)
    session.flush()


def downgrade():
    with op.batch_alter_table('completion', schema=None) as batch_op:
        batch_op.drop_index('ix_completion_course_year_status_municipality',
                            postgresql_include=['staff_member_id', 'method', 'completed_at'])
        batch_op.create_index('ix_completion_course_year_status', ['course_id', 'fiscal_year', 'status'],
                              unique=False)
    op.drop_table('completion_staff_summary')
    op.drop_table('completion_course_summary')
