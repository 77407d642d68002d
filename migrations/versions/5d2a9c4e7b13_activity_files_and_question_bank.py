"""Activities: files attached to answers (activity_file), the courses' question banks
(question_bank_item) and a quiz's number of questions drawn per attempt (activity.draw_count)

Revision ID: 5d2a9c4e7b13
Revises: 0c3ae5e12377
Create Date: 2026-12-04 17:20:00

"""
import sqlalchemy as sa
from alembic import op


revision = '5d2a9c4e7b13'
down_revision = '0c3ae5e12377'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('activity', sa.Column('draw_count', sa.Integer(), nullable=True))
    op.create_table('activity_file',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('submission_id', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.Column('storage_key', sa.String(length=220), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('content_type', sa.String(length=120), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['question_id'], ['activity_question.id'], name=op.f('fk_activity_file_question_id_activity_question'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['submission_id'], ['activity_submission.id'], name=op.f('fk_activity_file_submission_id_activity_submission'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_file')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_activity_file_storage_key'))
    )
    op.create_index(op.f('ix_activity_file_submission_id'), 'activity_file', ['submission_id'], unique=False)
    op.create_table('question_bank_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('help_text', sa.Text(), nullable=False),
    sa.Column('choices', sa.JSON(), nullable=False),
    sa.Column('correct', sa.JSON(), nullable=False),
    sa.Column('max_length', sa.Integer(), nullable=True),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['course_id'], ['course.id'], name=op.f('fk_question_bank_item_course_id_course'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_question_bank_item'))
    )
    op.create_index(op.f('ix_question_bank_item_course_id'), 'question_bank_item', ['course_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_question_bank_item_course_id'), table_name='question_bank_item')
    op.drop_table('question_bank_item')
    op.drop_index(op.f('ix_activity_file_submission_id'), table_name='activity_file')
    op.drop_table('activity_file')
    with op.batch_alter_table('activity') as batch_op:
        batch_op.drop_column('draw_count')
