"""Teams activity notices: each person's choice of Teams, mail or both (user_account.notice_channel),
what the outbox did with a row in Teams (outbox_mail.teams_*; user_id for a training office's
approval request) and whether the app is installed for a person (teams_app_installation)

Revision ID: 5eebe64cb214
Revises: c7dd03a2c368
Create Date: 2026-12-04 09:45:39.318019

"""
import sqlalchemy as sa
from alembic import op

revision = '5eebe64cb214'
down_revision = 'c7dd03a2c368'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('teams_app_installation',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('installation_id', sa.String(length=200), nullable=False),
    sa.Column('teams_app_id', sa.String(length=200), nullable=False),
    sa.Column('last_error', sa.String(length=300), nullable=False),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_teams_app_installation_user_id_user_account'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_teams_app_installation')),
    sa.UniqueConstraint('user_id', name=op.f('uq_teams_app_installation_user_id'))
    )
    with op.batch_alter_table('outbox_mail', schema=None) as batch_op:
        batch_op.add_column(sa.Column('user_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('teams_state', sa.String(length=12), server_default='', nullable=False))
        batch_op.add_column(sa.Column('teams_error', sa.String(length=300), server_default='', nullable=False))
        batch_op.add_column(sa.Column('teams_sent_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_outbox_mail_user_id_user_account'), 'user_account', ['user_id'], ['id'], ondelete='SET NULL')

    # A plain ADD COLUMN (no table rebuild: on SQLite a rebuilt user_account would cascade to
    # its sessions and roles).
    op.add_column('user_account', sa.Column('notice_channel', sa.String(length=5), server_default='both',
                                            nullable=False))


def downgrade():
    op.drop_column('user_account', 'notice_channel')

    with op.batch_alter_table('outbox_mail', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_outbox_mail_user_id_user_account'), type_='foreignkey')
        batch_op.drop_column('teams_sent_at')
        batch_op.drop_column('teams_error')
        batch_op.drop_column('teams_state')
        batch_op.drop_column('user_id')

    op.drop_table('teams_app_installation')
