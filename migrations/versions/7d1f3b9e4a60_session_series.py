"""連続講座: the sessions of a series name its first one (training_session.series_id), a
make-up part names the part it replaces (training_session.makeup_for_id), and a course's share
of parts to attend (course.series_threshold_pct)

Revision ID: 7d1f3b9e4a60
Revises: 4c8e2a7d91b5
Create Date: 2026-12-04 13:45:00.000000

"""
import sqlalchemy as sa
from alembic import op

revision = '7d1f3b9e4a60'
down_revision = '4c8e2a7d91b5'
branch_labels = None
depends_on = None


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name == 'sqlite':
        # SQLite cannot add a constraint to a table, and a rebuilt training_session would
        # cascade to the rows that reference it: the reference goes inline, with the column.
        # (A downgrade leaves them: see there.)
        present = {c['name'] for c in sa.inspect(bind).get_columns('training_session')}
        for name in ('series_id', 'makeup_for_id'):
            if name not in present:
                op.execute(f'ALTER TABLE training_session ADD COLUMN {name} INTEGER REFERENCES training_session (id)')
    else:
        op.add_column('training_session', sa.Column('series_id', sa.Integer(), nullable=True))
        op.add_column('training_session', sa.Column('makeup_for_id', sa.Integer(), nullable=True))
        op.create_foreign_key(op.f('fk_training_session_series_id_training_session'), 'training_session',
                              'training_session', ['series_id'], ['id'])
        op.create_foreign_key(op.f('fk_training_session_makeup_for_id_training_session'), 'training_session',
                              'training_session', ['makeup_for_id'], ['id'])
    op.create_index(op.f('ix_training_session_series_id'), 'training_session', ['series_id'], unique=False)
    op.add_column('course', sa.Column('series_threshold_pct', sa.Integer(), server_default='75', nullable=False))


def downgrade():
    op.drop_column('course', 'series_threshold_pct')
    op.drop_index(op.f('ix_training_session_series_id'), table_name='training_session')
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite drops no column that references a table, and a rebuilt training_session would
        # cascade: the two (nullable, unread by the older code) stay; an upgrade reuses them.
        return
    op.drop_constraint(op.f('fk_training_session_makeup_for_id_training_session'), 'training_session',
                       type_='foreignkey')
    op.drop_constraint(op.f('fk_training_session_series_id_training_session'), 'training_session',
                       type_='foreignkey')
    op.drop_column('training_session', 'makeup_for_id')
    op.drop_column('training_session', 'series_id')
