"""Bulk roster feeds of the integration API: jobs and their per-entry results

Revision ID: dfa8e7eb04aa
Revises: c93e2ad065bb
Create Date: 2026-12-04 02:59:24.515779

"""
import sqlalchemy as sa
from alembic import op

revision = 'dfa8e7eb04aa'
down_revision = 'c93e2ad065bb'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('api_roster_job',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('municipality_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('total', sa.Integer(), nullable=False),
    sa.Column('processed', sa.Integer(), nullable=False),
    sa.Column('counts', sa.Text(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.Column('effective_on', sa.Date(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['client_id'], ['api_client.id'], name=op.f('fk_api_roster_job_client_id_api_client')),
    sa.ForeignKeyConstraint(['municipality_id'], ['municipality.id'], name=op.f('fk_api_roster_job_municipality_id_municipality')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_roster_job'))
    )
    with op.batch_alter_table('api_roster_job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_roster_job_client_id'), ['client_id'], unique=False)

    op.create_table('api_roster_job_row',
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('row', sa.Integer(), nullable=False),
    sa.Column('employee_number', sa.String(length=40), nullable=False),
    sa.Column('outcome', sa.String(length=20), nullable=False),
    sa.Column('message', sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['api_roster_job.id'], name=op.f('fk_api_roster_job_row_job_id_api_roster_job'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'row', name=op.f('pk_api_roster_job_row'))
    )


def downgrade():
    op.drop_table('api_roster_job_row')
    with op.batch_alter_table('api_roster_job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_roster_job_client_id'))

    op.drop_table('api_roster_job')
