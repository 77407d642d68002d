"""Configuration, read from the environment: one class per environment.

The variable names here are a contract with operators and with the rest of the
code base; see README.md ("Configuration") before renaming anything.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import overload

from limits import parse_many

BASE_DIR = Path(__file__).resolve().parent
INSTANCE_DIR = BASE_DIR / "instance"

# Anything shorter, or one of these, is not a production secret.
# (The last one was every development instance's key before each made its own.)
_WEAK_SECRETS = {"", "dev", "changeme", "secret", "dev-insecure-key-change-me"}


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message names the variable."""


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@overload
def _text(name: str) -> str | None: ...
@overload
def _text(name: str, default: str) -> str: ...
def _text(name: str, default: str | None = None) -> str | None:
    """The variable's value; unset or empty gives ``default``."""
    return os.environ.get(name) or default


def _flag(name: str, default: bool = False) -> bool:
    value = (os.environ.get(name) or "").strip().lower()
    if not value:
        return default
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be 1 or 0 (true/false, yes/no, on/off), not {value!r}.")


def _int(name: str, default: int) -> int:
    value = (os.environ.get(name) or "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number, not {value!r}.") from None


def _float(name: str, default: float) -> float:
    value = (os.environ.get(name) or "").strip()
    if not value:
        return default
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number (seconds), not {value!r}.") from None


def _limit(name: str, default: str) -> str:
    """A rate limit in Flask-Limiter's syntax ("20/minute;200/hour"), checked now rather
    than on the first request it applies to."""
    value = (os.environ.get(name) or "").strip() or default
    try:
        parse_many(value)
    except ValueError:
        raise ConfigError(f'{name} must be rate limits such as "20/minute;200/hour", not {value!r}.') from None
    return value


@dataclass(frozen=True)
class JobQueueSettings:
    redis_url: str | None
    sqlite_path: str
    immediate: bool  # tasks run inline (tests)


def job_queue_settings() -> JobQueueSettings:
    """The job queue's settings, read when ``lms.common.jobs`` creates the queue: the queue
    exists before any app does (tasks are declared at import time)."""
    return JobQueueSettings(
        redis_url=_text("REDIS_URL"),
        sqlite_path=_text("HUEY_SQLITE_PATH", str(INSTANCE_DIR / "huey.db")),
        immediate=_text("LMS_ENV") == "testing",
    )


