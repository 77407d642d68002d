"""Bulk roster feeds stored in parts of 1,000 entries (api_roster_job_part) instead of one
payload on the job: the worker holds one part at a time

Revision ID: c7dd03a2c368
Revises: a7c4e2d91f30
Create Date: 2026-12-04 06:03:33.767915

"""
import json

import sqlalchemy as sa
from alembic import op

revision = 'c7dd03a2c368'
down_revision = 'a7c4e2d91f30'
branch_labels = None
depends_on = None

PART = 1000  # lms.api.roster_jobs.PART when this was written
UNFINISHED = ("queued", "running")
job = sa.table("api_roster_job", sa.column("id", sa.Integer), sa.column("status", sa.String),
               sa.column("payload", sa.LargeBinary))
part = sa.table("api_roster_job_part", sa.column("job_id", sa.Integer), sa.column("part", sa.Integer),
                sa.column("payload", sa.LargeBinary))


def upgrade():
    connection = op.get_bind()
    # A job still waiting or running keeps its feed, cut into parts as the new code stores it.
    # (Read first: on SQLite the job table is rebuilt, which would cascade to rows already in
    # api_roster_job_part.)
    unfinished = [(job_id, json.loads(bytes(payload or b"").decode("utf-8") or "{}").get("entries", []))
                  for job_id, payload in connection.execute(
                      sa.select(job.c.id, job.c.payload).where(job.c.status.in_(UNFINISHED)))]
    with op.batch_alter_table('api_roster_job', schema=None) as batch_op:
        batch_op.drop_column('payload')
    op.create_table('api_roster_job_part',
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('part', sa.Integer(), nullable=False),
    sa.Column('payload', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['api_roster_job.id'], name=op.f('fk_api_roster_job_part_job_id_api_roster_job'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', 'part', name=op.f('pk_api_roster_job_part'))
    )
    for job_id, entries in unfinished:
        for number, first in enumerate(range(0, len(entries), PART)):
            connection.execute(part.insert().values(job_id=job_id, part=number, payload=json.dumps(
                entries[first:first + PART], ensure_ascii=False).encode("utf-8")))


def downgrade():
    connection = op.get_bind()
    feeds: dict[int, list] = {}
    for job_id, payload in connection.execute(
            sa.select(part.c.job_id, part.c.payload).join(job, job.c.id == part.c.job_id)
            .where(job.c.status.in_(UNFINISHED)).order_by(part.c.job_id, part.c.part)):
        feeds.setdefault(job_id, []).extend(json.loads(bytes(payload).decode("utf-8")))
    op.drop_table('api_roster_job_part')
    with op.batch_alter_table('api_roster_job', schema=None) as batch_op:
        batch_op.add_column(sa.Column('payload', sa.LargeBinary(), nullable=False, server_default=""))
    for job_id, entries in feeds.items():
        connection.execute(job.update().where(job.c.id == job_id).values(
            payload=json.dumps({"entries": entries}, ensure_ascii=False).encode("utf-8")))
