"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py wsgi:app` (README).

gunicorn also reads this file by itself when started from this directory; command-line
options (and GUNICORN_CMD_ARGS) override it. See docs/deploy.md.
"""

# Behind nginx on the same machine (docs/nginx.conf); nginx terminates TLS.
bind = "127.0.0.1:8000"

# Sync workers: one request at a time each, about one per core (the enrollment benchmark runs
# 4 on two cores: a worker waiting on PostgreSQL leaves the core to another).
workers = 4
worker_class = "sync"
backlog = 2048

# The longest request decides the timeout, because a sync worker that has not finished its
# request within it is killed: exports stream from their first byte, but a million-row
# completion export still takes minutes from first to last byte (bench/reports.py measures
# it), and the last chunk of an archive upload flushes and may re-hash the file. nginx's
# timeouts (docs/nginx.conf) are per read, so they do not cut a streaming export.
timeout = 660
# A deploy (HUP) or stop lets requests under way finish: long enough for an upload's last
# chunk; an export under way is cut and the browser shows an incomplete download.
graceful_timeout = 90
# No max_requests: bench/soak.py shows the workers' memory stays flat without recycling
# (docs/operations.md), and a recycled worker's first requests are slower.

# The app writes one JSON line per request itself (LMS_LOG_REQUESTS); gunicorn's own errors
# go to stderr (journald under systemd).
accesslog = None
errorlog = "-"
loglevel = "info"

# Web workers run no migrations: without `flask db` they do not import Alembic (11 MB each).
raw_env = ["LMS_MIGRATION_COMMANDS=0"]

# X-Forwarded-* are trusted by the app (LMS_PROXY_COUNT), not by gunicorn.
forwarded_allow_ips = "127.0.0.1"


def post_worker_init(worker):
    """Compile the templates and freeze the start-up objects before the first request
    (lms/common/worker_start.py says why; the bare benchmark app has no templates to compile)."""
    from lms.common.worker_start import prepare

    app = worker.wsgi
    if hasattr(app, "jinja_env"):
        done = prepare(app)
        worker.log.info("worker %s ready: %d templates compiled in %.0f ms, %d objects frozen",
                        worker.pid, done["templates"], done["ms"], done["frozen"])
