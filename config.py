"""Configuration, read from the environment: one class per environment.

The variable names here are a contract with operators and with the rest of the
code base; see README.md ("Configuration") before renaming anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"

# Anything shorter, or one of these, is not a production secret.
_WEAK_SECRETS = {"", "dev", "changeme", "secret", "dev-insecure-key-change-me"}
DEV_SECRET_KEY = "dev-insecure-key-change-me"  # noqa: S105 (refused in production)


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message names the variable."""


def _flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


@dataclass(frozen=True)
class JobQueueSettings:
    redis_url: str | None
    sqlite_path: str
    immediate: bool  # tasks run inline (tests)


def job_queue_settings() -> JobQueueSettings:
    """The job queue's settings, read when ``lms.common.jobs`` creates the queue: the queue
    exists before any app does (tasks are declared at import time)."""
    return JobQueueSettings(
        redis_url=os.environ.get("REDIS_URL") or None,
        sqlite_path=os.environ.get("HUEY_SQLITE_PATH") or str(INSTANCE_DIR / "huey.db"),
        immediate=os.environ.get("LMS_ENV") == "testing",
    )


class Config:
    LMS_ENV = "development"
    SECRET_KEY = os.environ.get("SECRET_KEY") or DEV_SECRET_KEY
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or f"sqlite:///{INSTANCE_DIR / 'lms.db'}"
    # No pool_pre_ping: a pooled connection idle for more than LMS_DB_PING_AFTER_IDLE
    # seconds is tested before use instead (lms.common.database._ping_when_idle).
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    LMS_DB_PING_AFTER_IDLE = float(os.environ.get("LMS_DB_PING_AFTER_IDLE") or 1.0)
    LMS_STORAGE_DIR = os.environ.get("LMS_STORAGE_DIR") or str(INSTANCE_DIR / "archives")
    LMS_MAIL_DIR = os.environ.get("LMS_MAIL_DIR") or str(INSTANCE_DIR / "mail")
    LMS_DEMO_LOGIN = _flag("LMS_DEMO_LOGIN")
    REDIS_URL = os.environ.get("REDIS_URL") or None
    # Public base URL, used in mails, certificates and calendar files.
    LMS_BASE_URL = os.environ.get("LMS_BASE_URL") or "http://127.0.0.1:5000"
    # Number of reverse proxies in front of the app (X-Forwarded-* trusted).
    LMS_PROXY_COUNT = _int("LMS_PROXY_COUNT", 0)

    # Sign-in (Microsoft Entra ID through MSAL).
    ENTRA_CLIENT_ID = os.environ.get("ENTRA_CLIENT_ID") or None
    ENTRA_CLIENT_SECRET = os.environ.get("ENTRA_CLIENT_SECRET") or None
    ENTRA_CLIENT_CERT_PATH = os.environ.get("ENTRA_CLIENT_CERT_PATH") or None
    ENTRA_CLIENT_CERT_THUMBPRINT = os.environ.get("ENTRA_CLIENT_CERT_THUMBPRINT") or None
    ENTRA_AUTHORITY = os.environ.get("ENTRA_AUTHORITY") or "https://login.microsoftonline.com/organizations"
    ENTRA_REDIRECT_URI = os.environ.get("ENTRA_REDIRECT_URI") or None
    # Where the identity provider returns after sign-out (default: the home page's URL).
    ENTRA_POST_LOGOUT_REDIRECT_URI = os.environ.get("ENTRA_POST_LOGOUT_REDIRECT_URI") or None
    ENTRA_TENANTS = os.environ.get("ENTRA_TENANTS") or ""
    ENTRA_CA_BUNDLE = os.environ.get("ENTRA_CA_BUNDLE") or None

    # Microsoft Graph.
    GRAPH_BASE_URL = os.environ.get("GRAPH_BASE_URL") or "https://graph.microsoft.com/v1.0"
    GRAPH_CA_BUNDLE = os.environ.get("GRAPH_CA_BUNDLE") or None
    GRAPH_ORGANIZER = os.environ.get("GRAPH_ORGANIZER") or None
    # Mailbox that sends mail for the "graph" mail backend (default GRAPH_ORGANIZER, then MAIL_FROM).
    GRAPH_MAIL_SENDER = os.environ.get("GRAPH_MAIL_SENDER") or None
    # Public HTTPS URL of the change-notification endpoint (default LMS_BASE_URL + /teams/graph/notifications).
    GRAPH_NOTIFICATION_URL = os.environ.get("GRAPH_NOTIFICATION_URL") or None
    GRAPH_CONNECT_TIMEOUT = float(os.environ.get("GRAPH_CONNECT_TIMEOUT") or 5)
    GRAPH_READ_TIMEOUT = float(os.environ.get("GRAPH_READ_TIMEOUT") or 60)
    GRAPH_MAX_ATTEMPTS = _int("GRAPH_MAX_ATTEMPTS", 5)
    GRAPH_BACKOFF_CAP = float(os.environ.get("GRAPH_BACKOFF_CAP") or 30)
    # Longest a run of one operation waits on throttling (Retry-After) before it gives up
    # and is rescheduled, so that an outage never holds a worker for minutes.
    GRAPH_MAX_WAIT = float(os.environ.get("GRAPH_MAX_WAIT") or 60)
    # Lease of a running Graph operation (PostgreSQL: renewed every quarter of it). An operation
    # run on another machine and silent for longer is taken over; on the same machine a dead
    # worker process is seen at once.
    GRAPH_OPERATION_LEASE = float(os.environ.get("GRAPH_OPERATION_LEASE") or 120)

    # Mail: "file" writes to LMS_MAIL_DIR, "smtp" or "graph" deliver.
    MAIL_BACKEND = os.environ.get("MAIL_BACKEND") or "file"
    MAIL_FROM = os.environ.get("MAIL_FROM") or "manabi@example.lg.jp"
    SMTP_HOST = os.environ.get("SMTP_HOST") or "localhost"
    SMTP_PORT = _int("SMTP_PORT", 25)
    SMTP_USERNAME = os.environ.get("SMTP_USERNAME") or None
    SMTP_PASSWORD = os.environ.get("SMTP_PASSWORD") or None
    SMTP_STARTTLS = _flag("SMTP_STARTTLS")
    # The outbox: attempts before a mail is marked failed, the first retry's delay (doubled
    # each time), and how long a worker's claim holds before another worker takes it over.
    LMS_MAIL_MAX_ATTEMPTS, LMS_MAIL_BACKOFF_SECONDS, LMS_OUTBOX_STALE_SECONDS = (
        _int("LMS_MAIL_MAX_ATTEMPTS", 8), _int("LMS_MAIL_BACKOFF_SECONDS", 60), _int("LMS_OUTBOX_STALE_SECONDS", 15 * 60))

    # Archive storage: "local" (LMS_STORAGE_DIR) or "azure".
    LMS_STORAGE_BACKEND = os.environ.get("LMS_STORAGE_BACKEND") or "local"
    AZURE_STORAGE_CONNECTION_STRING = os.environ.get("AZURE_STORAGE_CONNECTION_STRING") or None
    AZURE_STORAGE_CONTAINER = os.environ.get("AZURE_STORAGE_CONTAINER") or "archives"
    # Blob origin allowed in the CSP media-src (derived from the connection string if unset).
    LMS_AZURE_BLOB_ORIGIN = os.environ.get("LMS_AZURE_BLOB_ORIGIN") or None
    # Local storage behind nginx: internal location prefix for X-Accel-Redirect (see docs/nginx.conf);
    # unset, the app serves archive files itself (with Range support).
    LMS_ACCEL_REDIRECT_PREFIX = os.environ.get("LMS_ACCEL_REDIRECT_PREFIX") or None
    # Video playback through short-lived signed links validated by nginx (lms/archives/links.py,
    # docs/nginx.conf): LMS_MEDIA_LINK_SECRET is shared with nginx's secure_link_md5 (required in
    # production); LMS_MEDIA_LINK_TTL is the lifetime of a link in seconds (10-3600) and thereby
    # the time a withdrawal takes to stop playback already started.
    LMS_MEDIA_LINKS = _flag("LMS_MEDIA_LINKS")
    LMS_MEDIA_LINK_SECRET = os.environ.get("LMS_MEDIA_LINK_SECRET") or None
    LMS_MEDIA_LINK_TTL = _int("LMS_MEDIA_LINK_TTL", 60)
    # Largest body of one resumable-upload PATCH request (the browser sends 32 MiB chunks).
    LMS_UPLOAD_CHUNK_MAX_BYTES = _int("LMS_UPLOAD_CHUNK_MAX_BYTES", 256 * 1024 * 1024)
    # Largest single archive file accepted (bytes).
    LMS_MAX_UPLOAD_BYTES = _int("LMS_MAX_UPLOAD_BYTES", 5 * 1024**3)

    # A new gunicorn worker rehearses the hot paths before its first request (rolled back;
    # lms.common.warmup, gunicorn.conf.py).
    LMS_WARM_UP = _flag("LMS_WARM_UP", True)

    # Sessions: signed cookies, so every gunicorn worker can read them.
    SESSION_COOKIE_NAME = "manabi_session"
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = False
    REMEMBER_COOKIE_HTTPONLY = True
    # Idle and absolute limits of a signed-in session, in minutes.
    LMS_SESSION_IDLE_MINUTES = _int("LMS_SESSION_IDLE_MINUTES", 60)
    LMS_SESSION_ABSOLUTE_MINUTES = _int("LMS_SESSION_ABSOLUTE_MINUTES", 12 * 60)
    PERMANENT_SESSION_LIFETIME = 12 * 60 * 60
    # The cookie is re-issued when the session changes (at least once a minute of activity,
    # lms.auth.session), not signed again on every request.
    SESSION_REFRESH_EACH_REQUEST = False

    WTF_CSRF_TIME_LIMIT = None  # the token lives as long as the session
    # Form posts are small; archive uploads go through the chunked upload endpoint.
    MAX_CONTENT_LENGTH = 32 * 1024 * 1024
    MAX_FORM_MEMORY_SIZE = 8 * 1024 * 1024

    BABEL_DEFAULT_LOCALE = "ja"
    BABEL_DEFAULT_TIMEZONE = "Asia/Tokyo"
    LANGUAGES = ("ja", "en")

    # Background jobs (huey): SQLite file on one machine, Redis when REDIS_URL is set.
    HUEY_SQLITE_PATH = os.environ.get("HUEY_SQLITE_PATH") or str(INSTANCE_DIR / "huey.db")
    HUEY_IMMEDIATE = False

    # Rate limits (Flask-Limiter): memory on one machine, Redis when REDIS_URL is set.
    RATELIMIT_ENABLED = _flag("RATELIMIT_ENABLED", True)
    # No X-RateLimit-* headers on every response: each costs a round trip to the counters'
    # store. A refusal (429) still says when to come back (Retry-After, lms.common.web).
    RATELIMIT_HEADERS_ENABLED = False
    # Per-action limits (lms.common.limits), Flask-Limiter syntax: "20/minute;200/hour".
    LMS_LIMIT_SIGN_IN = os.environ.get("LMS_LIMIT_SIGN_IN") or "300/minute;3000/hour"
    LMS_LIMIT_ENROLL = os.environ.get("LMS_LIMIT_ENROLL") or "30/minute;300/hour"
    LMS_LIMIT_PROGRESS = os.environ.get("LMS_LIMIT_PROGRESS") or "120/minute"
    LMS_LIMIT_UPLOAD = os.environ.get("LMS_LIMIT_UPLOAD") or "1200/minute"
    LMS_LIMIT_EXPORT = os.environ.get("LMS_LIMIT_EXPORT") or "30/minute"

    HSTS = False

    # Logs (lms.common.logging): "json" (one object per line) or "text".
    LMS_LOG_FORMAT = os.environ.get("LMS_LOG_FORMAT") or "text"
    LMS_LOG_LEVEL = os.environ.get("LMS_LOG_LEVEL") or "INFO"
    LMS_LOG_REQUESTS = _flag("LMS_LOG_REQUESTS", True)

    @classmethod
    def validate(cls) -> None:
        """Refuse a configuration that must not run; raise ConfigError naming the variable."""


