"""An anonymous survey's answers keep no order of arrival: on SQLite the table is rebuilt
WITHOUT ROWID, so its rows lie in the order of their random keys, not in the order the
answers (and so the submissions of named people) came in. (PostgreSQL keeps rows where there
is room; a nightly task rewrites the table in key order there: lms.activities.tasks.)

Revision ID: c8e2f4a6b1d3
Revises: b6d1e8a3c5f2
Create Date: 2026-12-07 13:40:00

"""
from alembic import op

revision = 'c8e2f4a6b1d3'
down_revision = 'b6d1e8a3c5f2'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("activity_anonymous_answer", recreate="always",
                              table_kwargs={"sqlite_with_rowid": False}):
        pass


def downgrade():
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table("activity_anonymous_answer", recreate="always",
                              table_kwargs={"sqlite_with_rowid": True}):  # (else read back as it is)
        pass
