"""Database set-up that differs between SQLite and PostgreSQL, and write-transaction helpers."""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from functools import lru_cache

from flask import Flask, g, has_request_context, request
from sqlalchemy import Boolean, CompoundSelect, FunctionElement, Select, event, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session

from lms.common.after_commit import has_pending
from lms.extensions import db


def configure_engine(engine: Engine, ping_after_idle: float = 1.0) -> None:
    if engine.dialect.name != "sqlite":
        _ping_when_idle(engine, ping_after_idle)
        return

    @event.listens_for(engine, "connect")
    def _sqlite_connect(dbapi_conn, _record):
        # We emit BEGIN ourselves (below) so that writers can take the lock up front.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=15000")
        if not _is_memory(engine):
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _sqlite_begin(conn):
        mode = conn.get_execution_options().get("sqlite_begin") or ("IMMEDIATE" if _request_may_write() else "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def end_reads_with_commit(app: Flask, engine: Engine) -> None:
    """On PostgreSQL, end a request's (or a task's) transaction that only read with COMMIT
    instead of the ROLLBACK that Flask-SQLAlchemy's session removal would send.

    Why: psycopg prepares a statement on the server once a connection has run it five times,
    and keeps it for the connection's life, but it forgets every prepared statement, and the
    counts toward preparing, at each ROLLBACK (a rolled-back transaction may have undone what
    they depend on). Every read-only page ended with a rollback, so the statements every page
    runs (the signed-in user, the catalogue's page) were parsed and planned by the server on
    every request and never prepared: about 1 ms of the database's CPU per catalogue page
    (bench/catalogue.py). For a transaction that only read, COMMIT and ROLLBACK leave the
    database the same (a row lock taken by ``SELECT … FOR UPDATE`` ends either way).

    "Only read" is decided conservatively; otherwise the session is removed as before (rolled
    back): the app context ended without an exception; no savepoint is open; the session has
    no change pending (a flushed one sent DML, below); no work waits on its commit or rollback (``after_commit``,
    ``on_rollback``); and every statement the transaction sent was a SELECT construct whose
    SQL names no data-changing command or session-changing function (``_reads_only``: an
    INSERT, UPDATE or DELETE — a CTE's too —, ``FOR UPDATE``, DDL, ``text()`` or SQL sent
    through SQLAlchemy's connection as a string counts as a write). A SELECT must not call a
    database function of Manabi's own that changes data (none does), and SQL sent on the
    driver's own connection (COPY in ``lms synth``) bypasses this check: commit it. Behind a
    transaction pooler (``LMS_DB_TRANSACTION_POOLER``) psycopg prepares nothing, and this is
    not installed. Must be registered after ``db.init_app``: Flask runs teardown functions in
    the reverse order of registration, so this one runs before the session is removed."""
    if engine.dialect.name != "postgresql" or app.config.get("LMS_DB_TRANSACTION_POOLER"):
        return

    @event.listens_for(engine, "begin")
    def _begun(conn) -> None:
        conn.info[_ONLY_READ] = True

    @event.listens_for(engine, "before_cursor_execute")
    def _statement(conn, _cursor, statement, _parameters, context, _executemany) -> None:
        if not (isinstance(context.invoked_statement, Select | CompoundSelect) and _reads_only(statement)):
            conn.info[_ONLY_READ] = False

    @app.teardown_appcontext
    def _commit_if_only_read(exc: BaseException | None) -> None:
        if exc is not None or not db.session.registry.has():
            return
        session = db.session()
        try:
            if (not session.in_transaction() or session.get_nested_transaction() is not None
                    or session.new or session.dirty or session.deleted or has_pending(session)
                    or not session.connection().info.get(_ONLY_READ)):  # (a flush sent DML: not only read)
                return  # (the session's removal rolls back)
            # The session is removed next. What it loaded stays readable, as after the
            # rollback this replaces: a response still streaming (a workbook) reads them.
            session.expire_on_commit = False
            session.commit()
        except Exception:
            # (a transaction that failed and was left so: the removal must still happen)
            session.rollback()


# A command or function that changes data or the connection's state, in SQL that SQLAlchemy
# compiled from a SELECT construct (its keywords in capitals, names in lower case).
_WRITES = re.compile(r"\b(?:INSERT|UPDATE|DELETE|MERGE|COPY|NOTIFY)\b"
                     r"|\b(?:set_config|pg_notify|nextval|setval|lo_\w+|dblink\w*)\s*\(")


@lru_cache(maxsize=2048)
def _reads_only(statement: str) -> bool:
    """Whether the SQL of a SELECT construct only reads (kept per statement text: the same
    few hundred statements run again and again)."""
    return _WRITES.search(statement) is None


_ONLY_READ = "lms_transaction_only_read"


def _ping_when_idle(engine: Engine, after: float) -> None:
    """Test a pooled connection before use when it has been idle for more than ``after``
    seconds (a dead one is replaced, and the request goes on with a fresh connection).

    This is SQLAlchemy's ``pool_pre_ping`` without the round trip on a connection that was
    in use a moment ago (HikariCP's "alive bypass window", 500 ms there): under load every
    request would otherwise pay one more round trip to the database. A connection that the
    server drops inside the window shows up as a disconnect on its first statement; the
    pool then discards every connection of that age, and the enrollment transactions retry
    on a fresh one (``is_retryable``)."""
    dialect = engine.dialect

    @event.listens_for(engine, "connect")
    def _connected(_dbapi_conn, record):
        record.info["lms_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_conn, record):
        if record is not None:
            record.info["lms_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_conn, record, _proxy):
        since = record.info.get("lms_idle_since")
        if since is not None and time.monotonic() - since <= after:
            return
        try:
            dialect.do_ping(dbapi_conn)
        except dialect.loaded_dbapi.Error as exc:  # only a driver error can mean a disconnect
            if dialect.is_disconnect(exc, dbapi_conn, None):
                # The pool closes this connection and checks out another (a new one).
                raise DisconnectionError("the pooled connection was closed by the server") from exc
            raise


def _is_memory(engine: Engine) -> bool:
    database = engine.url.database
    return not database or database == ":memory:" or "mode=memory" in str(engine.url)


def is_sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


def for_update(stmt):
    """``stmt`` with ``FOR UPDATE`` on PostgreSQL; unchanged on SQLite, which has no row locks
    (the transaction's write lock — ``begin_write``/``ensure_writer`` — serialises instead)."""
    return stmt if is_sqlite() else stmt.with_for_update()


def lock_fresh(obj) -> None:
    """Lock ``obj``'s row until the transaction ends and read it again: a state change that
    arrives twice at once (a double click, two tabs) then sees the first one's result — the
    second cancel finds the course cancelled and records nothing. PostgreSQL: ``FOR UPDATE``;
    SQLite: the write lock (``ensure_writer``). Changes made so far in the transaction are
    flushed first, so they are read back, not lost."""
    ensure_writer()
    db.session.flush()
    db.session.refresh(obj, with_for_update=None if is_sqlite() else True)


def lock_table_for_writes(table_name: str) -> None:
    """Let one transaction at a time write ``table_name`` (readers go on) until it ends: for a
    rule checked over the whole table that no unique index can state (a search synonym in at
    most one group). PostgreSQL: ``SHARE ROW EXCLUSIVE``, which conflicts with itself and with
    every write; SQLite: the write lock. The name comes from a model, never from input."""
    ensure_writer()
    if not is_sqlite():
        quoted = db.session.get_bind().dialect.identifier_preparer.quote(table_name)
        db.session.execute(text(f"LOCK TABLE {quoted} IN SHARE ROW EXCLUSIVE MODE"))


def analyze(session: Session, tables: list[str]) -> None:
    """Gather planner statistics for ``tables`` (in the caller's transaction).

    Before a bulk load or rebuild reads tables that were just filled other than through the
    app: without statistics (a fresh database, autovacuum not yet run) PostgreSQL plans nested
    loops over millions of rows (a summary rebuild after a 200,000-staff load ran for over
    7 minutes; after ANALYZE, under one). Table names come from the models, never from input.
    """
    dialect = session.get_bind().dialect
    quoted = [dialect.identifier_preparer.quote(t) for t in tables]
    # PostgreSQL analyzes a list in one statement; SQLite one table per statement.
    for names in ([", ".join(quoted)] if dialect.name == "postgresql" else quoted):
        session.execute(text(f"ANALYZE {names}"))


def begin_write() -> None:
    """Start the current transaction as a writer.

    On SQLite this is ``BEGIN IMMEDIATE`` (the write lock is taken at once, so a
    read-then-write cannot fail half-way); a read transaction already open is ended
    first (nothing may have been written in it). On PostgreSQL it does nothing: use
    ``SELECT … FOR UPDATE`` on the rows that guard the decision.
    """
    if not is_sqlite():
        return
    if db.session().in_transaction():
        if db.session.info.get(_WRITER):
            return  # holds the lock already: nobody else has written since it began
        # Ending the transaction would silently drop rows already flushed in it.
        if db.session.new or db.session.dirty or db.session.deleted or db.session.info.get(_FLUSHED):
            raise RuntimeError("begin_write() must come before any change in the transaction")
        db.session.rollback()
    db.session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
    db.session.info[_WRITER] = True


_MAY_WRITE = "lms_request_may_write"


def write_lock_for_changes() -> None:
    """A request hook on SQLite (the embedded default): a request that may change something
    (any method but GET, HEAD and OPTIONS) begins its transactions with the write lock, so
    that it waits its turn behind another writer instead of failing with "database is
    locked" when it turns from reading (the signed-in user, the checks) to writing. SQLite
    has one writer at a time anyway. The lock is taken when the request first uses the
    database (a request that never does, such as Graph's validation handshake, takes none);
    a route that streams a big body commits before it reads it (the lock is not held
    meanwhile); a record that must survive the request's rollback is written once the
    transaction has ended (``when_ended``: the refusal audit). PostgreSQL does not use this
    hook."""
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        g.setdefault(_MAY_WRITE, True)


def _request_may_write() -> bool:
    return has_request_context() and bool(g.get(_MAY_WRITE))


@event.listens_for(Session, "after_begin")
def _writer_from_the_start(session, _transaction, connection):
    if connection.dialect.name == "sqlite" and _request_may_write():
        session.info[_WRITER] = True  # begun IMMEDIATE (the engine's "begin" listener)


def holds_write_lock() -> bool:
    """Whether the current transaction holds SQLite's write lock (begun as a writer, or has
    written): another connection of this process would wait for it until busy_timeout."""
    if not is_sqlite():
        return False
    session = db.session()
    return session.in_transaction() and bool(session.info.get(_WRITER) or session.info.get(_FLUSHED))


def ensure_writer() -> None:
    """Make the current transaction a writer before its first write, unless it is one already.

    For a path that reads and then writes without having begun as a writer (a GET that records
    who saw what, a token made on first use). On SQLite a transaction begun as a reader that
    turns writer while another connection writes fails at once with "database is locked"
    (SQLITE_BUSY: busy_timeout cannot help a reader that upgrades); begun with the write lock,
    it waits its turn instead. So a transaction that has written nothing yet is ended and begun
    again with the lock (``begin_write``; the objects read so far are read again, fresh, on
    first use). One that already holds the lock — begun by ``begin_write``, or with a change
    flushed — or has a change pending, or work waiting on its commit or rollback
    (``after_commit``, ``on_rollback``), is left as it is. Nothing on PostgreSQL.
    """
    if not is_sqlite():
        return
    session = db.session()
    if session.info.get(_WRITER) or session.info.get(_FLUSHED) or session.new or session.dirty or session.deleted:
        return
    if has_pending(session):
        return
    begin_write()


_FLUSHED = "lms_flushed_in_transaction"
_WRITER = "lms_writer_transaction"


@event.listens_for(Session, "after_flush")
def _remember_flush(session, _flush_context):
    session.info[_FLUSHED] = True


@event.listens_for(Session, "after_transaction_end")
def _forget_flush(session, transaction):
    if transaction.parent is None:
        session.info.pop(_FLUSHED, None)
        session.info.pop(_WRITER, None)


_RETRYABLE_PG = {"40001", "40P01", "55P03"}  # serialization failure, deadlock, lock not available


def is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError) and "locked" in str(exc).lower():
        return True
    if isinstance(exc, DBAPIError) and exc.connection_invalidated:
        # The database connection was lost (server restart, terminated backend): the
        # transaction never committed, so running it again on a fresh connection is safe.
        return True
    if isinstance(exc, DBAPIError):
        code = getattr(getattr(exc, "orig", None), "sqlstate", None)
        return code in _RETRYABLE_PG
    return False


def run_in_transaction(func, *args, attempts: int = 5, **kwargs):
    """Run ``func`` and commit; on a lock timeout or serialization failure roll back and
    run it again (it must therefore be safe to repeat). Raises the last error when
    every attempt failed."""
    for attempt in range(1, attempts + 1):
        try:
            result = func(*args, **kwargs)
            db.session.commit()
            return result
        except Exception as exc:
            db.session.rollback()
            if attempt == attempts or not is_retryable(exc):
                raise
            time.sleep(0.02 * attempt)


@contextmanager
def savepoint():
    with db.session.begin_nested():
        yield


def values_present(column, values: list) -> set:
    """Those of ``values`` that some row holds in ``column`` (asked in batches of 500, within
    the current transaction)."""
    found: set = set()
    for start in range(0, len(values), 500):
        batch = values[start : start + 500]
        found.update(db.session.scalars(select(column).where(column.in_(batch))))
    return found


LIKE_ESCAPE = "\\"


def like_escaped(text: str) -> str:
    """``text`` for a LIKE pattern (with ``escape=LIKE_ESCAPE``): its %, _ and backslashes
    stand for themselves, so a search for 「50%」 or 「a_b」 finds those characters only."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class contains_text(FunctionElement[bool]):
    """``contains_text(text, part)``: whether ``part`` occurs in ``text``, as a plain substring
    (no pattern characters): ``strpos(text, part) > 0`` on PostgreSQL, ``instr`` on SQLite.

    For a search word too short for a trigram index (fewer than three characters): the same
    test as ``LIKE '%part%'``, written so that no plan, a prepared statement's generic one
    included, scans the trigram index for it (that index has nothing to look up for such a
    word, and scanning it whole costs several times the table scan)."""

    type = Boolean()
    inherit_cache = True
    name = "contains_text"


@compiles(contains_text)
def _contains_text(element, compiler, **kw) -> str:
    return f"instr({compiler.process(element.clauses, **kw)}) > 0"


@compiles(contains_text, "postgresql")
def _contains_text_pg(element, compiler, **kw) -> str:
    return f"strpos({compiler.process(element.clauses, **kw)}) > 0"
