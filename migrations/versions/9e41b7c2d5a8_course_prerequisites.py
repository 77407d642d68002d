"""受講要件: course_prerequisite, and course.has_prerequisites

Revision ID: 9e41b7c2d5a8
Revises: 5d0c1e7a9b32
Create Date: 2026-12-03 17:50:00

"""
import sqlalchemy as sa
from alembic import op

revision = '9e41b7c2d5a8'
down_revision = '5d0c1e7a9b32'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'course_prerequisite',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('course_id', sa.Integer(), nullable=False),
        sa.Column('required_course_id', sa.Integer(), nullable=False),
        sa.Column('within_fiscal_years', sa.Integer(), nullable=True),
        sa.CheckConstraint('course_id <> required_course_id', name=op.f('ck_course_prerequisite_not_itself')),
        sa.CheckConstraint('within_fiscal_years IS NULL OR within_fiscal_years BETWEEN 1 AND 20',
                           name=op.f('ck_course_prerequisite_within_fiscal_years_range')),
        sa.ForeignKeyConstraint(['course_id'], ['course.id'], name=op.f('fk_course_prerequisite_course_id_course'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['required_course_id'], ['course.id'],
                                name=op.f('fk_course_prerequisite_required_course_id_course')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_course_prerequisite')),
        sa.UniqueConstraint('course_id', 'required_course_id',
                            name=op.f('uq_course_prerequisite_course_id_required_course_id')),
    )
    with op.batch_alter_table('course_prerequisite', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_course_prerequisite_required_course_id'), ['required_course_id'],
                              unique=False)
    # Plain ALTER TABLE (no batch copy): on SQLite, copying course would break the triggers on
    # training_session that name it (lms.courses.next_session).
    op.add_column('course', sa.Column('has_prerequisites', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    op.drop_column('course', 'has_prerequisites')
    with op.batch_alter_table('course_prerequisite', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_course_prerequisite_required_course_id'))
    op.drop_table('course_prerequisite')
