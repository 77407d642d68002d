"""所属長の承認: roster entries marked head (所属長) or deputy (代理) of their 所属, courses whose
requests go through the 所属長 (course.supervisor_approval), the step a pending request waits
for (enrollment.approval_step) and each step's answer (enrollment_approval)

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


def downgrade():
    op.drop_index(op.f('ix_enrollment_approval_enrollment_id'), table_name='enrollment_approval')
    op.drop_table('enrollment_approval')
    op.drop_column('enrollment', 'approval_step')
    op.drop_column('course', 'supervisor_approval')
    op.drop_column('staff_member', 'deputy_head')
    op.drop_column('staff_member', 'department_head')
