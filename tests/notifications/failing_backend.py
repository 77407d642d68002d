"""Mail backends for tests (selected with MAIL_BACKEND="tests.notifications.failing_backend:…")."""

from __future__ import annotations

import os
import time
from pathlib import Path

from lms.notifications.mail import FileBackend, MailError

SENT: list = []


class AlwaysFails:
    def __init__(self, config):
        self.config = config

    def send(self, message):
        raise MailError("SMTP 451 temporary failure")


class RefusesRecipient:
    def __init__(self, config):
        self.config = config

    def send(self, message):
        raise MailError("550 no such user", permanent=True)


class Recording:
    def __init__(self, config):
        self.config = config

    def send(self, message):
        SENT.append(message)


class HangsOnce(FileBackend):
    """Signals that sending started (a marker file), then hangs: the test kills the worker.

    Once the marker exists, later sends go through (the restarted worker)."""

    def send(self, message):
        marker = Path(os.environ["TEST_SEND_MARKER"])
        if not marker.exists():
            marker.write_text(message["Message-ID"])
            time.sleep(600)
        super().send(message)
