"""The mail backends: SMTP against a small local SMTP server, Graph delegation, file."""

from __future__ import annotations

import base64
import email
import socketserver
import threading
from email import policy

import pytest

from lms.notifications.mail import MailError, build_message, get_backend, send_mail
from lms.notifications.services import queue_enrollment_notice


class SmtpHandler(socketserver.StreamRequestHandler):
    """Enough of RFC 5321 for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT."""

    def send(self, line):
        self.wfile.write((line + "\r\n").encode())

    def handle(self):
        server = self.server
        self.send("220 test ESMTP")
        mail_from, rcpts = None, []
        while True:
            line = self.rfile.readline().decode().rstrip("\r\n")
            if not line:
                return
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-test\r\n250-AUTH PLAIN\r\n250 8BITMIME\r\n")
            elif verb == "AUTH":
                _auth, _mech, token = line.split(" ", 2)
                server.auth.append(base64.b64decode(token).split(b"\0")[1:])
                self.send("235 ok")
            elif verb == "MAIL":
                mail_from = line[10:]
                self.send("250 ok")
            elif verb == "RCPT":
                address = line[8:].strip("<>")
                if address.startswith("unknown"):
                    self.send("550 no such user")
                else:
                    rcpts.append(address)
                    self.send("250 ok")
            elif verb == "DATA":
                self.send("354 go on")
                data = []
                while True:
                    chunk = self.rfile.readline()
                    if chunk in (b".\r\n", b""):
                        break
                    data.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                server.messages.append((mail_from, rcpts, b"".join(data)))
                self.send("250 queued")
            elif verb == "QUIT":
                self.send("221 bye")
                return
            else:
                self.send("250 ok")


@pytest.fixture
def smtp_server():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), SmtpHandler)
    server.daemon_threads = True
    server.messages, server.auth = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_smtp_backend_sends_the_message_with_login(app, db, smtp_server, make_enrollment):
    app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_server.server_address[1],
                      SMTP_USERNAME="manabi", SMTP_PASSWORD="secret", SMTP_STARTTLS=False)
    mail = queue_enrollment_notice(make_enrollment(), "confirmed")
    db.session.commit()
    message_id = send_mail(mail)
    [(sender, rcpts, data)] = smtp_server.messages
    assert smtp_server.auth == [[b"manabi", b"secret"]]
    assert rcpts == [mail.to_address]
    parsed = email.message_from_bytes(data, policy=policy.default)
    assert parsed["Message-ID"] == message_id
    assert "受講が確定しました" in parsed["Subject"]
    assert any(part.get_content_type() == "text/calendar" for part in parsed.walk())


def test_smtp_refused_recipient_is_permanent(app, db, smtp_server, make_staff, make_enrollment):
    app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=smtp_server.server_address[1],
                      SMTP_USERNAME=None, SMTP_STARTTLS=False)
    member = make_staff(email="unknown@city.example.lg.jp")
    mail = queue_enrollment_notice(make_enrollment(member=member), "confirmed")
    db.session.commit()
    with pytest.raises(MailError) as info:
        send_mail(mail)
    assert info.value.permanent


def test_smtp_unreachable_is_temporary(app, db, make_enrollment):
    app.config.update(MAIL_BACKEND="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=1, SMTP_TIMEOUT=2)
    mail = queue_enrollment_notice(make_enrollment(), "confirmed")
    db.session.commit()
    with pytest.raises(MailError) as info:
        send_mail(mail)
    assert not info.value.permanent


def test_graph_backend_delegates_to_the_teams_area(app, db, make_enrollment, monkeypatch):
    import lms.teams.mail

    sent = []
    monkeypatch.setattr(lms.teams.mail, "send_via_graph", lambda message, client=None: sent.append(message))
    app.config["MAIL_BACKEND"] = "graph"
    mail = queue_enrollment_notice(make_enrollment(), "cancelled")
    db.session.commit()
    send_mail(mail)
    [message] = sent
    assert message["To"].addresses[0].addr_spec == mail.to_address
    calendar = next(p for p in message.walk() if p.get_content_type() == "text/calendar")
    assert calendar.get_param("method") == "CANCEL"


def test_unknown_backend_is_a_permanent_error(app):
    app.config["MAIL_BACKEND"] = "carrier-pigeon"
    with pytest.raises(MailError) as info:
        get_backend()
    assert info.value.permanent


def test_message_without_ics_is_plain_text(app, db, make_enrollment):
    mail = queue_enrollment_notice(make_enrollment(), "pending")
    db.session.commit()
    message = build_message(mail)
    assert message.get_content_type() == "text/plain"
    assert message["Auto-Submitted"] == "auto-generated"
