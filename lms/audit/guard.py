"""A database-level guard for the append-only audit log (PostgreSQL).

The ORM already refuses to update or delete AuditLog rows (lms.audit.services); these
triggers refuse it for anyone talking SQL directly, too. The initial migration creates
them on PostgreSQL (``op.execute(APPEND_ONLY_DDL)``); tests create them in a fixture.
Emptying the table with TRUNCATE stays possible for the database owner (test harness,
restores into an empty database): row triggers do not fire on TRUNCATE.
"""

APPEND_ONLY_DDL = """
CREATE OR REPLACE FUNCTION audit_log_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_refuse_change();
"""

DROP_APPEND_ONLY_DDL = """
DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log;
DROP FUNCTION IF EXISTS audit_log_refuse_change();
"""