class Config:
    LMS_ENV = "development"
    # Unset in development: the instance makes a random key of its own on first start and
    # keeps it in SECRET_KEY_FILE (development_secret_key). Production refuses to start without.
    SECRET_KEY = _text("SECRET_KEY")
    SECRET_KEY_FILE = str(INSTANCE_DIR / "secret_key")
    SQLALCHEMY_DATABASE_URI = _text("DATABASE_URL", f"sqlite:///{INSTANCE_DIR / 'lms.db'}")
    # No pool_pre_ping: a pooled connection idle for more than LMS_DB_PING_AFTER_IDLE
    # seconds is tested before use instead (lms.common.database._ping_when_idle).
    SQLALCHEMY_ENGINE_OPTIONS: dict = {}
    LMS_DB_PING_AFTER_IDLE = _float("LMS_DB_PING_AFTER_IDLE", 1.0)
    # PostgreSQL is reached through PgBouncer in transaction mode (docs/deploy.md).
    LMS_DB_TRANSACTION_POOLER = _flag("LMS_DB_TRANSACTION_POOLER")
    # `flask db …` (Flask-Migrate, Alembic). gunicorn.conf.py turns it off in web workers, which
    # run no migrations and are 11 MB smaller without Alembic.
    LMS_MIGRATION_COMMANDS = _flag("LMS_MIGRATION_COMMANDS", True)
    LMS_STORAGE_DIR = _text("LMS_STORAGE_DIR", str(INSTANCE_DIR / "archives"))
    LMS_MAIL_DIR = _text("LMS_MAIL_DIR", str(INSTANCE_DIR / "mail"))
    LMS_DEMO_LOGIN = _flag("LMS_DEMO_LOGIN")
    # Optional OpenTelemetry (lms.common.telemetry): the OTLP/HTTP endpoint of a collector.
    LMS_OTEL_ENDPOINT = _text("LMS_OTEL_ENDPOINT", "")
    LMS_OTEL_SERVICE_NAME = _text("LMS_OTEL_SERVICE_NAME", "manabi")
    # The body that issues certificates and organises the sessions (its name on certificates,
    # as the calendar organiser and mail sender name).
    LMS_ISSUER_NAME = _text("LMS_ISSUER_NAME", "東京都")
    # The portal's one brand name, the same in both languages ("Manabi 研修ポータル",
    # "Manabi Training Portal"): lms.common.i18n.portal_name().
    LMS_BRAND_NAME = _text("LMS_BRAND_NAME", "Manabi")
    # The font embedded in certificates (a TrueType file covering 人名 characters).
    LMS_CERTIFICATE_FONT = _text("LMS_CERTIFICATE_FONT", "/usr/share/fonts/truetype/ipamj/ipamjm.ttf")
    REDIS_URL = _text("REDIS_URL")
    # /readyz reports not ready when the worker's last heartbeat (every minute) is older.
    LMS_WORKER_HEARTBEAT_MAX_AGE = _int("LMS_WORKER_HEARTBEAT_MAX_AGE", 180)
    # Public base URL, used in mails, certificates and calendar files.
    LMS_BASE_URL = _text("LMS_BASE_URL", "http://127.0.0.1:5000")
    # Number of reverse proxies in front of the app (X-Forwarded-* trusted).
    LMS_PROXY_COUNT = _int("LMS_PROXY_COUNT", 0)

    # Sign-in (Microsoft Entra ID through MSAL).
    ENTRA_CLIENT_ID = _text("ENTRA_CLIENT_ID")
    ENTRA_CLIENT_SECRET = _text("ENTRA_CLIENT_SECRET")
    ENTRA_CLIENT_CERT_PATH = _text("ENTRA_CLIENT_CERT_PATH")
    ENTRA_CLIENT_CERT_THUMBPRINT = _text("ENTRA_CLIENT_CERT_THUMBPRINT")
    ENTRA_AUTHORITY = _text("ENTRA_AUTHORITY", "https://login.microsoftonline.com/organizations")
    ENTRA_REDIRECT_URI = _text("ENTRA_REDIRECT_URI")
    # Where the identity provider returns after sign-out (default: the home page's URL).
    ENTRA_POST_LOGOUT_REDIRECT_URI = _text("ENTRA_POST_LOGOUT_REDIRECT_URI")
    ENTRA_TENANTS = _text("ENTRA_TENANTS", "")
    ENTRA_CA_BUNDLE = _text("ENTRA_CA_BUNDLE")

    # The integration API (/api/v1, lms.api): the audience its access tokens must carry —
    # the app ID URI (api://<client id>) and, for Entra's v2 tokens, the client id itself;
    # comma-separated. Empty: no token is accepted (the API answers 401).
    LMS_API_AUDIENCE = tuple(a.strip() for a in (_text("LMS_API_AUDIENCE", "")).split(",") if a.strip())
    # The OpenAPI document (flask-smorest), generated from the code at /api/v1/openapi.json.
    API_TITLE = "Manabi API"
    API_VERSION = "v1"
    OPENAPI_VERSION = "3.1.0"
    OPENAPI_URL_PREFIX = "/api/v1"
    OPENAPI_JSON_PATH = "openapi.json"
    # Browsable docs of that document at /api/v1/docs: RapiDoc (npm rapidoc 9.3.8, MIT),
    # served from static/vendor — no CDN.
    OPENAPI_RAPIDOC_PATH = "docs"
    OPENAPI_RAPIDOC_URL = "/static/vendor/rapidoc-9.3.8/rapidoc-min.js"
    OPENAPI_RAPIDOC_CONFIG = {"theme": "light", "render-style": "read", "show-header": "false",
                              "allow-server-selection": "false", "heading-text": "Manabi API v1",
                              "primary-color": "#1d4f91", "schema-description-expanded": "true",
                              # No web fonts from Google: the system's (CSP: font-src 'self').
                              "load-fonts": "false", "regular-font": "system-ui, sans-serif",
                              "mono-font": "ui-monospace, monospace"}

    # Webhooks of the integration API (lms.api.webhooks): the hosts their URLs may name
    # (comma-separated; "*.example.lg.jp" for the hosts of a domain, "*" for any public host;
    # empty: none, no endpoint can be registered); whether private addresses — and plain
    # http — are allowed; each request's timeout (seconds); the attempts of a delivery and the
    # first retry's delay (doubling, at most six hours); the hours of failures after which an
    # endpoint is disabled (its training office and the platform admins are told).
    LMS_WEBHOOK_ALLOWED_HOSTS = tuple(h.strip() for h in _text("LMS_WEBHOOK_ALLOWED_HOSTS", "").split(",") if h.strip())
    LMS_WEBHOOK_ALLOW_PRIVATE = _flag("LMS_WEBHOOK_ALLOW_PRIVATE")
    LMS_WEBHOOK_TIMEOUT = _float("LMS_WEBHOOK_TIMEOUT", 10)
    LMS_WEBHOOK_MAX_ATTEMPTS = _int("LMS_WEBHOOK_MAX_ATTEMPTS", 12)
    LMS_WEBHOOK_BACKOFF_SECONDS = _int("LMS_WEBHOOK_BACKOFF_SECONDS", 30)
    LMS_WEBHOOK_DISABLE_AFTER_HOURS = _int("LMS_WEBHOOK_DISABLE_AFTER_HOURS", 72)

    # Microsoft Graph.
    GRAPH_BASE_URL = _text("GRAPH_BASE_URL", "https://graph.microsoft.com/v1.0")
    GRAPH_CA_BUNDLE = _text("GRAPH_CA_BUNDLE")
    GRAPH_ORGANIZER = _text("GRAPH_ORGANIZER")
    # Mailbox that sends mail for the "graph" mail backend (default GRAPH_ORGANIZER, then MAIL_FROM).
    GRAPH_MAIL_SENDER = _text("GRAPH_MAIL_SENDER")
    # Public HTTPS URL of the change-notification endpoint (default LMS_BASE_URL + /teams/graph/notifications).
    GRAPH_NOTIFICATION_URL = _text("GRAPH_NOTIFICATION_URL")
    GRAPH_CONNECT_TIMEOUT = _float("GRAPH_CONNECT_TIMEOUT", 5)
    GRAPH_READ_TIMEOUT = _float("GRAPH_READ_TIMEOUT", 60)
    GRAPH_MAX_ATTEMPTS = _int("GRAPH_MAX_ATTEMPTS", 5)
    GRAPH_BACKOFF_CAP = _float("GRAPH_BACKOFF_CAP", 30)
    # Longest a run of one operation waits on throttling (Retry-After) before it gives up
    # and is rescheduled, so that an outage never holds a worker for minutes.
    GRAPH_MAX_WAIT = _float("GRAPH_MAX_WAIT", 60)
    # Lease of a running Graph operation (PostgreSQL: renewed every quarter of it). An operation
    # run on another machine and silent for longer is taken over; on the same machine a dead
    # worker process is seen at once.
    GRAPH_OPERATION_LEASE = _float("GRAPH_OPERATION_LEASE", 120)

    # The Teams app (lms.teams.app_package, lms.teams.tab): the manifest's app id (a GUID; empty:
    # one derived from LMS_BASE_URL, the same for every download of a deployment) and accent
    # colour; the application ID URI that the personal tab's single sign-on tokens carry as
    # their audience (empty: api://<host of LMS_BASE_URL>/<ENTRA_CLIENT_ID>, the form Teams
    # requires) and the delegated scope they must hold.
    LMS_TEAMS_APP_ID = _text("LMS_TEAMS_APP_ID", "")
    LMS_TEAMS_ACCENT_COLOR = _text("LMS_TEAMS_ACCENT_COLOR", "#1D4F91")
    LMS_TEAMS_SSO_RESOURCE = _text("LMS_TEAMS_SSO_RESOURCE", "")
    LMS_TEAMS_SSO_SCOPE = _text("LMS_TEAMS_SSO_SCOPE", "access_as_user")
    # Notices (approval requests, enrollment decisions, promotions, reminders) also go to the
    # person's Teams activity feed where Graph is set up and the person's tenant has consented
    # (lms.teams.activity); each person chooses Teams, mail or both, and mail goes wherever
    # Teams cannot reach them.
    LMS_TEAMS_NOTICES = _flag("LMS_TEAMS_NOTICES", True)

    # Mail: "file" writes to LMS_MAIL_DIR, "smtp" or "graph" deliver.
    MAIL_BACKEND = _text("MAIL_BACKEND", "file")
    MAIL_FROM = _text("MAIL_FROM", "manabi@example.lg.jp")
    SMTP_HOST = _text("SMTP_HOST", "localhost")
    SMTP_PORT = _int("SMTP_PORT", 25)
    SMTP_USERNAME = _text("SMTP_USERNAME")
    SMTP_PASSWORD = _text("SMTP_PASSWORD")
    SMTP_STARTTLS = _flag("SMTP_STARTTLS")
    # Seconds to connect to the SMTP server and for each of its answers.
    SMTP_TIMEOUT = _float("SMTP_TIMEOUT", 30)
    # The outbox (lms.notifications): attempts before a mail is given up, the first retry's
    # delay (doubling each time), and how long a claimed mail may stay unsent before another
    # worker takes it over (its worker died).
    LMS_MAIL_MAX_ATTEMPTS = _int("LMS_MAIL_MAX_ATTEMPTS", 8)
    LMS_MAIL_BACKOFF_SECONDS = _int("LMS_MAIL_BACKOFF_SECONDS", 60)
    LMS_OUTBOX_STALE_SECONDS = _int("LMS_OUTBOX_STALE_SECONDS", 15 * 60)
    # Approval requests to the training offices (lms.notifications): once an office member has
    # had this many in a day, further ones wait for the next morning's digest (0: never); the
    # digest also reminds of requests that have waited this many working days (weekends,
    # national holidays and 29 Dec–3 Jan not counted).
    LMS_APPROVAL_DIGEST_THRESHOLD = _int("LMS_APPROVAL_DIGEST_THRESHOLD", 10)
    LMS_APPROVAL_REMINDER_DAYS = _int("LMS_APPROVAL_REMINDER_DAYS", 3)
    # A learner is reminded this many hours before a required activity closes (0: never).
    LMS_ACTIVITY_REMINDER_HOURS = _int("LMS_ACTIVITY_REMINDER_HOURS", 48)
    # The largest file a learner may attach to pre-work or a report (bytes).
    LMS_ACTIVITY_FILE_MAX_BYTES = _int("LMS_ACTIVITY_FILE_MAX_BYTES", 20 * 1024 * 1024)

    # 和暦: fiscal years and dates of the training plan, statements and certificates in the
    # Japanese era (令和8年度, 令和8年12月3日) instead of the Western calendar (2026年度).
    LMS_WAREKI = _flag("LMS_WAREKI")

    # Archive storage: "local" (LMS_STORAGE_DIR) or "azure".
    LMS_STORAGE_BACKEND = _text("LMS_STORAGE_BACKEND", "local")
    # Azure, one of two ways in. With Microsoft Entra ID (production): the account's blob
    # endpoint (https://<account>.blob.core.windows.net) and the VM's or App Service's managed
    # identity — no key anywhere; playback links are user-delegation SAS. Set
    # AZURE_STORAGE_MANAGED_IDENTITY_CLIENT_ID for a user-assigned identity (unset: the
    # system-assigned one). With an account key (Azurite, development): a connection string.
    AZURE_STORAGE_ACCOUNT_URL = _text("AZURE_STORAGE_ACCOUNT_URL")
    AZURE_STORAGE_MANAGED_IDENTITY_CLIENT_ID = _text("AZURE_STORAGE_MANAGED_IDENTITY_CLIENT_ID")
    AZURE_STORAGE_CONNECTION_STRING = _text("AZURE_STORAGE_CONNECTION_STRING")
    AZURE_STORAGE_CONTAINER = _text("AZURE_STORAGE_CONTAINER", "archives")
    # A CA file for a blob endpoint whose certificate no public CA signed (Azurite over HTTPS,
    # Azure Stack Hub, a private endpoint behind an inspecting proxy); unset: the system's.
    AZURE_STORAGE_CA_BUNDLE = _text("AZURE_STORAGE_CA_BUNDLE")
    # Blob origin allowed in the CSP media-src (derived from the connection string if unset).
    LMS_AZURE_BLOB_ORIGIN = _text("LMS_AZURE_BLOB_ORIGIN")
    # Local storage behind nginx: internal location prefix for X-Accel-Redirect (see docs/nginx.conf);
    # unset, the app serves archive files itself (with Range support).
    LMS_ACCEL_REDIRECT_PREFIX = _text("LMS_ACCEL_REDIRECT_PREFIX")
    # Video playback through short-lived signed links validated by nginx (lms/archives/links.py,
    # docs/nginx.conf): LMS_MEDIA_LINK_SECRET is shared with nginx's secure_link_md5 (required in
    # production); LMS_MEDIA_LINK_TTL is the lifetime of a link in seconds (10-3600) and thereby
    # the time a withdrawal takes to stop playback already started.
    LMS_MEDIA_LINKS = _flag("LMS_MEDIA_LINKS")
    LMS_MEDIA_LINK_SECRET = _text("LMS_MEDIA_LINK_SECRET")
    LMS_MEDIA_LINK_TTL = _int("LMS_MEDIA_LINK_TTL", 60)
    # Largest body of one resumable-upload PATCH request (the browser sends 32 MiB chunks).
    LMS_UPLOAD_CHUNK_MAX_BYTES = _int("LMS_UPLOAD_CHUNK_MAX_BYTES", 256 * 1024 * 1024)
    # Largest single archive file accepted (bytes).
    LMS_MAX_UPLOAD_BYTES = _int("LMS_MAX_UPLOAD_BYTES", 5 * 1024**3)
    # Largest Teams attendance report file (出席者レポート) a trainer may upload, and how long
    # its preview waits for confirmation (minutes).
    LMS_ATTENDANCE_REPORT_MAX_BYTES = _int("LMS_ATTENDANCE_REPORT_MAX_BYTES", 5 * 1024 * 1024)
    LMS_ATTENDANCE_REPORT_TTL_MINUTES = _int("LMS_ATTENDANCE_REPORT_TTL_MINUTES", 120)

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
    # Form posts are small (an activity's attachment the largest); archive uploads go through
    # the chunked upload endpoint.
    MAX_CONTENT_LENGTH = max(32 * 1024 * 1024, LMS_ACTIVITY_FILE_MAX_BYTES + 2 * 1024 * 1024)
    MAX_FORM_MEMORY_SIZE = 8 * 1024 * 1024

    BABEL_DEFAULT_LOCALE = "ja"
    BABEL_DEFAULT_TIMEZONE = "Asia/Tokyo"
    LANGUAGES = ("ja", "en")

    # Rate limits (Flask-Limiter): memory on one machine, Redis when REDIS_URL is set.
    RATELIMIT_ENABLED = _flag("RATELIMIT_ENABLED", True)
    # No X-RateLimit-* headers on every response: each costs a round trip to the counters'
    # store. A refusal (429) still says when to come back (Retry-After, lms.common.web).
    RATELIMIT_HEADERS_ENABLED = False
    # Per-action limits (lms.common.limits), Flask-Limiter syntax: "20/minute;200/hour".
    LMS_LIMIT_SIGN_IN = _limit("LMS_LIMIT_SIGN_IN", "300/minute;3000/hour")
    LMS_LIMIT_ENROLL = _limit("LMS_LIMIT_ENROLL", "30/minute;300/hour")
    LMS_LIMIT_PROGRESS = _limit("LMS_LIMIT_PROGRESS", "120/minute")
    LMS_LIMIT_UPLOAD = _limit("LMS_LIMIT_UPLOAD", "1200/minute")
    LMS_LIMIT_EXPORT = _limit("LMS_LIMIT_EXPORT", "30/minute")
    LMS_LIMIT_VERIFY = _limit("LMS_LIMIT_VERIFY", "30/minute;300/hour")
    # Every call of the integration API, counted per registered client application.
    LMS_LIMIT_API = _limit("LMS_LIMIT_API", "600/minute;20000/hour")

    HSTS = False

    # Logs (lms.common.logging): "json" (one object per line) or "text".
    LMS_LOG_FORMAT = _text("LMS_LOG_FORMAT", "text")
    LMS_LOG_LEVEL = _text("LMS_LOG_LEVEL", "INFO")
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
    SQLALCHEMY_DATABASE_URI = _text("DATABASE_URL", "sqlite://")
    RATELIMIT_ENABLED = False
    MAIL_BACKEND = "file"


