"""``flask --app wsgi lms worker`` for the fault tests, with the local Graph server's token.

Tests have no MSAL: the worker's app gets ``GRAPH_TEST_TOKEN`` as its Graph token (the same
hook the in-process tests use); everything else is the real worker command.
Usage: ``python tests/teams/graph_worker.py [--workers N] [--no-periodic]``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from lms.cli import worker_command  # noqa: E402
from wsgi import app  # noqa: E402

app.extensions["graph_token_provider"] = lambda: os.environ["GRAPH_TEST_TOKEN"]

if __name__ == "__main__":
    with app.app_context():
        worker_command.main(args=sys.argv[1:], prog_name="flask --app wsgi lms worker")
