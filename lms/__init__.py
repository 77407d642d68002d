"""Manabi (学び): Microsoft Teams / Microsoft 365 training for a prefecture and its municipalities."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from flask import Flask

if TYPE_CHECKING:
    from config import Config

BASE_DIR = Path(__file__).resolve().parent.parent

# Feature areas, each a blueprint in lms/<area>/routes.py exposing ``bp``.
BLUEPRINTS = (
    "main",
    "auth",
    "municipalities",
    "roster",
    "courses",
    "enrollment",
    "attendance",
    "activities",
    "notifications",
    "teams",
    "teams.tab",  # the Teams app's personal tab: single sign-on, framed by Teams only
    "teams.viva",  # Viva Learning: the tenants' switch and status (/teams/viva), receivers
    "archives",
    "completion",
    "admin",
    "sitepages",
    "planning",
    "api",  # the admin pages of its client applications; API v1 itself is mounted by init_api
    "api.webhooks",  # the webhooks' admin pages (/admin/webhooks) and receivers
)
# Areas with signal receivers (lms/<area>/receivers.py) but no pages of their own.
RECEIVER_ONLY = ("audit",)


def create_app(config: str | type[Config] | dict | None = None) -> Flask:
    """Build the application. Configures only: no migrations, no network, no prompts.

    ``config`` is an environment name ("development", "testing", "production"), a config
    class, or a mapping of overrides applied on top of the environment's class.
    """
    from config import config_for, development_secret_key

    overrides: dict = {}
    if isinstance(config, dict):
        overrides = config
        config_cls = config_for(overrides.get("LMS_ENV"))
    elif isinstance(config, type):
        config_cls = config
    else:
        config_cls = config_for(config)
    config_cls.validate()

    app = Flask(
        __name__,
        instance_path=str(BASE_DIR / "instance"),
        template_folder=str(BASE_DIR / "templates"),
        static_folder=str(BASE_DIR / "static"),
    )
    app.config.from_object(config_cls)
    app.config.update(overrides)
    if not app.config.get("SECRET_KEY") and app.config["LMS_ENV"] == "development":
        app.config["SECRET_KEY"] = development_secret_key(app.config["SECRET_KEY_FILE"])

    _init_extensions(app)
    _register_blueprints(app)
    from lms.api.v1 import init_api  # (loaded as the app is built)

    init_api(app)

    # The parts are imported as the app is built, not with the package: lms.cli and lms.jobs
    # import lms themselves, and importing lms alone (a task module) must stay light.
    from lms.auth.entra import authority_origin
    from lms.cli import register_cli  # (see above)
    from lms.common.logging import init_logging  # (see above)
    from lms.common.static_files import init_static_versions  # (see above)
    from lms.common.telemetry import configure as init_telemetry  # (see above)
    from lms.common.templating import init_templating  # (see above)
    from lms.common.web import init_web  # (see above)
    from lms.main.nav import nav_items  # (see above)

    # Sign-out redirects to the identity provider: the CSP's form-action must allow it.
    init_web(app, form_action_origins=[origin for origin in [authority_origin(app)] if origin])
    init_logging(app)
    init_telemetry(app)
    init_templating(app, nav_items)
    init_static_versions(app)
    register_cli(app)

    if app.config.get("LMS_PROXY_COUNT"):
        from werkzeug.middleware.proxy_fix import ProxyFix

        n = app.config["LMS_PROXY_COUNT"]
        # Flask's documented way to add WSGI middleware; mypy forbids assigning to a method.
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n
        )
    return app


def _init_extensions(app: Flask) -> None:
    import lms.models  # noqa: F401  (every model registered before the engine is used)
    from lms.common.database import (  # (loaded as the app is built)
        configure_engine,
        end_reads_with_commit,
        write_lock_for_changes,
    )
    from lms.common.i18n import select_locale, select_timezone  # (loaded as the app is built)
    from lms.extensions import babel, csrf, db, limiter, login_manager  # (as above)

    if app.config.get("LMS_DB_TRANSACTION_POOLER") and app.config["SQLALCHEMY_DATABASE_URI"].startswith("postgresql"):
        # Behind PgBouncer in transaction mode each transaction may run on another server
        # connection: psycopg must not prepare statements on the server (it would after 5 runs).
        options = dict(app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {})
        options["connect_args"] = {**options.get("connect_args", {}), "prepare_threshold": None}
        app.config["SQLALCHEMY_ENGINE_OPTIONS"] = options
    db.init_app(app)
    with app.app_context():
        configure_engine(db.engine, ping_after_idle=float(app.config["LMS_DB_PING_AFTER_IDLE"]))
        end_reads_with_commit(app, db.engine)  # (after db.init_app: it runs before the session's removal)
        if db.engine.dialect.name == "sqlite":  # (before the sign-in's hook reads the user)
            app.before_request(write_lock_for_changes)
    if app.config["LMS_MIGRATION_COMMANDS"]:
        # (imported here: Alembic adds 11 MB to a process, and web workers run no migrations)
        from flask_migrate import Migrate

        Migrate(app, db, directory=str(BASE_DIR / "migrations"), render_as_batch=True)
    csrf.init_app(app)
    babel.init_app(
        app,
        locale_selector=select_locale,
        timezone_selector=select_timezone,
        default_translation_directories=str(BASE_DIR / "lms" / "translations"),
    )
    if app.config.get("REDIS_URL") and not app.config.get("RATELIMIT_STORAGE_URI"):
        app.config["RATELIMIT_STORAGE_URI"] = app.config["REDIS_URL"]
    app.config.setdefault("RATELIMIT_STORAGE_URI", "memory://")
    limiter.init_app(app)

    from lms.auth.session import init_login  # (loaded as the app is built)

    init_login(app, login_manager)


def _register_blueprints(app: Flask) -> None:
    from importlib import import_module

    from lms.common.ids import init_ids  # (loaded as the app is built)

    init_ids(app)  # <int:…> bounded to the database's ids, before any rule is added
    for area in BLUEPRINTS:
        module = import_module(f"lms.{area}.routes")
        app.register_blueprint(module.bp)
    # Signal receivers of the areas (lms/<area>/receivers.py), connected once.
    for area in (*BLUEPRINTS, *RECEIVER_ONLY):
        try:
            import_module(f"lms.{area}.receivers")
        except ModuleNotFoundError as exc:
            if exc.name != f"lms.{area}.receivers":
                raise
    # Loaded now rather than by a worker's first enrollment, which would keep every request
    # queued behind it waiting: icalendar (and the Asia/Tokyo VTIMEZONE of its mails), and
    # the job queue that a committed notice wakes (huey and redis take ~50 ms to import).
    import_module("lms.notifications.compose").warm_up()
    import_module("lms.jobs")