class ProductionConfig(Config):
    LMS_ENV = "production"
    SESSION_COOKIE_SECURE = True
    REMEMBER_COOKIE_SECURE = True
    HSTS = True
    LMS_LOG_FORMAT = _text("LMS_LOG_FORMAT", "json")

    @classmethod
    def validate(cls) -> None:
        secret = _text("SECRET_KEY", "")
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
        url = _text("DATABASE_URL", "")
        if not url or url.startswith("sqlite"):
            raise ConfigError(
                "DATABASE_URL must point to PostgreSQL (postgresql+psycopg://…) in production "
                "(本番環境では DATABASE_URL に PostgreSQL を指定してください)."
            )
        if _flag("LMS_MEDIA_LINKS") and len(_text("LMS_MEDIA_LINK_SECRET", "").strip()) < 32:
            raise ConfigError(
                "LMS_MEDIA_LINK_SECRET must be set to a random value of at least 32 characters when "
                "LMS_MEDIA_LINKS=1 in production, the same as in nginx's secure_link_md5 "
                "(本番環境で LMS_MEDIA_LINKS=1 とする場合は LMS_MEDIA_LINK_SECRET に 32 文字以上のランダムな値を設定してください)."
            )
        if (_text("LMS_STORAGE_BACKEND", "local").lower() == "azure"
                and not (_text("AZURE_STORAGE_ACCOUNT_URL") or _text("AZURE_STORAGE_CONNECTION_STRING"))):
            raise ConfigError(
                "LMS_STORAGE_BACKEND=azure needs AZURE_STORAGE_ACCOUNT_URL (managed identity) or "
                "AZURE_STORAGE_CONNECTION_STRING "
                "(Azure Blob Storage の接続先 AZURE_STORAGE_ACCOUNT_URL または AZURE_STORAGE_CONNECTION_STRING を設定してください)."
            )
        if _text("ENTRA_CA_BUNDLE"):
            raise ConfigError(
                "ENTRA_CA_BUNDLE is for test providers only and is refused in production "
                "(ENTRA_CA_BUNDLE は本番環境では使用できません)."
            )


def development_secret_key(path: str | Path) -> str:
    """A development instance's own session signing key: made at random on its first start
    and kept in ``path`` (mode 0600), so that no two instances share a key (a published one
    would let anyone forge a cookie) and a restart keeps everyone signed in."""
    path = Path(path)
    try:
        key = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        key = _create_secret_key_file(path)
    if len(key) < 32:
        raise ConfigError(f"{path} does not hold a usable SECRET_KEY: delete it and a new one is made at the next start.")
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)  # readable by the owner only, whoever created it
    return key


def _create_secret_key_file(path: Path) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(key + "\n")
        try:
            os.link(draft, path)  # atomic: of two processes starting at once, the first one's key is kept
        except FileExistsError:
            key = path.read_text(encoding="utf-8").strip()
    finally:
        draft.unlink()
    return key


CONFIGS = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def config_for(env: str | None = None) -> type[Config]:
    env = (env or _text("LMS_ENV", "development")).strip().lower()
    try:
        return CONFIGS[env]
    except KeyError:
        raise ConfigError(f"LMS_ENV must be one of {', '.join(CONFIGS)} (got {env!r}).") from None
