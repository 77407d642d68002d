"""One Alembic history upgrades an empty database to exactly the models' schema."""

from __future__ import annotations

import uuid

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from tests.conftest import DB_KIND, PG_ADMIN_URL, ROOT


@pytest.fixture
def empty_database_url(tmp_path):
    if DB_KIND == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    admin = create_engine(make_url(PG_ADMIN_URL), isolation_level="AUTOCOMMIT")
    name = f"lms_migrate_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def test_upgrade_from_empty_matches_the_models(empty_database_url, tmp_path):
    from lms import create_app
    from lms.extensions import db

    app = create_app({"LMS_ENV": "testing", "SQLALCHEMY_DATABASE_URI": empty_database_url,
                      "LMS_STORAGE_DIR": str(tmp_path / "a")})
    with app.app_context():
        upgrade(directory=str(ROOT / "migrations"))
        with db.engine.connect() as conn:
            dialect = conn.dialect.name

            def include_object(obj, name, type_, reflected, compare_to):
                # Indexes made for one database only (e.g. PostgreSQL trigram indexes).
                ddl_if = getattr(obj, "_ddl_if", None)
                return not (type_ == "index" and ddl_if is not None and ddl_if.dialect not in (None, dialect))

            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "include_object": include_object}
            )
            diff = compare_metadata(context, db.metadata)
        assert diff == [], f"models and migrations differ: {diff}"
        # The migrated audit log refuses UPDATE and DELETE even in plain SQL.
        with db.engine.begin() as conn:
            conn.execute(text("INSERT INTO audit_log (occurred_at, actor_label, action, target_type, target_id, "
                              "ip_address, request_id, details) VALUES (CURRENT_TIMESTAMP, 'system', 'x', '', '', "
                              "'', '', '{}')"))
        for statement in ("UPDATE audit_log SET action = 'y'", "DELETE FROM audit_log"):
            with pytest.raises(Exception, match="append-only"), db.engine.begin() as conn:
                conn.execute(text(statement))
        if dialect == "postgresql":
            with db.engine.connect() as conn:
                assert conn.execute(text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")).scalar() == 1
        downgrade(directory=str(ROOT / "migrations"), revision="base")
        leftover = set(inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert leftover == set()
        db.engine.dispose()
