from __future__ import annotations

import pytest
from sqlalchemy import text

from lms.audit.guard import APPEND_ONLY_DDL, DROP_APPEND_ONLY_DDL


@pytest.fixture
def audit_trigger(db):
    """The PostgreSQL append-only trigger of the audit log (as the migration creates it)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("database triggers guard the audit log on PostgreSQL; SQLite relies on the ORM guard")
    with db.engine.begin() as conn:
        conn.execute(text(APPEND_ONLY_DDL))
    yield
    db.session.rollback()  # the test's open transaction would hold a lock DROP TRIGGER waits for
    with db.engine.begin() as conn:
        conn.execute(text(DROP_APPEND_ONLY_DDL))


@pytest.fixture
def make_app(app):
    """Another app instance on the same database (another worker); its engine is disposed after."""
    from lms import create_app
    from lms.extensions import db

    made = []

    def _make(config):
        other = create_app(config)
        made.append(other)
        return other

    yield _make
    for other in made:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()
