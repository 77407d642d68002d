"""Named rate limits (Flask-Limiter), keyed by user where signed in and by address otherwise.

Storage: memory on the embedded default, Redis (REDIS_URL) in production, so that every
gunicorn worker and every machine counts together. Exceeding a limit answers 429 with the
Japanese page from lms.common.web. Operators tune each limit through the environment
(LMS_LIMIT_SIGN_IN, LMS_LIMIT_ENROLL, LMS_LIMIT_PROGRESS, LMS_LIMIT_UPLOAD, LMS_LIMIT_EXPORT;
the syntax is Flask-Limiter's, e.g. "20/minute;200/hour"), and the application config
(same names) can override them per app. RATELIMIT_ENABLED=0 switches them all off.

Behind a reverse proxy set LMS_PROXY_COUNT so that the client's address (X-Forwarded-For,
through ProxyFix) is the key, not the proxy's.
"""

from __future__ import annotations

import os

from flask import current_app

from lms.extensions import limiter

SIGN_IN = os.environ.get("LMS_LIMIT_SIGN_IN", "300/minute;3000/hour")
ENROLL = os.environ.get("LMS_LIMIT_ENROLL", "30/minute;300/hour")
PROGRESS = os.environ.get("LMS_LIMIT_PROGRESS", "120/minute")
UPLOAD = os.environ.get("LMS_LIMIT_UPLOAD", "1200/minute")
EXPORT = os.environ.get("LMS_LIMIT_EXPORT", "30/minute")

DEFAULTS = {
    "LMS_LIMIT_SIGN_IN": SIGN_IN,
    "LMS_LIMIT_ENROLL": ENROLL,
    "LMS_LIMIT_PROGRESS": PROGRESS,
    "LMS_LIMIT_UPLOAD": UPLOAD,
    "LMS_LIMIT_EXPORT": EXPORT,
}


def configured(name: str):
    """The limit string of ``name``, read from the app config at request time."""

    def value() -> str:
        return current_app.config.get(name) or DEFAULTS[name]

    value.__name__ = f"limit_{name.lower()}"
    return value


limit_sign_in = limiter.limit(configured("LMS_LIMIT_SIGN_IN"))
limit_enroll = limiter.limit(configured("LMS_LIMIT_ENROLL"))
limit_progress = limiter.limit(configured("LMS_LIMIT_PROGRESS"))
limit_upload = limiter.limit(configured("LMS_LIMIT_UPLOAD"))
limit_export = limiter.limit(configured("LMS_LIMIT_EXPORT"))
