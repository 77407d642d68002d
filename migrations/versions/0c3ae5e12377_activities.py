"""Activities before and after a session (事前課題, 研修アンケート, 確認テスト, 受講報告): activity,
activity_question, activity_submission and the anonymous surveys' answers (activity_anonymous_answer)

Revision ID: 0c3ae5e12377
Revises: 7d1f3b9e4a60
Create Date: 2026-12-04 13:51:37.162423

"""
import sqlalchemy as sa
from alembic import op


revision = '0c3ae5e12377'
down_revision = '7d1f3b9e4a60'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('activity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('instructions_md', sa.Text(), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('anonymous', sa.Boolean(), nullable=False),
    sa.Column('published', sa.Boolean(), nullable=False),
    sa.Column('opens_anchor', sa.String(length=5), nullable=False),
    sa.Column('opens_offset_hours', sa.Integer(), nullable=False),
    sa.Column('closes_anchor', sa.String(length=5), nullable=False),
    sa.Column('closes_offset_hours', sa.Integer(), nullable=False),
    sa.Column('allow_late', sa.Boolean(), nullable=False),
    sa.Column('pass_pct', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('time_limit_minutes', sa.Integer(), nullable=True),
    sa.Column('shuffle', sa.Boolean(), nullable=False),
    sa.Column('show_answers', sa.Boolean(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['course_id'], ['course.id'], name=op.f('fk_activity_course_id_course')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity'))
    )
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_course_id'), ['course_id'], unique=False)

    op.create_table('activity_anonymous_answer',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=False),
    sa.Column('submitted_on', sa.Date(), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activity.id'], name=op.f('fk_activity_anonymous_answer_activity_id_activity'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['session_id'], ['training_session.id'], name=op.f('fk_activity_anonymous_answer_session_id_training_session')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_anonymous_answer'))
    )
    with op.batch_alter_table('activity_anonymous_answer', schema=None) as batch_op:
        batch_op.create_index('ix_activity_anonymous_answer_activity', ['activity_id', 'session_id'], unique=False)

    op.create_table('activity_question',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('help_text', sa.Text(), nullable=False),
    sa.Column('required', sa.Boolean(), nullable=False),
    sa.Column('choices', sa.JSON(), nullable=False),
    sa.Column('correct', sa.JSON(), nullable=False),
    sa.Column('max_length', sa.Integer(), nullable=True),
    sa.Column('points', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activity.id'], name=op.f('fk_activity_question_activity_id_activity'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_question'))
    )
    with op.batch_alter_table('activity_question', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activity_question_activity_id'), ['activity_id'], unique=False)

    op.create_table('activity_submission',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('activity_id', sa.Integer(), nullable=False),
    sa.Column('staff_member_id', sa.Integer(), nullable=False),
    sa.Column('municipality_id', sa.Integer(), nullable=False),
    sa.Column('session_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('answers', sa.JSON(), nullable=True),
    sa.Column('question_order', sa.JSON(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('submitted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('score_pct', sa.Integer(), nullable=True),
    sa.Column('passed', sa.Boolean(), nullable=True),
    sa.Column('review_comment', sa.Text(), nullable=False),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['activity_id'], ['activity.id'], name=op.f('fk_activity_submission_activity_id_activity'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['municipality_id'], ['municipality.id'], name=op.f('fk_activity_submission_municipality_id_municipality')),
    sa.ForeignKeyConstraint(['reviewed_by_id'], ['user_account.id'], name=op.f('fk_activity_submission_reviewed_by_id_user_account')),
    sa.ForeignKeyConstraint(['session_id'], ['training_session.id'], name=op.f('fk_activity_submission_session_id_training_session')),
    sa.ForeignKeyConstraint(['staff_member_id'], ['staff_member.id'], name=op.f('fk_activity_submission_staff_member_id_staff_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activity_submission')),
    sa.UniqueConstraint('activity_id', 'staff_member_id', 'session_id', 'attempt', name='uq_activity_submission_attempt')
    )
    with op.batch_alter_table('activity_submission', schema=None) as batch_op:
        batch_op.create_index('ix_activity_submission_review', ['municipality_id', 'status'], unique=False)
        batch_op.create_index('ix_activity_submission_staff', ['staff_member_id', 'activity_id'], unique=False)



def downgrade():
    with op.batch_alter_table('activity_submission', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_submission_staff')
        batch_op.drop_index('ix_activity_submission_review')

    op.drop_table('activity_submission')
    with op.batch_alter_table('activity_question', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_question_activity_id'))

    op.drop_table('activity_question')
    with op.batch_alter_table('activity_anonymous_answer', schema=None) as batch_op:
        batch_op.drop_index('ix_activity_anonymous_answer_activity')

    op.drop_table('activity_anonymous_answer')
    with op.batch_alter_table('activity', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activity_course_id'))

    op.drop_table('activity')
