"""Where a webhook may be sent, and the one HTTP request that sends it.

A URL is accepted only for a host the deployment allows (``LMS_WEBHOOK_ALLOWED_HOSTS``), over
HTTPS, and only while every address its name resolves to is a public one; private, loopback
and link-local addresses (the data centre's own machines, the cloud's metadata endpoint) are
refused unless ``LMS_WEBHOOK_ALLOW_PRIVATE`` is set, which also allows plain HTTP (test
receivers). The name is resolved again before every attempt, so a name that later points
inward is refused then. Redirects are not followed; each request has a timeout."""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import requests
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

EXCERPT_BYTES = 2000
USER_AGENT = "Manabi-Webhooks/1"


class Refused(ValueError):
    """The URL or its destination is not allowed; ``message`` says why (in the current language).
    A refusal met by the worker also has a ``code`` and ``params`` (``REFUSALS``): the attempt
    keeps them, to be put into words in its reader's language (``attempt_error``)."""

    def __init__(self, message: str, code: str = "", params: dict[str, str] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.params = params or {}


# A destination refused just before sending, by code (stored: never rename one): its words.
UNRESOLVED, PRIVATE_ADDRESS = "unresolved", "private_address"
REFUSALS = {
    UNRESOLVED: _l("送信先のホスト名「%(host)s」のアドレスが見つかりませんでした（DNS：%(detail)s）。URL のホスト名に"
                   "誤りがないか、受信側のシステムの担当者に確かめてください。"),
    PRIVATE_ADDRESS: _l("送信先のホスト名「%(host)s」が内部ネットワークのアドレス（%(address)s）を指しているため、"
                        "送信しませんでした。受信側のシステムの担当者に、公開されたアドレスか確かめてください。"),
}


def _refused(code: str, **params: str) -> Refused:
    return Refused(str(REFUSALS[code]) % params, code, params)


def attempt_error(attempt) -> str:
    """What an attempt met, in the reader's language (a refusal by its code; an HTTP status or a
    transport error as recorded)."""
    words = REFUSALS.get(attempt.error_code or "")
    if words is not None:
        try:
            return str(words) % (attempt.error_params or {})
        except (KeyError, TypeError, ValueError):
            pass
    return attempt.error


@dataclass
class Answer:
    status_code: int
    excerpt: str
    duration_ms: int


def host_allowed(host: str, allowed_hosts: tuple[str, ...]) -> bool:
    host = host.lower().rstrip(".")
    for pattern in allowed_hosts:
        pattern = pattern.lower().rstrip(".")
        if pattern == "*" or pattern == host:
            return True
        if pattern.startswith("*.") and host.endswith(pattern[1:]) and len(host) > len(pattern) - 1:
            return True
    return False


def _address_allowed(address: str, allow_private: bool) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if allow_private:
        return not ip.is_unspecified and not ip.is_multicast
    return ip.is_global and not ip.is_multicast


def check_url(url: str, allowed_hosts: tuple[str, ...], allow_private: bool) -> str:
    """The URL as stored, or Refused saying what is wrong with it."""
    url = (url or "").strip()
    if len(url) > 2000:
        raise Refused(_("URL は2000文字以内で入力してください。"))
    if any(c.isspace() or not c.isprintable() for c in url):  # (a line break became a space in the form)
        raise Refused(_("URL に空白や改行を含めないでください。"))
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise Refused(_("URL の形式が正しくありません。")) from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise Refused(_("URL は https:// で始めてください。"))
    host = parts.hostname or ""
    if not host or parts.username or parts.password or parts.fragment:
        raise Refused(_("URL にはホスト名を含め、利用者名・パスワード・# 以降を含めないでください。"))
    if port == 0:
        raise Refused(_("URL の形式が正しくありません。"))
    if not allowed_hosts:
        raise Refused(_("Webhook の送信先がこのシステムで許可されていません（LMS_WEBHOOK_ALLOWED_HOSTS が未設定です）。システム管理者に連絡してください。"))
    if not host_allowed(host, allowed_hosts):
        raise Refused(_("送信先のホスト「%(host)s」は許可されていません。許可されたホストの URL を入力してください。", host=host))
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None and not _address_allowed(host, allow_private):
        raise Refused(_("内部ネットワークのアドレスには送信できません。"))
    return url


def check_destination(url: str, allow_private: bool) -> None:
    """Refused unless every address the URL's host resolves to may be reached now."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise _refused(UNRESOLVED, host=host, detail=str(exc)) from None
    for info in infos:
        address = str(info[4][0])
        if not _address_allowed(address, allow_private):
            raise _refused(PRIVATE_ADDRESS, host=host, address=address)


def post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> Answer:
    """POST ``body``; an answer of any status is returned, a transport failure raised."""
    started = time.monotonic()
    with requests.post(url, data=body, timeout=(min(timeout, 5.0), timeout), allow_redirects=False, stream=True,
                       headers={**headers, "content-type": "application/json", "user-agent": USER_AGENT}) as answer:
        chunk = answer.raw.read(EXCERPT_BYTES, decode_content=True) or b""
    return Answer(answer.status_code, chunk.decode("utf-8", "replace"), int((time.monotonic() - started) * 1000))
