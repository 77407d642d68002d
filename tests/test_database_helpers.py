"""Write-transaction helpers."""

from __future__ import annotations

import pytest

from lms.common.after_commit import after_commit
from lms.common.database import begin_write, ensure_writer
from lms.municipalities.models import TenantMapping


def test_begin_write_refuses_to_drop_flushed_rows(db, municipality):
    db.session.add(TenantMapping(tenant_id="00000000-0000-0000-0000-000000000001", municipality=municipality()))
    db.session.flush()
    if db.engine.dialect.name == "sqlite":
        with pytest.raises(RuntimeError, match="before any change"):
            begin_write()
    else:
        begin_write()  # PostgreSQL: nothing to do, nothing dropped
    db.session.rollback()


def test_begin_write_after_a_read_only_transaction(db, municipality):
    municipality()  # a read opens the transaction
    begin_write()
    db.session.add(TenantMapping(tenant_id="00000000-0000-0000-0000-000000000002", municipality=municipality()))
    db.session.commit()
    assert db.session.query(TenantMapping).count() == 1


def _begun_as(db) -> str | None:
    return db.session.connection().get_execution_options().get("sqlite_begin")


def test_ensure_writer_restarts_a_reader_with_the_write_lock(db, municipality):
    if db.engine.dialect.name != "sqlite":
        ensure_writer()  # PostgreSQL: nothing to do
        return
    municipality()  # a read opens the transaction as a reader
    assert _begun_as(db) is None
    ensure_writer()
    assert _begun_as(db) == "IMMEDIATE"
    connection = db.session.connection()
    ensure_writer()  # a writer already: left as it is
    assert db.session.connection() is connection
    db.session.rollback()


def test_ensure_writer_leaves_a_transaction_that_wrote_or_awaits_its_end(db, municipality):
    ran = []
    db.session.add(TenantMapping(tenant_id="00000000-0000-0000-0000-000000000003", municipality=municipality()))
    db.session.flush()
    ensure_writer()  # (begin_write would refuse: the flushed row would be lost)
    db.session.commit()
    municipality()
    after_commit(lambda: ran.append(1))
    ensure_writer()  # ending the transaction would drop the callback
    db.session.commit()
    assert ran == [1]
    assert db.session.query(TenantMapping).count() == 1


# ---------------------------------------------------------------- pooled connections


def _pooled_backend(db) -> int:
    with db.engine.connect() as conn:
        return conn.connection.dbapi_connection.info.backend_pid


def _terminate(db, pid: int) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(db.engine.url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as other:
            other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    finally:
        admin.dispose()


def test_an_idle_pooled_connection_killed_by_the_server_is_replaced(app, db, monkeypatch):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL-only (pg_terminate_backend); runs in the PostgreSQL pass")
    import time

    from sqlalchemy import text

    db.session.remove()
    pid = _pooled_backend(db)
    _terminate(db, pid)  # as a database restart or an idle-connection reaper would
    monkeypatch.setattr(time, "monotonic", lambda real=time.monotonic: real() + 60)  # idle for a minute
    with db.engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar() == 1
        assert conn.connection.dbapi_connection.info.backend_pid != pid


def test_a_connection_used_a_moment_ago_is_not_pinged(app, db, monkeypatch):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL-only (SQLite is a file on this machine: nothing to ping)")
    from sqlalchemy import text

    pings = []
    real_ping = db.engine.dialect.do_ping
    monkeypatch.setattr(db.engine.dialect, "do_ping", lambda conn: pings.append(1) or real_ping(conn))
    db.session.remove()
    for _ in range(5):
        with db.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    assert pings == []  # each checkout follows the last checkin within the window


def test_a_connection_idle_past_the_window_is_pinged_first(app, db, monkeypatch):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL-only; runs in the PostgreSQL pass")
    import time

    from sqlalchemy import text

    db.session.remove()
    _pooled_backend(db)
    pings = []
    real_ping = db.engine.dialect.do_ping
    monkeypatch.setattr(db.engine.dialect, "do_ping", lambda conn: pings.append(1) or real_ping(conn))
    monkeypatch.setattr(time, "monotonic", lambda real=time.monotonic: real() + 2)
    with db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
    assert pings == [1]
