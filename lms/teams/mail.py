"""Mail through Microsoft Graph: ``POST /users/{sender}/sendMail`` (the "graph" mail backend).

``GraphMailBackend`` is registered with the notifications area's mail backends when the
app is created (``lms/teams/receivers.py``); it gets a standard ``email.message.EmailMessage``,
whose HTML (or text) body, recipients and attachments (e.g. a text/calendar invitation)
become a Graph ``message`` with ``fileAttachment`` items.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import getaddresses
from typing import Any

from flask import current_app

from lms.teams.graph import GraphClient, client_from_app, user_path


def _recipients(message: EmailMessage, header: str) -> list[dict]:
    values = message.get_all(header, [])
    out = []
    for name, address in getaddresses([str(v) for v in values]):
        if address:
            entry = {"address": address}
            if name:
                entry["name"] = name
            out.append({"emailAddress": entry})
    return out


def _body_and_attachments(message: EmailMessage) -> tuple[dict, list[dict]]:
    body_part = message.get_body(preferencelist=("html", "plain"))
    if body_part is None:
        body = {"contentType": "text", "content": ""}
    else:
        content = body_part.get_content()
        body = {"contentType": "html" if body_part.get_content_subtype() == "html" else "text", "content": content}
    attachments = []
    for index, part in enumerate(message.walk()):
        if part is body_part or part.is_multipart():
            continue
        if part.get_content_maintype() == "text" and part.get_content_subtype() in ("plain", "html") \
                and not part.get_filename() and part.get_content_disposition() != "attachment":
            continue  # the alternative rendering of the body
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            payload = b""
        name = part.get_filename() or (
            "invite.ics" if part.get_content_type() == "text/calendar" else f"attachment-{index}"
        )
        attachments.append({
            "@odata.type": "#microsoft.graph.fileAttachment",
            "name": name,
            "contentType": part.get_content_type(),
            "contentBytes": base64.b64encode(payload).decode("ascii"),
        })
    return body, attachments


def graph_message(message: EmailMessage) -> dict:
    """The JSON ``message`` for sendMail."""
    body, attachments = _body_and_attachments(message)
    result = {
        "subject": str(message.get("Subject", "")),
        "body": body,
        "toRecipients": _recipients(message, "To"),
    }
    cc = _recipients(message, "Cc")
    bcc = _recipients(message, "Bcc")
    reply_to = _recipients(message, "Reply-To")
    if cc:
        result["ccRecipients"] = cc
    if bcc:
        result["bccRecipients"] = bcc
    if reply_to:
        result["replyTo"] = reply_to
    if attachments:
        result["attachments"] = attachments
    return result


def sender_mailbox() -> str:
    config = current_app.config
    return config.get("GRAPH_MAIL_SENDER") or config.get("GRAPH_ORGANIZER") or config["MAIL_FROM"]


def send_via_graph(message: EmailMessage, client: GraphClient | None = None) -> None:
    """Send one message. Raises ``GraphError`` on failure (the caller's outbox retries)."""
    payload = graph_message(message)
    if not payload["toRecipients"] and "ccRecipients" not in payload and "bccRecipients" not in payload:
        raise ValueError("message has no recipients")
    client = client or client_from_app()
    # A sendMail POST is not idempotent: it is repeated only on 429 (refused, not sent).
    client.post(f"{user_path(sender_mailbox())}/sendMail", {"message": payload, "saveToSentItems": False})


class GraphMailBackend:
    """``MAIL_BACKEND=graph``: each message goes out through ``send_via_graph``."""

    def __init__(self, config: Mapping[str, Any]):
        """Nothing to keep: Graph's settings are read when a message is sent (client_from_app)."""

    def send(self, message: EmailMessage) -> None:
        send_via_graph(message)
