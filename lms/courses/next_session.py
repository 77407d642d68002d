"""``course.next_session_at``: when the course's next scheduled session starts, kept by the
database itself.

The catalogue lists courses by their next session (the soonest first). Working that out
per request meant one index probe per matching course (2,000 probes for the unfiltered
first page of a 2,000-course catalogue, about three quarters of the page's database time).
The value is now a column of the course, read with the course's row.

Triggers keep it on every insert and delete of a session and every change of a session's
start, status or course, whoever writes it: the services, an import, a fixture, plain SQL.
They compute "the earliest scheduled session starting after now", so a stored value goes
out of date in one way only, by time passing: the session it names starts. The catalogue
therefore trusts the column only while it lies in the future, and falls back to the
per-course probe for the rare course whose next session has just started (NULL — no
session to come — stays right until a write, which the triggers see). The worker moves such
values on every five minutes (``refresh_started``), so the fallback stays rare.

On PostgreSQL the trigger locks the course row (FOR NO KEY UPDATE, the lock its UPDATE would
take anyway: a plain FOR UPDATE would deadlock with the KEY SHARE lock that the new session's
foreign key takes in the other transaction) before it reads the sessions: the statement that
follows takes a fresh snapshot (READ COMMITTED), so two transactions adding sessions to one
course both end with the right value. Session writes already lock the session row
first; the course row comes second, as it does when a whole course is cancelled.

Enrollment changes a session's counters, not the columns named above, so the enrollment
hot path fires none of these triggers.

The migration that adds the column installs the triggers with its own copy of the SQL;
``create_all`` installs them from here (the listener in ``lms.courses.models``).
"""

from __future__ import annotations

from sqlalchemy import bindparam, text

from lms.common.types import UTCDateTime

_POSTGRESQL = [
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
    "DROP TRIGGER IF EXISTS training_session_next_insert_delete ON training_session",
    """
CREATE TRIGGER training_session_next_insert_delete
    AFTER INSERT OR DELETE ON training_session
    FOR EACH ROW EXECUTE FUNCTION course_keep_next_session()
""",
    "DROP TRIGGER IF EXISTS training_session_next_update ON training_session",
    """
CREATE TRIGGER training_session_next_update
    AFTER UPDATE OF starts_at, status, course_id ON training_session
    FOR EACH ROW
    WHEN (OLD.starts_at IS DISTINCT FROM NEW.starts_at OR OLD.status IS DISTINCT FROM NEW.status
          OR OLD.course_id IS DISTINCT FROM NEW.course_id)
    EXECUTE FUNCTION course_keep_next_session()
""",
]

# SQLite keeps UTC datetimes as 'YYYY-MM-DD HH:MM:SS.ffffff' (lms.common.types.UTCDateTime),
# which compares as text with strftime's 'YYYY-MM-DD HH:MM:SS.fff'.
_SQLITE = [
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

# Every course's value from its sessions (the migration, and the worker for the values that
# time has overtaken). ``:now`` is the caller's clock.
_REFRESH = """
UPDATE course SET next_session_at = (
    SELECT min(starts_at) FROM training_session
    WHERE training_session.course_id = course.id AND training_session.status = 'scheduled'
      AND training_session.starts_at > :now
)
"""


def install(connection) -> None:
    """Create the triggers (idempotent) on ``connection`` (SQLAlchemy)."""
    statements = {"postgresql": _POSTGRESQL, "sqlite": _SQLITE}[connection.dialect.name]
    for statement in statements:
        connection.exec_driver_sql(statement)


def refresh_started(connection, now) -> int:
    """Move on every stored value whose session has started (``now``: an aware UTC
    datetime). Returns how many courses changed."""
    statement = text(_REFRESH + " WHERE next_session_at IS NOT NULL AND next_session_at <= :now").bindparams(
        bindparam("now", type_=UTCDateTime()))
    result = connection.execute(statement, {"now": now})
    return int(result.rowcount or 0)
