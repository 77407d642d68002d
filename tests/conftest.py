"""Shared fixtures. The same suite runs on SQLite and on PostgreSQL.

LMS_TEST_DB=sqlite (default) or LMS_TEST_DB=postgresql (TEST_DATABASE_URL, default
postgresql+psycopg://root@127.0.0.1:5432/test). Each pytest process works in a database
of its own (a temporary SQLite file, or a PostgreSQL database created for the run and
dropped after it); between tests every table but the municipality list is emptied.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

os.environ.setdefault("LMS_ENV", "testing")  # lms.jobs: huey runs tasks inline in tests

from tests import factories  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DB_KIND = os.environ.get("LMS_TEST_DB", "sqlite")
# TEST_PGBOUNCER_URL (postgresql+psycopg://root@127.0.0.1:PORT, set by scripts/test.sh for
# its PgBouncer run): the app reaches the test database through PgBouncer in transaction mode.
POOLER_URL = os.environ.get("TEST_PGBOUNCER_URL", "") if os.environ.get("LMS_TEST_DB") == "postgresql" else ""
PG_ADMIN_URL = os.environ.get("TEST_DATABASE_URL", "postgresql+psycopg://root@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() == "true"

_missing_in_ci: list[str] = []


def require(condition: bool, what: str) -> None:
    """Skip a test whose real peer (a tool, a service) is missing, with the reason.

    Under CI=true such a skip fails the run at the end (never silently passed).
    """
    if not condition:
        pytest.skip(f"MISSING: {what}")


def pytest_runtest_logreport(report):
    if report.skipped and isinstance(report.longrepr, tuple) and "MISSING:" in str(report.longrepr[2]):
        _missing_in_ci.append(f"{report.nodeid}: {report.longrepr[2]}")


def pytest_sessionfinish(session, exitstatus):
    if IN_CI and _missing_in_ci and exitstatus == 0:
        print("\nCI=true: tests were skipped for missing peers; failing the run:")
        for line in _missing_in_ci:
            print("  " + line)
        session.exitstatus = 1


def pytest_report_header(config):
    return f"Manabi test database: {DB_KIND}"


# ---------------------------------------------------------------- database per run


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    if DB_KIND == "sqlite":
        path = tmp_path_factory.mktemp("db") / "lms-test.db"
        yield f"sqlite:///{path}"
        return
    admin_url = make_url(PG_ADMIN_URL)
    name = f"lms_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # pragma: no cover - depends on the machine
        pytest.exit(f"PostgreSQL at {PG_ADMIN_URL} is not usable: {exc}", returncode=3)
    if POOLER_URL:
        # The app's connections go through PgBouncer (transaction mode); creating and
        # dropping the database stays on the direct connection.
        pooler = make_url(POOLER_URL)
        yield admin_url.set(host=pooler.host, port=pooler.port, database=name).render_as_string(hide_password=False)
    else:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def _schema(database_url, tmp_path_factory):
    """Create the schema once per run (from the models) and load the municipalities."""
    from lms import create_app
    from lms.extensions import db
    from lms.municipalities.services import load_municipalities

    app = create_app(_test_config(database_url, tmp_path_factory.mktemp("boot")))
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        db.create_all()
        load_municipalities()
        db.session.commit()
        db.engine.dispose()
    return True


def _test_config(database_url: str, workdir: Path, **extra) -> dict:
    config = {
        "LMS_ENV": "testing",
        "TESTING": True,
        "SECRET_KEY": "testing-secret-key-not-for-production-use-0123456789",
        "SQLALCHEMY_DATABASE_URI": database_url,
        "LMS_STORAGE_DIR": str(workdir / "archives"),
        "LMS_MAIL_DIR": str(workdir / "mail"),
        "HUEY_SQLITE_PATH": str(workdir / "huey.db"),
        "LMS_DEMO_LOGIN": True,
        "RATELIMIT_ENABLED": False,
        "SERVER_NAME": None,
        # Most tests post forms directly; CSRF is tested with it switched back on.
        "WTF_CSRF_ENABLED": False,
        "LMS_DB_TRANSACTION_POOLER": bool(POOLER_URL),
    }
    config.update(extra)
    return config


def _empty_tables(db):
    from lms.courses.search import forget_synonyms

    forget_synonyms()  # the search's per-process cache of synonym groups
    keep = {"municipality", "alembic_version"}
    tables = [t for t in reversed(db.metadata.sorted_tables) if t.name not in keep]
    if db.engine.dialect.name == "postgresql":
        names = ", ".join(f'"{t.name}"' for t in tables)
        # A thread the test left behind may still be finishing a transaction; TRUNCATE locks
        # every table, and PostgreSQL ends a deadlock by failing one side: that side tries again.
        for attempt in range(5):
            try:
                with db.engine.begin() as conn:
                    conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
                return
            except OperationalError as exc:
                if getattr(exc.orig, "sqlstate", None) != "40P01" or attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))
    with db.engine.begin() as conn:
        conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        for t in tables:
            conn.execute(t.delete())
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")


@pytest.fixture
def app_config(database_url, tmp_path):
    """Override per test: ``@pytest.fixture def app_config(app_config): return {**app_config, ...}``."""
    return _test_config(database_url, tmp_path)


@pytest.fixture
def app(_schema, app_config):
    from lms import create_app
    from lms.extensions import db

    app = create_app(app_config)
    app.test_client_class = _RollbackClient
    ctx = app.app_context()
    ctx.push()
    try:
        yield app
    finally:
        db.session.remove()
        _empty_tables(db)
        db.engine.dispose()
        ctx.pop()
        shutil.rmtree(app_config["LMS_STORAGE_DIR"], ignore_errors=True)


class _RollbackClient(FlaskClient):
    """Each request runs in a thread of its own, so it gets its own app context and
    database session, as in production (the test's pushed context is not reused).
    The test's pending changes are committed first; afterwards the test's session is
    rolled back so that it reads fresh rows."""

    def open(self, *args, **kwargs):
        from flask import has_app_context

        from lms.extensions import db

        if not has_app_context():
            # A redirect followed from inside the request thread: already isolated.
            return FlaskClient.open(self, *args, **kwargs)
        db.session.commit()
        outcome: dict = {}

        def run():
            try:
                outcome["response"] = FlaskClient.open(self, *args, **kwargs)
            except BaseException as exc:  # re-raised in the test's thread
                outcome["error"] = exc

        worker = threading.Thread(target=run)
        worker.start()
        worker.join()
        db.session.rollback()
        if "error" in outcome:
            raise outcome["error"]
        return outcome["response"]


@pytest.fixture
def db(app):
    from lms.extensions import db

    return db


@pytest.fixture
def summaries_follow(request):
    """After a test that used the database, the completion dashboard summaries equal a fresh
    aggregate of the base tables (``lms.completion.summary.check``): whatever the test
    changed went through the domain events the summaries subscribe to. Areas whose writes
    the summaries follow turn it on for every test (``autouse`` in their conftest)."""
    if "app" not in request.fixturenames or request.node.get_closest_marker("bulk_sql"):
        yield
        return
    request.getfixturevalue("app")  # set up first, so torn down after this check
    yield
    from lms.completion import summary
    from lms.extensions import db

    db.session.rollback()
    report = summary.check(db.session())
    db.session.rollback()
    assert report.ok, report.differences


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


# ---------------------------------------------------------------- factories


@pytest.fixture
def municipality(db):
    return factories.municipality


@pytest.fixture
def make_user(db):
    return factories.make_user


@pytest.fixture
def make_staff(db):
    return factories.make_staff


@pytest.fixture
def make_course(db):
    return factories.make_course


@pytest.fixture
def make_session(db):
    return factories.make_session


@pytest.fixture
def login_as(app, client):
    """``login_as("trainer", "131016")`` → a User signed in on ``client`` (returned)."""

    def _login(role: str = "learner", municipality_code: str = "131016", user=None, on=None, **kw):
        user = user or factories.make_user(role=role, municipality_code=municipality_code, **kw)
        factories.sign_in(on or client, user)
        return user

    return _login


# ---------------------------------------------------------------- a live server


class LiveServer:
    """Manabi served on a port of its own for a real browser. ``stop`` stops accepting and then
    waits for the requests already in the app to finish (a player's last progress beacon, a
    page's late fetch): the test's teardown empties the tables next, and a request still in a
    transaction there would deadlock with PostgreSQL's TRUNCATE."""

    def __init__(self, app, *, port: int = 0, ssl_context=None):
        from werkzeug.serving import make_server

        self.app = app
        self._busy = 0
        self._idle = threading.Condition()
        self.server = make_server("127.0.0.1", port, self._counted, threaded=True, ssl_context=ssl_context)
        self.port = self.server.server_port
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _counted(self, environ, start_response):
        from werkzeug.wsgi import ClosingIterator

        self._mark(+1)
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self._mark(-1)
            raise
        return ClosingIterator(body, lambda: self._mark(-1))

    def _mark(self, change: int) -> None:
        with self._idle:
            self._busy += change
            self._idle.notify_all()

    def start(self):
        self.thread.start()
        return self

    def stop(self, drain_s: float = 15.0):
        self.server.shutdown()
        self.thread.join(5)
        self.server.server_close()
        # A connection accepted just before the shutdown may not have reached the app yet:
        # the server is idle once no request has been in it for a short while.
        deadline = time.monotonic() + drain_s
        with self._idle:
            while time.monotonic() < deadline:
                if self._busy:
                    self._idle.wait(max(0.0, deadline - time.monotonic()))
                elif not self._idle.wait(0.1):  # nothing started or ended for 0.1 s
                    break


@pytest.fixture
def live_server(app):
    server = LiveServer(app).start()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------- browser (Playwright + Debian's Chromium)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    require(Path(CHROMIUM).exists(), "Debian's chromium (apt-get install chromium) for browser tests")
    return {**browser_type_launch_args, "executable_path": CHROMIUM}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    return {**browser_context_args, "locale": "ja-JP", "timezone_id": "Asia/Tokyo"}