class DevelopmentConfig(Config):
    LMS_ENV = "development"


class TestingConfig(Config):
    LMS_ENV = "testing"
    TESTING = True
    SECRET_KEY = "testing-secret-key-not-for-production-use-0123456789"  # noqa: S105
    SQLALCHEMY_DATABASE_URI = os.environ.get("DATABASE_URL") or "sqlite://"
    HUEY_IMMEDIATE = True
    RATELIMIT_ENABLED = False
    MAIL_BACKEND = "file"


class ProductionConfig(Config):
    LMS_ENV = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    HSTS = True
    LMS_LOG_FORMAT = os.environ.get("LMS_LOG_FORMAT") or "json"

    @classmethod
    def validate(cls) -> None:
        secret = os.environ.get("SECRET_KEY", "")
        if secret.strip().lower() in _WEAK_SECRETS or len(secret) < 32:
            raise ConfigError(
                "SECRET_KEY must be set to a random value of at least 32 characters in production "
                "(本番環境では SECRET_KEY に 32 文字以上のランダムな値を設定してください)."
            )
        if _flag("LMS_DEMO_LOGIN"):
            raise ConfigError(
                "LMS_DEMO_LOGIN must be off in production "
                "(本番環境ではデモ用サインイン LMS_DEMO_LOGIN を有効にできません)."
            )
        url = os.environ.get("DATABASE_URL", "")
        if not url or url.startswith("sqlite"):
            raise ConfigError(
                "DATABASE_URL must point to PostgreSQL (postgresql+psycopg://…) in production "
                "(本番環境では DATABASE_URL に PostgreSQL を指定してください)."
            )
        if _flag("LMS_MEDIA_LINKS") and len(os.environ.get("LMS_MEDIA_LINK_SECRET", "").strip()) < 32:
            raise ConfigError(
                "LMS_MEDIA_LINK_SECRET must be set to a random value of at least 32 characters when "
                "LMS_MEDIA_LINKS=1 in production, the same as in nginx's secure_link_md5 "
                "(本番環境で LMS_MEDIA_LINKS=1 とする場合は LMS_MEDIA_LINK_SECRET に 32 文字以上のランダムな値を設定してください)."
            )
        if os.environ.get("ENTRA_CA_BUNDLE"):
            raise ConfigError(
                "ENTRA_CA_BUNDLE is for test providers only and is refused in production "
                "(ENTRA_CA_BUNDLE は本番環境では使用できません)."
            )


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_for(env: str | None = None) -> type[Config]:
    env = (env or os.environ.get("LMS_ENV") or "development").strip().lower()
    try:
        return CONFIGS[env]
    except KeyError:
        raise ConfigError(f"LMS_ENV must be one of {', '.join(CONFIGS)} (got {env!r}).") from None
