"""Named rate limits (Flask-Limiter), keyed by user where signed in and by address otherwise.

Storage: memory on the embedded default, Redis (REDIS_URL) in production, so that every
gunicorn worker and every machine counts together. Exceeding a limit answers 429 with the
Japanese page from lms.common.web. Each limit is a config key (LMS_LIMIT_SIGN_IN,
LMS_LIMIT_ENROLL, LMS_LIMIT_PROGRESS, LMS_LIMIT_UPLOAD, LMS_LIMIT_EXPORT, LMS_LIMIT_VERIFY;
config.py reads them from the environment; the syntax is Flask-Limiter's, e.g.
"20/minute;200/hour"), read from the app's config on each request, so an app created with
other values uses those. RATELIMIT_ENABLED=0 switches them all off.

Behind a reverse proxy set LMS_PROXY_COUNT so that the client's address (X-Forwarded-For,
through ProxyFix) is the key, not the proxy's.
"""

from __future__ import annotations

from collections.abc import Callable

from flask import current_app

from lms.extensions import limiter


def configured(name: str) -> Callable[[], str]:
    """The limit string of the config key ``name``, read from the app config at request time."""

    def value() -> str:
        return current_app.config[name]

    value.__name__ = f"limit_{name.lower()}"
    return value


limit_sign_in = limiter.limit(configured("LMS_LIMIT_SIGN_IN"))
limit_enroll = limiter.limit(configured("LMS_LIMIT_ENROLL"))
# The same limit on a URL that also serves a GET (a confirmation page): only its POSTs count.
limit_enroll_posts = limiter.limit(configured("LMS_LIMIT_ENROLL"), methods=["POST"])
limit_progress = limiter.limit(configured("LMS_LIMIT_PROGRESS"))
limit_upload = limiter.limit(configured("LMS_LIMIT_UPLOAD"))
limit_export = limiter.limit(configured("LMS_LIMIT_EXPORT"))
