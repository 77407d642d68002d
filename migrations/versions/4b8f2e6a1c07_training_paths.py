"""研修体系: training_path and training_path_step

Revision ID: 4b8f2e6a1c07
Revises: 9e41b7c2d5a8
Create Date: 2026-12-03 18:05:00

"""
import sqlalchemy as sa
from alembic import op

revision = '4b8f2e6a1c07'
down_revision = '9e41b7c2d5a8'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'training_path',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_training_path')),
        sa.UniqueConstraint('name', name=op.f('uq_training_path_name')),
    )
    op.create_table(
        'training_path_step',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('path_id', sa.Integer(), nullable=False),
        sa.Column('course_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['course_id'], ['course.id'], name=op.f('fk_training_path_step_course_id_course')),
        sa.ForeignKeyConstraint(['path_id'], ['training_path.id'], name=op.f('fk_training_path_step_path_id_training_path'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_training_path_step')),
        sa.UniqueConstraint('path_id', 'course_id', name=op.f('uq_training_path_step_path_id_course_id')),
        sa.UniqueConstraint('path_id', 'position', name=op.f('uq_training_path_step_path_id_position')),
    )
    with op.batch_alter_table('training_path_step', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_path_step_course_id'), ['course_id'], unique=False)


def downgrade():
    with op.batch_alter_table('training_path_step', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_path_step_course_id'))
    op.drop_table('training_path_step')
    op.drop_table('training_path')
