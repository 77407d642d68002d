"""Behind PgBouncer in transaction mode (scripts/test.sh runs these, with the enrollment,
summary and job tests, through a real PgBouncer): each transaction may get another server
connection, so nothing may live on a server connection across transactions."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import POOLER_URL

pytestmark = pytest.mark.skipif(not POOLER_URL, reason="the PgBouncer run of scripts/test.sh (TEST_PGBOUNCER_URL)")


def test_the_app_reaches_postgresql_through_pgbouncer_without_prepared_statements(app, db):
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    assert url.port == make_url(POOLER_URL).port
    assert db.session.execute(text("SELECT inet_server_port()")).scalar() != url.port  # the server behind it
    db.session.rollback()
    raw = db.engine.raw_connection()
    try:
        assert raw.driver_connection.prepare_threshold is None
    finally:
        raw.close()


def test_repeated_statements_from_many_connections_never_meet_a_missing_prepared_statement(app, db):
    """Without prepare_threshold=None psycopg prepares a statement on its 6th run; the next
    transaction on another server connection then fails ("prepared statement … does not exist")."""
    errors: list[BaseException] = []
    engine = create_engine(app.config["SQLALCHEMY_DATABASE_URI"],
                           **app.config.get("SQLALCHEMY_ENGINE_OPTIONS", {}))

    def work(n: int) -> None:
        try:
            for i in range(40):
                with engine.begin() as conn:
                    conn.execute(text("SELECT count(*) FROM municipality WHERE id > :n"), {"n": n + i}).scalar()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    engine.dispose()
    assert errors == []
