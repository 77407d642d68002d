"""course.next_session_at, kept by triggers on training_session

The catalogue orders courses by their next session; that was one index probe per matching
course on every page. The start of each course's next scheduled session is now a column of
the course, kept by triggers on every insert and delete of a session and every change of a
session's start, status or course (see lms.courses.next_session for why the catalogue may
trust it). Existing courses get their value here, before the triggers.

Revision ID: 5d0c1e7a9b32
Revises: 73133500ebb0
Create Date: 2026-12-03 17:30:00

"""
import sqlalchemy as sa
from alembic import op

revision = '5d0c1e7a9b32'
down_revision = '73133500ebb0'
branch_labels = None
depends_on = None

# The triggers as they were written for this revision. The application keeps its own copy
# (lms.courses.next_session, for create_all); a later change to the triggers is a new revision.
INSTALL_POSTGRESQL = [
    """
CREATE OR REPLACE FUNCTION course_keep_next_session() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    target integer;
    soonest timestamptz;
BEGIN
    FOR target IN
        SELECT DISTINCT c FROM unnest(ARRAY[
            CASE WHEN TG_OP <> 'INSERT' THEN OLD.course_id END,
            CASE WHEN TG_OP <> 'DELETE' THEN NEW.course_id END]) AS c
        WHERE c IS NOT NULL ORDER BY c
    LOOP
        PERFORM 1 FROM course WHERE id = target FOR NO KEY UPDATE;
        SELECT min(starts_at) INTO soonest FROM training_session
            WHERE course_id = target AND status = 'scheduled' AND starts_at > now();
        UPDATE course SET next_session_at = soonest
            WHERE id = target AND next_session_at IS DISTINCT FROM soonest;
    END LOOP;
    RETURN NULL;
END
$$
""",
    'DROP TRIGGER IF EXISTS training_session_next_insert_delete ON training_session',
    """
CREATE TRIGGER training_session_next_insert_delete
    AFTER INSERT OR DELETE ON training_session
    FOR EACH ROW EXECUTE FUNCTION course_keep_next_session()
""",
    'DROP TRIGGER IF EXISTS training_session_next_update ON training_session',
    """
CREATE TRIGGER training_session_next_update
    AFTER UPDATE OF starts_at, status, course_id ON training_session
    FOR EACH ROW
    WHEN (OLD.starts_at IS DISTINCT FROM NEW.starts_at OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.course_id IS DISTINCT FROM NEW.course_id)
    EXECUTE FUNCTION course_keep_next_session()
""",
]

INSTALL_SQLITE = [
    """
CREATE TRIGGER IF NOT EXISTS training_session_next_insert AFTER INSERT ON training_session
BEGIN
    UPDATE course SET next_session_at = (SELECT min(starts_at) FROM training_session
        WHERE course_id = NEW.course_id AND status = 'scheduled' AND starts_at > strftime('%Y-%m-%d %H:%M:%f', 'now'))
    WHERE id = NEW.course_id;
END
""",
    """
CREATE TRIGGER IF NOT EXISTS training_session_next_delete AFTER DELETE ON training_session
BEGIN
    UPDATE course SET next_session_at = (SELECT min(starts_at) FROM training_session
        WHERE course_id = OLD.course_id AND status = 'scheduled' AND starts_at > strftime('%Y-%m-%d %H:%M:%f', 'now'))
    WHERE id = OLD.course_id;
END
""",
    """
CREATE TRIGGER IF NOT EXISTS training_session_next_update
AFTER UPDATE OF starts_at, status, course_id ON training_session
WHEN OLD.starts_at IS NOT NEW.starts_at OR OLD.status IS NOT NEW.status OR OLD.course_id IS NOT NEW.course_id
BEGIN
    UPDATE course SET next_session_at = (SELECT min(starts_at) FROM training_session
        WHERE course_id = OLD.course_id AND status = 'scheduled' AND starts_at > strftime('%Y-%m-%d %H:%M:%f', 'now'))
    WHERE id = OLD.course_id;
    UPDATE course SET next_session_at = (SELECT min(starts_at) FROM training_session
        WHERE course_id = NEW.course_id AND status = 'scheduled' AND starts_at > strftime('%Y-%m-%d %H:%M:%f', 'now'))
    WHERE id = NEW.course_id;
END
""",
]

DROP = {
    "postgresql": [
        "DROP TRIGGER IF EXISTS training_session_next_update ON training_session",
        "DROP TRIGGER IF EXISTS training_session_next_insert_delete ON training_session",
        "DROP FUNCTION IF EXISTS course_keep_next_session()",
    ],
    "sqlite": [
        "DROP TRIGGER IF EXISTS training_session_next_update",
        "DROP TRIGGER IF EXISTS training_session_next_delete",
        "DROP TRIGGER IF EXISTS training_session_next_insert",
    ],
}

FILL = {
    "postgresql": """
UPDATE course SET next_session_at = (
    SELECT min(starts_at) FROM training_session
    WHERE training_session.course_id = course.id AND training_session.status = 'scheduled'
      AND training_session.starts_at > now())
""",
    "sqlite": """
UPDATE course SET next_session_at = (
    SELECT min(starts_at) FROM training_session
    WHERE training_session.course_id = course.id AND training_session.status = 'scheduled'
      AND training_session.starts_at > strftime('%Y-%m-%d %H:%M:%f', 'now'))
""",
}

INSTALL = {"postgresql": INSTALL_POSTGRESQL, "sqlite": INSTALL_SQLITE}


def upgrade():
    dialect = op.get_bind().dialect.name
    with op.batch_alter_table('course', schema=None) as batch_op:
        batch_op.add_column(sa.Column('next_session_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_course_status_next_session', ['status', 'next_session_at', 'published_at', 'id'],
                              unique=False)
    op.execute(FILL[dialect])
    for statement in INSTALL[dialect]:
        op.execute(statement)


def downgrade():
    dialect = op.get_bind().dialect.name
    for statement in DROP[dialect]:
        op.execute(statement)
    with op.batch_alter_table('course', schema=None) as batch_op:
        batch_op.drop_index('ix_course_status_next_session')
        batch_op.drop_column('next_session_at')
