"""Named rate limits (Flask-Limiter), keyed by user where signed in and by address otherwise.

Storage: memory on the embedded default, Redis (REDIS_URL) in production. Exceeding a
limit answers 429 with the Japanese page from lms.common.web. Limits can be tuned by
operators through the environment.
"""

from __future__ import annotations

import os

from lms.extensions import limiter

SIGN_IN = os.environ.get("LMS_LIMIT_SIGN_IN", "20/minute;200/hour")
ENROLL = os.environ.get("LMS_LIMIT_ENROLL", "30/minute;300/hour")
PROGRESS = os.environ.get("LMS_LIMIT_PROGRESS", "120/minute")
UPLOAD = os.environ.get("LMS_LIMIT_UPLOAD", "1200/minute")
EXPORT = os.environ.get("LMS_LIMIT_EXPORT", "30/minute")

limit_sign_in = limiter.limit(SIGN_IN)
limit_enroll = limiter.limit(ENROLL)
limit_progress = limiter.limit(PROGRESS)
limit_upload = limiter.limit(UPLOAD)
limit_export = limiter.limit(EXPORT)
