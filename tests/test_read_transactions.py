"""How a request's transaction ends on PostgreSQL (lms.common.database.end_reads_with_commit).

A transaction that only read ends with COMMIT, so that psycopg keeps the statements it has
prepared on the server (it forgets them at every ROLLBACK); anything that wrote, or might
have, ends with ROLLBACK as before and leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import threading

import pytest
from sqlalchemy import event, func, select, table, text, update

from lms.common.after_commit import after_commit
from lms.common.public import public
from lms.municipalities.models import Municipality, TenantMapping

CODE = "131016"


@pytest.fixture
def ends(app, db):
    """The ways the requests' transactions ended, in order ("commit" / "rollback"). (The test
    client runs each request in a thread of its own; the test's own session is left out.)"""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL-only (psycopg's prepared statements); runs in the PostgreSQL pass")
    seen: list[str] = []

    def note(way):
        def listener(_conn):
            if threading.current_thread() is not threading.main_thread():
                seen.append(way)
        return listener

    event.listen(db.engine, "commit", note("commit"))
    event.listen(db.engine, "rollback", note("rollback"))
    return seen


def _route(app, rule: str, view) -> None:
    app.add_url_rule(rule, rule.strip("/").replace("/", "_"), public(view))


def _rolled_back_leaving_the_name(app, db, client, ends, rule: str, view) -> None:
    """GET ``rule`` (served by ``view``): its transaction was rolled back and the
    municipality's name is what it was."""
    _route(app, rule, view)
    before = _name(db)
    ends.clear()
    assert client.get(rule).status_code == 200
    assert ends == ["rollback"]
    assert _name(db) == before


def _name(db) -> str:
    db.session.rollback()
    return db.session.scalar(select(Municipality.name).where(Municipality.code == CODE))


def test_a_page_that_only_read_ends_with_commit_and_its_statements_stay_prepared(app, db, client, ends):
    def read():
        db.session.scalar(select(Municipality.name).where(Municipality.code == CODE))
        # (this connection's statements prepared on the server, as the page's own SELECT)
        return str(db.session.scalar(select(func.count()).select_from(table("pg_prepared_statements"))))

    _route(app, "/t/read", read)
    counts = []
    for _ in range(40):  # (the pool hands its connections out in turn: each runs it 5+ times)
        ends.clear()
        response = client.get("/t/read")
        assert response.status_code == 200
        assert ends == ["commit"]
        counts.append(int(response.get_data(as_text=True)))
    # psycopg prepares a statement on its 6th run on a connection; before, every request's
    # rollback made it forget the count and nothing was ever prepared.
    assert max(counts) > 0


def test_a_flushed_change_left_uncommitted_is_rolled_back(app, db, client, ends):
    def flush_only():
        m = db.session.scalar(select(Municipality).where(Municipality.code == CODE))
        m.name = "書き換え"
        db.session.flush()
        return "ok"

    _rolled_back_leaving_the_name(app, db, client, ends, "/t/flush", flush_only)


def test_a_pending_change_is_neither_flushed_nor_committed(app, db, client, ends):
    def pending():
        m = db.session.scalar(select(Municipality).where(Municipality.code == CODE))
        m.name = "書き換え"  # (not flushed)
        return "ok"

    _rolled_back_leaving_the_name(app, db, client, ends, "/t/pending", pending)


@pytest.mark.parametrize("how", ["core", "text", "driver"])
def test_a_statement_that_is_not_a_select_counts_as_a_write(app, db, client, ends, how):
    def write():
        if how == "core":
            db.session.execute(update(Municipality).where(Municipality.code == CODE).values(name="書き換え"))
        elif how == "text":
            db.session.execute(text("UPDATE municipality SET name = '書き換え' WHERE code = :c"), {"c": CODE})
        else:
            db.session.connection().exec_driver_sql(
                "UPDATE municipality SET name = '書き換え' WHERE code = %(c)s", {"c": CODE})
        return "ok"

    _rolled_back_leaving_the_name(app, db, client, ends, "/t/write", write)


