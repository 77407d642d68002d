"""所属長の承認: roster entries marked head (所属長) or deputy (代理) of their 所属, courses whose
requests go through the 所属長 (course.supervisor_approval), the step a pending request waits
for (enrollment.approval_step), each step's answer (enrollment_approval) and who stands in for a
head while they are away (approval_delegation)

Revision ID: 9b3e1f6a2c47
Revises: d5053987de7c
Create Date: 2026-12-04 10:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

revision = '9b3e1f6a2c47'
down_revision = 'd5053987de7c'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMNs (no table rebuild: on SQLite a rebuilt staff_member, course or
    # enrollment table would cascade to the rows that reference it).
    op.add_column('staff_member', sa.Column('department_head', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('staff_member', sa.Column('deputy_head', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('course', sa.Column('supervisor_approval', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.add_column('enrollment', sa.Column('approval_step', sa.String(length=12), nullable=True))
    op.create_table(
        'enrollment_approval',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('enrollment_id', sa.Integer(), nullable=False),
        sa.Column('step', sa.String(length=12), nullable=False),
        sa.Column('decision', sa.String(length=12), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('comment', sa.Text(), nullable=False),
        sa.Column('decided_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['user_account.id'],
                                name=op.f('fk_enrollment_approval_actor_id_user_account'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['enrollment_id'], ['enrollment.id'],
                                name=op.f('fk_enrollment_approval_enrollment_id_enrollment'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_enrollment_approval')),
    )
    op.create_index(op.f('ix_enrollment_approval_enrollment_id'), 'enrollment_approval', ['enrollment_id'], unique=False)
    op.create_table(
        'approval_delegation',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('delegator_id', sa.Integer(), nullable=False),
        sa.Column('delegate_id', sa.Integer(), nullable=False),
        sa.Column('starts_on', sa.Date(), nullable=False),
        sa.Column('ends_on', sa.Date(), nullable=False),
        sa.Column('created_by_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['user_account.id'],
                                name=op.f('fk_approval_delegation_created_by_id_user_account'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['delegate_id'], ['staff_member.id'],
                                name=op.f('fk_approval_delegation_delegate_id_staff_member'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['delegator_id'], ['staff_member.id'],
                                name=op.f('fk_approval_delegation_delegator_id_staff_member'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_delegation')),
    )
    op.create_index('ix_approval_delegation_delegate', 'approval_delegation', ['delegate_id', 'ends_on'], unique=False)
    op.create_index(op.f('ix_approval_delegation_delegator_id'), 'approval_delegation', ['delegator_id'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_approval_delegation_delegator_id'), table_name='approval_delegation')
    op.drop_index('ix_approval_delegation_delegate', table_name='approval_delegation')
    op.drop_table('approval_delegation')
    op.drop_index(op.f('ix_enrollment_approval_enrollment_id'), table_name='enrollment_approval')
    op.drop_table('enrollment_approval')
    op.drop_column('enrollment', 'approval_step')
    op.drop_column('course', 'supervisor_approval')
    op.drop_column('staff_member', 'deputy_head')
    op.drop_column('staff_member', 'department_head')
