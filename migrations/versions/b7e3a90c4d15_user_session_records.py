"""user_session: a server-side record of every signed-in browser

The session cookie is signed but kept by the browser: until now signing out only emptied
the browser's copy, and a copy taken earlier kept working until the idle or absolute
timeout. Each session now names a row here that every request must find; signing out
deletes it, signing out everywhere deletes all of the user's rows. Cookies issued before
this revision name no row: their users sign in again once.

Revision ID: b7e3a90c4d15
Revises: 07531ec77ecd
Create Date: 2026-12-03 10:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'b7e3a90c4d15'
down_revision = '07531ec77ecd'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'user_session',
        sa.Column('id', sa.String(length=64), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('method', sa.String(length=10), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_user_session_user_id_user_account'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_user_session')),
    )
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_user_session_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('user_session', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_user_session_user_id'))
    op.drop_table('user_session')
