"""Write-transaction helpers."""

from __future__ import annotations

import pytest

from lms.common.database import begin_write
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


# ---------------------------------------------------------------- writes deferred to the commit

_MAPPINGS = TenantMapping.__table__
_INSERT_MAPPING = _MAPPINGS.insert().returning(_MAPPINGS.c.id, _MAPPINGS.c.mail_domain, _MAPPINGS.c.source)


def _tenant(n: int) -> str:
    return f"00000000-0000-0000-0000-{n:012d}"


def test_deferred_statements_run_at_the_commit_in_order(db, municipality):
    from lms.common.database import defer

    mid = municipality().id
    rows = []
    defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(11), "municipality_id": mid}, on_rows=rows.append)
    defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(12), "municipality_id": mid, "mail_domain": "b.lg.jp"},
          on_rows=rows.append)
    assert db.session.query(TenantMapping).count() == 0  # not yet
    db.session.commit()
    # RETURNING rows, in order; Python-side column defaults applied as SQLAlchemy applies them.
    assert [[tuple(r)[1:] for r in batch] for batch in rows] == [[("", "admin")], [("b.lg.jp", "admin")]]
    assert rows[0][0][0] < rows[1][0][0]
    stored = db.session.query(TenantMapping).order_by(TenantMapping.id).all()
    assert [(m.tenant_id, m.mail_domain, m.created_at is not None) for m in stored] == [
        (_tenant(11), "", True), (_tenant(12), "b.lg.jp", True)]


def test_a_rollback_drops_the_deferred_statements(db, municipality):
    from lms.common.database import defer

    mid = municipality().id
    defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(21), "municipality_id": mid})
    db.session.rollback()
    db.session.commit()
    assert db.session.query(TenantMapping).count() == 0


def test_a_failing_deferred_statement_fails_the_commit_and_writes_nothing(db, municipality):
    from sqlalchemy.exc import IntegrityError

    from lms.common.database import defer

    mid = municipality().id
    db.session.add(TenantMapping(tenant_id=_tenant(30), municipality_id=mid, mail_domain="x.lg.jp"))
    defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(31), "municipality_id": mid})
    # The same (tenant, domain) twice: the unique constraint refuses the second.
    defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(32), "municipality_id": mid})
    defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(32), "municipality_id": mid})
    with pytest.raises(IntegrityError):  # wrapped as SQLAlchemy wraps any statement's error
        db.session.commit()
    db.session.rollback()
    assert db.session.query(TenantMapping).count() == 0
    # The connection is usable afterwards.
    db.session.add(TenantMapping(tenant_id=_tenant(33), municipality_id=mid))
    db.session.commit()
    assert db.session.query(TenantMapping).count() == 1


def test_deferred_statements_take_one_round_trip_on_postgresql(db, municipality, monkeypatch):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("pipeline mode is PostgreSQL's; runs in the PostgreSQL pass")
    from lms.common.database import defer

    mid = municipality().id
    driver = db.session.connection().connection.driver_connection
    syncs = []
    real_pipeline = type(driver).pipeline
    monkeypatch.setattr(type(driver), "pipeline", lambda self: syncs.append(1) or real_pipeline(self))
    for n in range(5):
        defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(40 + n), "municipality_id": mid})
    db.session.commit()
    assert syncs == [1]
    assert db.session.query(TenantMapping).count() == 5


def test_a_savepoint_rolled_back_drops_only_what_was_deferred_inside_it(db, municipality):
    from lms.common.database import defer

    mid = municipality().id
    defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(51), "municipality_id": mid})
    savepoint = db.session.begin_nested()
    defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(52), "municipality_id": mid})
    savepoint.rollback()
    with db.session.begin_nested():  # released: what it deferred is written with it
        defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(53), "municipality_id": mid})
    defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(54), "municipality_id": mid})
    db.session.commit()
    assert sorted(m.tenant_id for m in db.session.query(TenantMapping)) == [_tenant(51), _tenant(53), _tenant(54)]


def test_commit_sends_the_deferred_writes_and_the_commit_together(db, municipality, monkeypatch):
    from sqlalchemy import event as sa_event

    from lms.common.database import commit, defer

    mid = municipality().id
    db.session.add(TenantMapping(tenant_id=_tenant(60), municipality_id=mid))  # an ORM change, flushed first
    defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(61), "municipality_id": mid})
    defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(62), "municipality_id": mid})
    committed = []
    sa_event.listen(db.session(), "after_commit", lambda session: committed.append(1))
    if db.engine.dialect.name == "postgresql":
        driver = db.session.connection().connection.driver_connection
        pipelines, commits = [], []
        real_pipeline, real_commit = type(driver).pipeline, type(driver).commit
        monkeypatch.setattr(type(driver), "pipeline", lambda self: pipelines.append(1) or real_pipeline(self))
        monkeypatch.setattr(type(driver), "commit",
                            lambda self: commits.append(self._pipeline is not None) or real_commit(self))
    commit(db.session())
    assert committed == [1] and not db.session().in_transaction()
    if db.engine.dialect.name == "postgresql":
        # One pipeline holding both INSERTs and the COMMIT; SQLAlchemy's own commit after it
        # found the transaction over.
        assert pipelines == [1] and commits[0] is True
    db.session.remove()
    assert sorted(m.tenant_id for m in db.session.query(TenantMapping)) == [_tenant(60), _tenant(61), _tenant(62)]


def test_commit_writes_nothing_when_a_deferred_statement_fails(db, municipality):
    from sqlalchemy.exc import IntegrityError

    from lms.common.database import commit, defer

    mid = municipality().id
    db.session.add(TenantMapping(tenant_id=_tenant(70), municipality_id=mid))
    defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(71), "municipality_id": mid})
    defer(db.session(), _INSERT_MAPPING, {"tenant_id": _tenant(71), "municipality_id": mid})  # refused: same key
    with pytest.raises(IntegrityError):
        commit(db.session())
    db.session.rollback()
    assert db.session.query(TenantMapping).count() == 0
    db.session.add(TenantMapping(tenant_id=_tenant(72), municipality_id=mid))
    commit(db.session())
    assert db.session.query(TenantMapping).count() == 1


def test_a_cursor_describes_each_result_once_and_rightly(db):
    """psycopg builds ``description`` anew on every read; the pool's cursors keep it per
    result, and a new result (another statement, the next set) is described afresh."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("psycopg's cursor")
    with db.engine.connect() as conn:
        cursor = conn.connection.dbapi_connection.cursor()
        cursor.execute("SELECT 1 AS a, 2 AS b")
        first = cursor.description
        assert [c.name for c in first] == ["a", "b"] and cursor.description is first
        cursor.execute("SELECT 3 AS c")
        assert [c.name for c in cursor.description] == ["c"]
        cursor.execute("SELECT 1 AS x; SELECT 2 AS y, 3 AS z")
        assert [c.name for c in cursor.description] == ["x"]
        cursor.nextset()
        assert [c.name for c in cursor.description] == ["y", "z"]
        cursor.execute("SET LOCAL statement_timeout = 0")
        assert cursor.description is None
        # SQLAlchemy's results read it as ever.
        assert conn.exec_driver_sql("SELECT 7 AS seven").mappings().one() == {"seven": 7}
