"""training_session.waitlisted_count, kept by triggers on enrollment

A new arrival's waitlist position was a count of the session's waitlist, made under the
session's lock: about 0.5 ms at 2,700 waiting, for every request of a rush. The count is
now a column of the session's row, kept by triggers (lms.enrollment.triggers) on every
insert, delete and change of status or session of an enrollment. Existing sessions are
counted here first. The CHECK (not below zero) is added on PostgreSQL; SQLite would have
to rebuild the table, which other tables reference.

Revision ID: e4b7d1c9a2f0
Revises: 7c4d2a91b8e6
Create Date: 2026-11-27 19:50:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'e4b7d1c9a2f0'
down_revision = '7c4d2a91b8e6'
branch_labels = None
depends_on = None


def upgrade():
    from lms.enrollment.triggers import RECOUNT, install_statements

    dialect = op.get_bind().dialect.name
    with op.batch_alter_table('training_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waitlisted_count', sa.Integer(), server_default='0', nullable=False))
    op.execute(RECOUNT)
    if dialect == 'postgresql':
        op.create_check_constraint(op.f('ck_training_session_waitlisted_nonnegative'), 'training_session',
                                   'waitlisted_count >= 0')
    for statement in install_statements(dialect):
        op.execute(statement)


def downgrade():
    from lms.enrollment.triggers import drop_statements

    dialect = op.get_bind().dialect.name
    for statement in drop_statements(dialect):
        op.execute(statement)
    if dialect == 'postgresql':
        op.drop_constraint(op.f('ck_training_session_waitlisted_nonnegative'), 'training_session', type_='check')
    with op.batch_alter_table('training_session', schema=None) as batch_op:
        batch_op.drop_column('waitlisted_count')
