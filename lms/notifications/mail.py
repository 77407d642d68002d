"""The one mail interface: build a MIME message from an outbox row and hand it to a backend.

Backends (``MAIL_BACKEND``):

- ``file`` (development default): writes ``<LMS_MAIL_DIR>/outbox-<id>.eml``. The name is
  the outbox row's, written atomically, so delivering the same row again after a crash
  replaces the file instead of adding a second mail.
- ``smtp``: ``smtplib`` with optional STARTTLS and login (SMTP_HOST, SMTP_PORT,
  SMTP_STARTTLS, SMTP_USERNAME, SMTP_PASSWORD), every wait bounded by SMTP_TIMEOUT.
- any name registered with ``register_backend`` by a higher layer when the app is created:
  ``graph`` (Microsoft Graph ``sendMail``) is registered by the Teams area
  (``lms/teams/receivers.py``), which owns everything Graph.
- ``package.module:ClassName``: any class with ``__init__(config)`` and ``send(message)``,
  imported by that name (a site's own backend, the tests' failing one).

A backend's ``send(message: EmailMessage) -> None`` raises on failure; the worker retries.
"""

from __future__ import annotations

import os
import smtplib
import ssl
import tempfile
from collections.abc import Callable, Mapping
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from importlib import import_module
from pathlib import Path
from typing import Any, Protocol

from flask import current_app

from lms.common.i18n import portal_name
from lms.common.timeutil import utcnow
from lms.notifications.compose import calendars


class MailError(RuntimeError):
    """Sending failed; ``permanent`` failures are not retried."""

    def __init__(self, message: str, *, permanent: bool = False):
        super().__init__(message)
        self.permanent = permanent


def message_id_for(mail) -> str:
    domain = (current_app.config.get("MAIL_FROM") or "manabi@example.lg.jp").rsplit("@", 1)[-1]
    return f"<outbox-{mail.id}@{domain}>"


def build_message(mail) -> EmailMessage:
    """The MIME message of an OutboxMail row (text body, optional text/calendar part)."""
    config = current_app.config
    message = EmailMessage()
    message["From"] = formataddr((portal_name(), config.get("MAIL_FROM") or "manabi@example.lg.jp"))
    message["To"] = formataddr((mail.to_name or "", mail.to_address))
    message["Subject"] = mail.subject
    message["Date"] = format_datetime(mail.created_at or utcnow())
    message["Message-ID"] = message_id_for(mail) if mail.id else make_msgid()
    message["Auto-Submitted"] = "auto-generated"
    message["X-Manabi-Kind"] = mail.kind
    message.set_content(mail.body_text, charset="utf-8")
    # One calendar each (a 連続講座's cancellation cancels each of its days): invite.ics, invite-2.ics…
    for number, calendar in enumerate(calendars(mail.ics or ""), start=1):
        method = "CANCEL" if "METHOD:CANCEL" in calendar else "REQUEST"
        message.add_attachment(
            calendar.encode("utf-8"),
            maintype="text",
            subtype="calendar",
            filename="invite.ics" if number == 1 else f"invite-{number}.ics",
            params={"method": method, "charset": "UTF-8"},
        )
    return message


class MailBackend(Protocol):
    def send(self, message: EmailMessage) -> None: ...


# A backend is made from the app's config for each delivery.
BackendFactory = Callable[[Mapping[str, Any]], MailBackend]


class FileBackend:
    def __init__(self, config: Mapping[str, Any]):
        self.directory = Path(config.get("LMS_MAIL_DIR") or "instance/mail")

    def send(self, message: EmailMessage) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        name = message["Message-ID"].strip("<>").split("@", 1)[0]
        name = "".join(c if c.isalnum() or c in "-._" else "_" for c in name)
        target = self.directory / f"{name}.eml"
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".sending-", suffix=".eml")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(message.as_bytes())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class SmtpBackend:
    def __init__(self, config: Mapping[str, Any]):
        self.host = config.get("SMTP_HOST") or "localhost"
        self.port = int(config.get("SMTP_PORT") or 25)
        self.starttls = bool(config.get("SMTP_STARTTLS"))
        self.username = config.get("SMTP_USERNAME")
        self.password = config.get("SMTP_PASSWORD")
        self.timeout = float(config["SMTP_TIMEOUT"])

    def send(self, message: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(message)
        except smtplib.SMTPRecipientsRefused as exc:
            raise MailError(f"recipient refused: {exc.recipients}", permanent=True) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise MailError(f"SMTP {self.host}:{self.port}: {exc}") from exc


_BACKENDS: dict[str, BackendFactory] = {"file": FileBackend, "smtp": SmtpBackend}


def register_backend(name: str, factory: BackendFactory) -> None:
    """Make ``MAIL_BACKEND=<name>`` deliver through ``factory(config)`` (a higher layer's
    transport, e.g. the Teams area's Microsoft Graph; registering a name again replaces it)."""
    _BACKENDS[name] = factory


def get_backend(config: Mapping[str, Any] | None = None) -> MailBackend:
    config = config if config is not None else current_app.config
    name = (config.get("MAIL_BACKEND") or "file").strip()
    if name in _BACKENDS:
        return _BACKENDS[name](config)
    if ":" in name:
        module, _sep, attr = name.partition(":")
        return getattr(import_module(module), attr)(config)
    known = ", ".join(sorted(_BACKENDS))
    raise MailError(f"unknown MAIL_BACKEND {name!r} ({known}, or package.module:ClassName)", permanent=True)


def send_mail(mail) -> str:
    """Send an OutboxMail row through the configured backend; returns its Message-ID."""
    message = build_message(mail)
    get_backend().send(message)
    return message["Message-ID"]
