"""viewing credit from the server's own facts: video lengths the server knows, one wall clock per learner

* archive_file.duration_checked_at: when the server established a video's length (from the
  container's headers, or measured by the worker from its last timestamps); NULL with a NULL
  duration means "being measured". A duration of 0 (fragmented MP4) meant "not stated": it
  becomes NULL, and the worker measures those files (and every video without a length).
* viewing_progress loses duration_seconds (the player's own figure), playback_started_at and
  credited_wall_seconds (a wall-clock budget per file): the budget is now one per learner.
* viewing_clock: that budget, one row per staff member.

Revision ID: 65501ca52c0d
Revises: c7d2e9a4f1b6
Create Date: 2026-12-03 06:25:14

"""
import sqlalchemy as sa
from alembic import op

revision = '65501ca52c0d'
down_revision = 'c7d2e9a4f1b6'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('viewing_clock',
    sa.Column('staff_member_id', sa.Integer(), nullable=False),
    sa.Column('credited_until', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['staff_member_id'], ['staff_member.id'], name=op.f('fk_viewing_clock_staff_member_id_staff_member')),
    sa.PrimaryKeyConstraint('staff_member_id', name=op.f('pk_viewing_clock'))
    )
    with op.batch_alter_table('archive_file', schema=None) as batch_op:
        batch_op.add_column(sa.Column('duration_checked_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE archive_file SET duration_seconds = NULL WHERE kind = 'video' AND duration_seconds <= 0")
    op.execute("UPDATE archive_file SET duration_checked_at = COALESCE(completed_at, created_at) "
               "WHERE duration_seconds IS NOT NULL")

    with op.batch_alter_table('viewing_progress', schema=None) as batch_op:
        batch_op.drop_column('playback_started_at')
        batch_op.drop_column('duration_seconds')
        batch_op.drop_column('credited_wall_seconds')


def downgrade():
    with op.batch_alter_table('viewing_progress', schema=None) as batch_op:
        batch_op.add_column(sa.Column('credited_wall_seconds', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('duration_seconds', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('playback_started_at', sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE viewing_progress SET duration_seconds = COALESCE("
               "(SELECT duration_seconds FROM archive_file WHERE archive_file.id = viewing_progress.archive_file_id), 0), "
               "credited_wall_seconds = watched_seconds")

    with op.batch_alter_table('archive_file', schema=None) as batch_op:
        batch_op.drop_column('duration_checked_at')

    op.drop_table('viewing_clock')
