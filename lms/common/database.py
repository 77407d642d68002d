"""Database set-up that differs between SQLite and PostgreSQL, and write-transaction helpers."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from functools import lru_cache

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, DisconnectionError, OperationalError
from sqlalchemy.orm import Session

from lms.extensions import db


def configure_engine(engine: Engine, ping_after_idle: float = 1.0) -> None:
    if engine.dialect.name != "sqlite":
        _ping_when_idle(engine, ping_after_idle)
        if engine.dialect.driver == "psycopg":
            event.listen(engine, "connect", _describe_once)
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
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


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
        except Exception as exc:
            if dialect.is_disconnect(exc, dbapi_conn, None):
                # The pool closes this connection and checks out another (a new one).
                raise DisconnectionError("the pooled connection was closed by the server") from exc
            raise


def _describe_once(dbapi_conn, _record) -> None:
    dbapi_conn.cursor_factory = _cursor_describing_once()


@lru_cache(maxsize=1)
def _cursor_describing_once():
    """psycopg's cursor with ``description`` built once per result.

    psycopg builds a new list of Column objects on every read of ``description``, and
    SQLAlchemy reads it several times for each statement: about 170 Column objects for one
    enrollment, 0.1 ms of CPU. This cursor keeps the list until the cursor moves on to
    another result (its ``pgresult`` changes)."""
    import psycopg

    describe = psycopg.Cursor.description.fget
    unset = object()

    class DescribingOnceCursor(psycopg.Cursor):
        __slots__ = ("_described_result", "_description")

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._described_result = unset

        @property
        def description(self):
            result = self.pgresult
            if result is not self._described_result:
                self._description = describe(self)
                self._described_result = result
            return self._description

    return DescribingOnceCursor


def _is_memory(engine: Engine) -> bool:
    database = engine.url.database
    return not database or database == ":memory:" or "mode=memory" in str(engine.url)


def is_sqlite() -> bool:
    return db.engine.dialect.name == "sqlite"


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
        # Ending the transaction would silently drop rows already flushed in it.
        if db.session.new or db.session.dirty or db.session.deleted or db.session.info.get(_FLUSHED):
            raise RuntimeError("begin_write() must come before any change in the transaction")
        db.session.rollback()
    db.session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})


_FLUSHED = "lms_flushed_in_transaction"


@event.listens_for(Session, "after_flush")
def _remember_flush(session, _flush_context):
    session.info[_FLUSHED] = True


@event.listens_for(Session, "after_transaction_end")
def _forget_flush(session, transaction):
    if transaction.parent is None:
        session.info.pop(_FLUSHED, None)


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


# ---------------------------------------------------------------- writes deferred to the commit

_DEFERRED = "lms_deferred_statements"
_PRE_COMMIT: list[Callable[[Session], None]] = []


def defer(session: Session, statement, params: dict, on_rows: Callable[[list], None] | None = None) -> None:
    """Run the Core ``statement`` with ``params`` when the transaction commits (before the
    COMMIT, after the last flush), together with the other deferred statements: in one
    round trip on PostgreSQL. For writes whose result nothing in the transaction reads
    meanwhile (a counter the caller already knows the new value of, an outbox row);
    ``on_rows`` receives the statement's RETURNING rows. A rollback drops them (a savepoint's
    rollback, those deferred inside it)."""
    session.info.setdefault(_DEFERRED, []).append((statement, params, on_rows, session.get_nested_transaction()))


def before_commit_writer(func: Callable[[Session], None]) -> Callable[[Session], None]:
    """Register ``func(session)`` to run before every commit, ahead of the deferred
    statements (it may defer more of them)."""
    _PRE_COMMIT.append(func)
    return func


def _prepare_commit(session: Session) -> list[tuple]:
    """Run the pre-commit writers, flush, and take the deferred statements to send."""
    for func in _PRE_COMMIT:
        func(session)
    session.flush()
    return [item[:3] for item in session.info.pop(_DEFERRED, ())]


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    # (A savepoint's release runs them too: they are written in the enclosing transaction.)
    write_deferred(session)


def write_deferred(session: Session) -> None:
    """Run the pre-commit writers and send the deferred statements now, in the transaction,
    as a commit does before its COMMIT (one pipeline on PostgreSQL); nothing is committed."""
    batch = _prepare_commit(session)
    if batch:
        run_batch(session, batch)


@event.listens_for(Session, "after_transaction_end")
def _drop_deferred(session, transaction):
    if transaction.parent is None:
        session.info.pop(_DEFERRED, None)
    elif transaction.nested and session.info.get(_DEFERRED):
        # A released savepoint has run everything deferred; what is left of this one's was
        # rolled back with it.
        session.info[_DEFERRED] = [item for item in session.info[_DEFERRED] if item[3] is not transaction]


def commit(session: Session) -> None:
    """``session.commit()``; on PostgreSQL the deferred statements and the COMMIT itself go to
    the server in one round trip (one pipeline).

    The pre-commit writers run and the session is flushed first (as before any commit);
    then the batch and the COMMIT are sent together, and ``session.commit()`` completes
    SQLAlchemy's side (its events, the identity map) without another round trip: the
    driver knows its transaction is over. An error in any of them rolls the whole
    transaction back, as an error at the commit would."""
    if session.get_bind().dialect.name != "postgresql" or not session.in_transaction():
        session.commit()
        return
    batch = _prepare_commit(session)
    if batch:
        run_batch(session, batch, and_commit=True)
    session.commit()


def run_batch(session: Session, batch: list[tuple], and_commit: bool = False) -> list[list]:
    """Execute ``(statement, params, on_rows)`` in order in the session's transaction.

    On PostgreSQL they go to the server together in psycopg's pipeline mode: one round
    trip, each statement still run (and given its snapshot) after the one before it has
    finished, so a lock taken by one is held when the next one reads. Elsewhere, one by one.
    Engine events (``before_cursor_execute``) see every statement, as for any other.
    Returns each statement's rows (also given to its ``on_rows``, which may be None).
    ``and_commit`` (PostgreSQL): the COMMIT goes in the same pipeline (see ``commit``)."""
    connection = session.connection()
    results = []
    if connection.dialect.name != "postgresql" or (len(batch) == 1 and not and_commit):
        for statement, params, on_rows in batch:
            result = connection.execute(statement, params)
            results.append(result.all() if result.returns_rows else [])
            if on_rows is not None:
                on_rows(results[-1])
        return results
    dialect = connection.dialect
    driver = connection.connection.driver_connection
    sent = []
    try:
        with driver.pipeline():
            for statement, params, on_rows in batch:
                compiled, sql, values = _compiled_for_driver(dialect, statement, params)
                cursor = driver.cursor()
                if connection._has_events or connection.engine._has_events:
                    connection.dispatch.before_cursor_execute(connection, cursor, sql, values, None, False)
                sent.append((cursor, sql, values, on_rows, compiled))
                cursor.execute(sql, values)
            if and_commit:
                driver.commit()  # queued behind them; the pipeline's one sync
        for cursor, _sql, _values, on_rows, compiled in sent:
            results.append(_processed_rows(dialect, compiled, cursor) if cursor.description is not None else [])
            cursor.close()
            if on_rows is not None:
                on_rows(results[-1])
        return results
    except dialect.loaded_dbapi.Error as exc:
        cursor, sql, values = sent[-1][:3] if sent else (None, "", {})
        # As for a statement run by SQLAlchemy: wrapped (IntegrityError, OperationalError, …),
        # and a lost connection invalidated, so that callers can retry on a fresh one.
        connection._handle_dbapi_exception(exc, sql, values, cursor, None)


_COMPILED: dict = {}


def _compiled_for_driver(dialect, statement, params: dict) -> tuple:
    """The compiled statement (once per statement and set of parameter names), its SQL for
    the driver and its parameters as the driver takes them."""
    key = (statement, dialect.name, tuple(params))
    entry = _COMPILED.get(key)
    if entry is None:
        if len(_COMPILED) >= 256:  # callers pass statements built once; this is a safety net
            _COMPILED.clear()
        compiled = statement.compile(dialect=dialect, column_keys=list(params))
        processors = {name: fn for name, fn in compiled._bind_processors.items() if fn is not None}
        # Python-side column defaults (as SQLAlchemy's execution applies them): scalar
        # values, or functions that take no execution context.
        defaults = []
        for columns, attribute in ((compiled.insert_prefetch, "default"), (compiled.update_prefetch, "onupdate")):
            for column in columns:
                default = getattr(column, attribute)
                if default is None or not (default.is_scalar or default.is_callable):
                    raise ValueError(f"run_batch: no value for {column} and no usable default")
                defaults.append((column.key, default))
        entry = _COMPILED[key] = (compiled, compiled.string, processors, defaults)
    compiled, sql, processors, defaults = entry
    if compiled.post_compile_params:
        # Parameters rendered at execution time (an IN list): SQLAlchemy's public way to
        # finish the statement for one set of parameters.
        if defaults:
            raise ValueError("run_batch: an INSERT or UPDATE with an IN list is not supported")
        expanded = compiled.construct_expanded_state(params)
        values = dict(expanded.parameters)
        for name, fn in expanded.processors.items():
            if fn is not None and name in values:
                values[name] = fn(values[name])
        return compiled, expanded.statement, values
    values = compiled.construct_params(params)
    for name, default in defaults:
        if name not in params:
            values[name] = default.arg if default.is_scalar else default.arg(None)
    for name, fn in processors.items():
        if name in values:
            values[name] = fn(values[name])
    return compiled, sql, values


def _processed_rows(dialect, compiled, cursor) -> list[tuple]:
    """The cursor's rows with each column's result processing (a TypeDecorator's, say), as
    SQLAlchemy's own results have it."""
    rows = cursor.fetchall()
    processors = [
        entry.type._cached_result_processor(dialect, column.type_code)
        for entry, column in zip(compiled._result_columns, cursor.description, strict=False)
    ]
    if not any(processors):
        return rows
    return [tuple(p(v) if p is not None else v for p, v in zip(processors, row, strict=False)) for row in rows]


@contextmanager
def savepoint():
    with db.session.begin_nested():
        yield
