"""training_session.waitlisted_count, kept by triggers on enrollment

A new arrival's waitlist position was a count of the session's waitlist, made under the
session's lock: about 0.5 ms at 2,700 waiting, for every request of a rush. The count is
now a column of the session's row, kept by triggers (below) on every
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

# The triggers as they were written for this revision. The application keeps its own copy
# (lms.enrollment.triggers, for create_all); a later change to the triggers is a new revision.
INSTALL_POSTGRESQL = [
    """
CREATE OR REPLACE FUNCTION enrollment_count_waitlisted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.status = 'waitlisted' THEN
        UPDATE training_session SET waitlisted_count = waitlisted_count - 1 WHERE id = OLD.session_id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.status = 'waitlisted' THEN
        UPDATE training_session SET waitlisted_count = waitlisted_count + 1 WHERE id = NEW.session_id;
    END IF;
    RETURN NULL;
END
$$
""",
    "DROP TRIGGER IF EXISTS enrollment_waitlisted_insert_delete ON enrollment",
    """
CREATE TRIGGER enrollment_waitlisted_insert_delete
    AFTER INSERT OR DELETE ON enrollment
    FOR EACH ROW EXECUTE FUNCTION enrollment_count_waitlisted()
""",
    "DROP TRIGGER IF EXISTS enrollment_waitlisted_update ON enrollment",
    """
CREATE TRIGGER enrollment_waitlisted_update
    AFTER UPDATE OF status, session_id ON enrollment
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.session_id IS DISTINCT FROM NEW.session_id)
    EXECUTE FUNCTION enrollment_count_waitlisted()
""",
]

INSTALL_SQLITE = [
    """
CREATE TRIGGER IF NOT EXISTS enrollment_waitlisted_insert AFTER INSERT ON enrollment
WHEN NEW.status = 'waitlisted'
BEGIN
    UPDATE training_session SET waitlisted_count = waitlisted_count + 1 WHERE id = NEW.session_id;
END
""",
    """
CREATE TRIGGER IF NOT EXISTS enrollment_waitlisted_delete AFTER DELETE ON enrollment
WHEN OLD.status = 'waitlisted'
BEGIN
    UPDATE training_session SET waitlisted_count = waitlisted_count - 1 WHERE id = OLD.session_id;
END
""",
    """
CREATE TRIGGER IF NOT EXISTS enrollment_waitlisted_update AFTER UPDATE OF status, session_id ON enrollment
WHEN OLD.status IS NOT NEW.status OR OLD.session_id IS NOT NEW.session_id
BEGIN
    UPDATE training_session SET waitlisted_count = waitlisted_count - 1
        WHERE id = OLD.session_id AND OLD.status = 'waitlisted';
    UPDATE training_session SET waitlisted_count = waitlisted_count + 1
        WHERE id = NEW.session_id AND NEW.status = 'waitlisted';
END
""",
]

DROP = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS enrollment_waitlisted_update ON enrollment",
        "DROP TRIGGER IF EXISTS enrollment_waitlisted_insert_delete ON enrollment",
        "DROP FUNCTION IF EXISTS enrollment_count_waitlisted()",
    ],
    "sqlite": [
        "DROP TRIGGER IF EXISTS enrollment_waitlisted_update",
        "DROP TRIGGER IF EXISTS enrollment_waitlisted_delete",
        "DROP TRIGGER IF EXISTS enrollment_waitlisted_insert",
    ],
}

# Every session's count from its enrollments (before the triggers).
RECOUNT = """
UPDATE training_session SET waitlisted_count = (
    SELECT count(*) FROM enrollment
    WHERE enrollment.session_id = training_session.id AND enrollment.status = 'waitlisted'
)
"""

INSTALL = {"postgresql": INSTALL_POSTGRESQL, "sqlite": INSTALL_SQLITE}


def upgrade():
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table('training_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('waitlisted_count', sa.Integer(), server_default='0', nullable=False))
    op.execute(RECOUNT)
    if dialect == 'postgresql':
        op.create_check_constraint(op.f('ck_training_session_waitlisted_nonnegative'), 'training_session',
                                   'waitlisted_count >= 0')
    for statement in INSTALL[dialect]:
        op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    for statement in DROP[dialect]:
        op.execute(statement)
    if dialect == 'postgresql':
        op.drop_constraint(op.f('ck_training_session_waitlisted_nonnegative'), 'training_session', type_='check')
    with op.batch_alter_table('training_session', schema=None) as batch_op:
        batch_op.drop_column('waitlisted_count')
