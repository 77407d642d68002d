"""Captions belong to one video of their archive (an archive may hold several videos, e.g.
前半 and 後半): a link from a captions file to its video. Existing captions were the
archive's first video's (the only ones the player showed): they are linked to it, so
nothing changes for them

Revision ID: b3f7d2a96c14
Revises: 8f4a2c6d1e93
Create Date: 2026-12-07 02:00:00

"""
import sqlalchemy as sa
from alembic import op


revision = 'b3f7d2a96c14'
down_revision = '8f4a2c6d1e93'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('archive_file', schema=None) as batch_op:
        batch_op.add_column(sa.Column('video_file_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_archive_file_video_file_id'), ['video_file_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_archive_file_video_file_id_archive_file'), 'archive_file',
                                    ['video_file_id'], ['id'])
    # The first video (lowest id) still shown to viewers: status 'ready', kind 'video'.
    op.execute(
        "UPDATE archive_file SET video_file_id = ("
        " SELECT min(v.id) FROM archive_file v"
        " WHERE v.archive_id = archive_file.archive_id AND v.kind = 'video' AND v.status = 'ready')"
        " WHERE kind = 'captions'"
    )


def downgrade():
    with op.batch_alter_table('archive_file', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_archive_file_video_file_id_archive_file'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_archive_file_video_file_id'))
        batch_op.drop_column('video_file_id')
