"""Standard Webhooks signatures (https://www.standardwebhooks.com/, "Signature scheme").

The secret is ``whsec_`` followed by the base64 of 24 random bytes; the signed content is
``{webhook-id}.{webhook-timestamp}.{body}``; the ``webhook-signature`` header carries
``v1,<base64 HMAC-SHA256>`` for each secret in force, separated by spaces (two during a
rotation, so that a receiver may switch to the new secret at its own pace)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"


def new_secret() -> str:
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode("ascii")


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    content = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), content, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_header(secrets_in_force: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    return " ".join(signature(secret, msg_id, timestamp, body) for secret in secrets_in_force if secret)


def headers(secrets_in_force: list[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature_header(secrets_in_force, msg_id, timestamp, body),
    }