def test_work_waiting_on_the_commit_is_dropped_not_run(app, db, client, ends):
    ran = []

    def waiting():
        db.session.scalar(select(Municipality.name).where(Municipality.code == CODE))
        after_commit(lambda: ran.append("ran"))
        return "ok"

    _route(app, "/t/waiting", waiting)
    ends.clear()
    assert client.get("/t/waiting").status_code == 200
    assert ends == ["rollback"]
    assert ran == []


def test_a_request_that_failed_is_rolled_back(app, db, client, ends):
    app.config["PROPAGATE_EXCEPTIONS"] = False

    def fails():
        db.session.scalar(select(Municipality.name).where(Municipality.code == CODE))
        raise RuntimeError("boom")

    _route(app, "/t/fails", fails)
    ends.clear()
    assert client.get("/t/fails").status_code == 500
    assert ends == ["rollback"]


def test_a_write_committed_by_the_route_then_a_read(app, db, client, ends):
    def commit_then_read():
        db.session.add(TenantMapping(tenant_id="00000000-0000-0000-0000-0000000000aa", mail_domain="",
                                     municipality=db.session.scalar(select(Municipality).where(Municipality.code == CODE)),
                                     source="admin"))
        db.session.commit()
        return str(db.session.scalar(select(func.count()).select_from(TenantMapping)))

    _route(app, "/t/commit", commit_then_read)
    ends.clear()
    assert client.get("/t/commit").status_code == 200
    assert ends == ["commit", "commit"]  # the route's, then the read's
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(TenantMapping)) == 1


def test_a_streamed_response_still_reads_what_the_request_loaded(app, db, client, ends):
    from flask import Response

    def streamed():
        m = db.session.scalar(select(Municipality).where(Municipality.code == CODE))

        def body():  # runs after the app context's teardown (no stream_with_context)
            yield m.name
            yield m.kana

        return Response(body())

    _route(app, "/t/stream", streamed)
    ends.clear()
    response = client.get("/t/stream")
    assert response.status_code == 200
    assert ends == ["commit"]
    assert response.get_data(as_text=True) == _name(db) + db.session.scalar(
        select(Municipality.kana).where(Municipality.code == CODE))


@pytest.mark.parametrize("how", ["cte", "set_config"])
def test_a_select_that_writes_or_changes_the_connection_counts_as_a_write(app, db, client, ends, how):
    from sqlalchemy import insert, literal

    def sneaky():
        if how == "cte":
            added = (insert(TenantMapping).values(
                tenant_id="00000000-0000-0000-0000-0000000000bb", mail_domain="", source="admin",
                municipality_id=select(Municipality.id).where(Municipality.code == CODE).scalar_subquery())
                .returning(TenantMapping.id).cte("added"))
            db.session.execute(select(added.c.id))
        else:
            db.session.execute(select(func.set_config("lms.test_setting", "left", literal(False))))
        return "ok"

    _route(app, "/t/sneaky", sneaky)
    ends.clear()
    assert client.get("/t/sneaky").status_code == 200
    assert ends == ["rollback"]
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(TenantMapping)) == 0
    with db.engine.connect() as conn:  # (the pool's connections: none kept the setting)
        assert conn.scalar(select(func.current_setting("lms.test_setting", True))) in (None, "")


def test_a_transaction_left_failed_by_the_route_is_still_ended_and_its_connection_returned(app, db, client, ends):
    from sqlalchemy.exc import IntegrityError

    def swallowed():
        m = db.session.scalar(select(Municipality).where(Municipality.code == CODE))
        for _ in range(2):
            db.session.add(TenantMapping(tenant_id="00000000-0000-0000-0000-0000000000cc", mail_domain="",
                                         municipality=m, source="admin"))
        with contextlib.suppress(IntegrityError):  # (a route that forgets to roll back)
            db.session.flush()
        return "ok"

    _route(app, "/t/swallowed", swallowed)
    db.session.commit()
    checked_out = db.engine.pool.checkedout()
    assert client.get("/t/swallowed").status_code == 200
    assert db.engine.pool.checkedout() == checked_out
    db.session.rollback()
    assert db.session.scalar(select(func.count()).select_from(TenantMapping)) == 0
