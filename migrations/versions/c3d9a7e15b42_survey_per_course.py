"""予定調査 per course: training_plan.survey_unit, plan_demand.course_id, plan_allocation.course_seats

A plan's survey asks each municipality for a number per course (the allocation divides its
seats among the course's sessions) or, where the plan says so, per session as before.
Plans made before this revision were surveyed per session and stay so.

Revision ID: c3d9a7e15b42
Revises: 4b8f2e6a1c07
Create Date: 2026-12-03 23:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = 'c3d9a7e15b42'
down_revision = '4b8f2e6a1c07'
branch_labels = None
depends_on = None


def upgrade():
    # Plain ALTER TABLE: the plans made so far were surveyed per session (the server default
    # fills them; the application always names the unit of a new plan).
    op.add_column('training_plan', sa.Column('survey_unit', sa.String(length=10), server_default='session',
                                             nullable=False))
    op.add_column('plan_allocation', sa.Column('course_seats', sa.Integer(), nullable=True))
    with op.batch_alter_table('plan_demand', schema=None) as batch_op:
        batch_op.add_column(sa.Column('course_id', sa.Integer(), nullable=True))
        batch_op.alter_column('session_id', existing_type=sa.Integer(), nullable=True)
        batch_op.create_foreign_key(batch_op.f('fk_plan_demand_course_id_course'), 'course', ['course_id'], ['id'],
                                    ondelete='CASCADE')
        batch_op.create_unique_constraint(batch_op.f('uq_plan_demand_plan_id_course_id_municipality_id'),
                                          ['plan_id', 'course_id', 'municipality_id'])
        batch_op.create_check_constraint(batch_op.f('ck_plan_demand_one_item'),
                                         sa.text('(session_id IS NULL) <> (course_id IS NULL)'))


def downgrade():
    op.execute('DELETE FROM plan_demand WHERE session_id IS NULL')
    with op.batch_alter_table('plan_demand', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('ck_plan_demand_one_item'), type_='check')
        batch_op.drop_constraint(batch_op.f('uq_plan_demand_plan_id_course_id_municipality_id'), type_='unique')
        batch_op.drop_constraint(batch_op.f('fk_plan_demand_course_id_course'), type_='foreignkey')
        batch_op.alter_column('session_id', existing_type=sa.Integer(), nullable=False)
        batch_op.drop_column('course_id')
    op.drop_column('plan_allocation', 'course_seats')
    op.drop_column('training_plan', 'survey_unit')
