"""Viva Learning: the tenants' switch and provider registration (viva_tenant), and the mirror of
what was last sent to each tenant (viva_content, viva_activity)

Revision ID: d5053987de7c
Revises: 5eebe64cb214
Create Date: 2026-12-04 11:20:00.000000

"""
import sqlalchemy as sa
from alembic import op

revision = 'd5053987de7c'
down_revision = '5eebe64cb214'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('viva_tenant',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('registration_id', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=False),
    sa.Column('last_sync_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_reconciled_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_by_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['updated_by_id'], ['user_account.id'], name=op.f('fk_viva_tenant_updated_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_viva_tenant')),
    sa.UniqueConstraint('tenant_id', name=op.f('uq_viva_tenant_tenant_id'))
    )
    op.create_table('viva_activity',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('staff_member_id', sa.Integer(), nullable=False),
    sa.Column('course_id', sa.Integer(), nullable=False),
    sa.Column('fiscal_year', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('external_id', sa.String(length=36), nullable=False),
    sa.Column('activity_id', sa.String(length=200), nullable=False),
    sa.Column('sent_status', sa.String(length=12), nullable=False),
    sa.Column('sent_hash', sa.String(length=64), nullable=False),
    sa.Column('pending_by', sa.String(length=200), nullable=True),
    sa.Column('pending_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['course_id'], ['course.id'], name=op.f('fk_viva_activity_course_id_course')),
    sa.ForeignKeyConstraint(['staff_member_id'], ['staff_member.id'], name=op.f('fk_viva_activity_staff_member_id_staff_member')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_viva_activity')),
    sa.UniqueConstraint('tenant_id', 'external_id', name=op.f('uq_viva_activity_tenant_id_external_id')),
    sa.UniqueConstraint('tenant_id', 'staff_member_id', 'course_id', 'fiscal_year', name=op.f('uq_viva_activity_tenant_id_staff_member_id_course_id_fiscal_year'))
    )
    op.create_index('ix_viva_activity_course_year', 'viva_activity', ['course_id', 'fiscal_year'], unique=False)
    op.create_index(op.f('ix_viva_activity_staff_member_id'), 'viva_activity', ['staff_member_id'], unique=False)
    op.create_table('viva_content',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('tenant_id', sa.String(length=36), nullable=False),
    sa.Column('course_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=100), nullable=False),
    sa.Column('content_id', sa.String(length=200), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('sent_hash', sa.String(length=64), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['course_id'], ['course.id'], name=op.f('fk_viva_content_course_id_course')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_viva_content')),
    sa.UniqueConstraint('tenant_id', 'course_id', name=op.f('uq_viva_content_tenant_id_course_id'))
    )
    op.create_index(op.f('ix_viva_content_course_id'), 'viva_content', ['course_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_viva_content_course_id'), table_name='viva_content')
    op.drop_table('viva_content')
    op.drop_index(op.f('ix_viva_activity_staff_member_id'), table_name='viva_activity')
    op.drop_index('ix_viva_activity_course_year', table_name='viva_activity')
    op.drop_table('viva_activity')
    op.drop_table('viva_tenant')
