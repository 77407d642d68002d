"""The app for the multi-process concurrency test, served by gunicorn.

The test passes its configuration (same database as the test) as JSON in
``LMS_TEST_APP_CONFIG``.
"""

import json
import os

from lms import create_app

app = create_app(json.loads(os.environ["LMS_TEST_APP_CONFIG"]))
