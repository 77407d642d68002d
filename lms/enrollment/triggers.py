"""``training_session.waitlisted_count``, kept by the database itself.

A new arrival's waitlist position is everyone waiting in the session now, plus one, and
it is read under the session's lock. Counting the waitlist there was a scan that grew with
it (about 0.5 ms at 2,700 waiting, with the lock held, for every request of a rush). The
count is now a column of the session's row, which the enrollment already locks and reads.

Triggers keep the count on every insert, delete, and change of status or session of an
enrollment, whoever writes it: the services, an import, a fixture, plain SQL. It is exact
by construction, and the CHECK ``waitlisted_count >= 0`` would catch a drift. The
services change a session's enrollments only while holding its row lock, so the
triggers' UPDATE of that row adds no lock and no deadlock. PostgreSQL's TRUNCATE fires
no row triggers; it is used only to empty whole databases (tests), sessions included.

The migration that adds the column installs the triggers; ``create_all`` installs them
too (the listener in ``lms.enrollment.models``).
"""

from __future__ import annotations

_POSTGRESQL = [
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

_SQLITE = [
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

_DROP = {
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

# Every session's count from its enrollments (the migration, before the triggers).
RECOUNT = """
UPDATE training_session SET waitlisted_count = (
    SELECT count(*) FROM enrollment
    WHERE enrollment.session_id = training_session.id AND enrollment.status = 'waitlisted'
)
"""


def install_statements(dialect: str) -> list[str]:
    return {"postgresql": _POSTGRESQL, "sqlite": _SQLITE}[dialect]


def drop_statements(dialect: str) -> list[str]:
    return _DROP[dialect]


def install(connection) -> None:
    """Create the triggers (idempotent) on ``connection`` (SQLAlchemy)."""
    for statement in install_statements(connection.dialect.name):
        connection.exec_driver_sql(statement)
