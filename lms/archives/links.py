"""Signed, expiring media links: video bytes served by nginx (or the blob service), not Python.

A range request of a video must not cost a Python round trip each (a player seeking through a
1 GB recording sends hundreds of them). So the access check moves to the moment the player
obtains its URL: when an authorised viewer opens the player, or asks for a fresh URL
(``archives.file_link``), the app issues a link

    /archives/media/<storage key>/<file id>.<ext>?u=<user id>&e=<expiry, unix seconds>&s=<signature>

with ``signature = base64url(MD5("m2|<e>|<path>|<u>|<viewer cookie>|<secret>"))`` — exactly the
string nginx's ``secure_link_md5`` builds (see docs/nginx.conf) — and sets the viewer cookie
``manabi_media`` (HttpOnly, path ``/archives/media/``): an HMAC of the user ID under the same
secret. A link therefore works only until it expires (``LMS_MEDIA_LINK_TTL`` seconds, default
60), only for that file, and only in the browser of the user it was issued to: another user's
browser, or the link pasted anywhere else, is refused (403; 410 once expired, after which the
player asks the app for a fresh link — and the app checks access again).

Revocation (withdrawal, the end of the availability window, a changed audience) takes effect
for new links at once, and for links already issued when they expire: the revocation latency
is the link TTL.

nginx validates the links itself and serves the file with sendfile and Range support; without
nginx, ``archives.media`` validates them the same way in Python and serves the ranges itself.
With Azure storage, the link is a read-only blob SAS URL valid for at most 60 s instead.

The signed string is a structured encoding: a version tag, then every field, separated by
``|``, a character none of the fields may contain (``signed_fields`` refuses such a field,
``check`` such a link; nginx's location admits only such paths, and its ``$secure_link_expires``
only digits). So the fields of one valid link cannot be re-cut into those of another: a link
for ``…/1.webm?u=10`` does not validate as ``…/1.webm1?u=0``, which the earlier plain
concatenation allowed. Links signed the earlier way are refused (403); the player then asks
the app for a fresh link, as it does for an expired one.

Links are on when ``LMS_MEDIA_LINKS=1``; the secret (``LMS_MEDIA_LINK_SECRET``, shared with
nginx) is required in production, and derived from SECRET_KEY elsewhere.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from urllib.parse import urlencode

from flask import current_app, url_for

from lms.archives.filetypes import TYPES
from lms.archives.models import VIDEO, ArchiveFile
from lms.archives.storage import check_key, get_storage

MEDIA_PATH = "/archives/media/"
COOKIE = "manabi_media"
MIN_TTL, MAX_TTL = 10, 3600
# <storage key>/<file id>.<extension> (the extension gives nginx the Content-Type); the same
# pattern as nginx's location (docs/nginx.conf).
_PATH_RE = re.compile(r"^(?P<key>[a-z0-9][a-z0-9/_-]{0,200})/(?P<file_id>[0-9]{1,18})\.(?P<ext>mp4|webm)$")
_VIEWER_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # base64url, as viewer_token writes it
# The signed string: this tag, then the fields, each followed by the separator.
SIGNATURE_VERSION = "m2"
SEPARATOR = "|"

VALID, INVALID, EXPIRED = "valid", "invalid", "expired"


def enabled() -> bool:
    """Signed links for local storage (Azure issues SAS URLs of its own)."""
    config = current_app.config
    return bool(config.get("LMS_MEDIA_LINKS")) and get_storage().name == "local"


def ttl() -> int:
    value = int(current_app.config.get("LMS_MEDIA_LINK_TTL") or 60)
    return max(MIN_TTL, min(value, MAX_TTL))


def _secret() -> str:
    secret = current_app.config.get("LMS_MEDIA_LINK_SECRET")
    if secret:
        return secret
    # Development and tests (no nginx, or one configured by the test): derived from SECRET_KEY.
    # Production refuses to start without LMS_MEDIA_LINK_SECRET (config.ProductionConfig).
    key = str(current_app.config["SECRET_KEY"]).encode()
    return hmac.new(key, b"manabi media link secret", hashlib.sha256).hexdigest()


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def viewer_token(user_id: int) -> str:
    """The value of the viewer cookie of a user (the same on every link of that user)."""
    mac = hmac.new(_secret().encode(), f"viewer:{int(user_id)}".encode(), hashlib.sha256).digest()
    return _b64(mac[:16])


def signed_fields(expires: int, path: str, user_id: str, viewer: str) -> str:
    """The string signed, without the secret: ``m2|<e>|<path>|<u>|<viewer>|``. Raises
    ValueError for a field outside its alphabet (none may hold the separator)."""
    if not (isinstance(expires, int) and expires >= 0 and path.startswith(MEDIA_PATH)
            and _PATH_RE.match(path[len(MEDIA_PATH):]) and user_id.isascii() and user_id.isdigit()
            and _VIEWER_RE.match(viewer)):
        raise ValueError("a media link field outside its alphabet")
    return SEPARATOR.join([SIGNATURE_VERSION, str(expires), path, user_id, viewer, ""])


def signature(expires: int, path: str, user_id: str, viewer: str) -> str:
    """nginx: secure_link_md5 "m2|$secure_link_expires|$uri|$arg_u|$cookie_manabi_media|<secret>";"""
    text = (signed_fields(expires, path, user_id, viewer) + _secret()).encode()
    return _b64(hashlib.md5(text, usedforsecurity=False).digest())


def extension_of(archive_file: ArchiveFile) -> str:
    for filetype in TYPES.values():
        if filetype.content_type == archive_file.content_type:
            return filetype.extension.lstrip(".")
    return "bin"


def media_path(archive_file: ArchiveFile) -> str:
    return f"{MEDIA_PATH}{check_key(archive_file.storage_key)}/{archive_file.id}.{extension_of(archive_file)}"


@dataclass
class MediaLink:
    url: str
    expires_at: int  # unix seconds
    cookie: str | None  # the viewer cookie value to set (None: no cookie, e.g. a SAS URL)


def issue(user, archive_file: ArchiveFile, now: float | None = None) -> MediaLink:
    """A playback URL for ``user`` (access already checked by the caller): a signed link, a
    blob SAS URL, or the app's own file URL (checked on every request) when neither applies."""
    now = time.time() if now is None else now
    seconds = ttl()
    if enabled() and archive_file.kind == VIDEO:
        expires = int(now) + seconds
        path = media_path(archive_file)
        viewer = viewer_token(user.id)
        query = urlencode({"u": user.id, "e": expires, "s": signature(expires, path, str(user.id), viewer)})
        return MediaLink(f"{path}?{query}", expires, viewer)
    if archive_file.kind == VIDEO:
        seconds = min(seconds, 60)
        signed = get_storage().signed_url(archive_file.storage_key, seconds=seconds, filename=archive_file.filename,
                                          content_type=archive_file.content_type, inline=True)
        if signed:
            return MediaLink(signed, int(now) + seconds, None)
    url = url_for("archives.file", archive_id=archive_file.archive_id, file_id=archive_file.id,
                  name=archive_file.filename)
    return MediaLink(url, 0, None)


@dataclass
class Checked:
    outcome: str  # VALID, INVALID or EXPIRED
    storage_key: str = ""
    file_id: int = 0
    user_id: int = 0
    extension: str = ""


def check(path: str, args, viewer: str | None, now: float | None = None) -> Checked:
    """Validate a link the way nginx does (same signature, then the expiry)."""
    now = time.time() if now is None else now
    if not path.startswith(MEDIA_PATH):
        return Checked(INVALID)
    match = _PATH_RE.match(path[len(MEDIA_PATH):])
    user_id, expires, given = args.get("u", ""), args.get("e", ""), args.get("s", "")
    numbers = (user_id + expires).isascii() and user_id.isdigit() and expires.isdigit() and len(expires) < 20
    if match is None or not (numbers and given and viewer and _VIEWER_RE.match(viewer)):
        return Checked(INVALID)
    key = match.group("key")
    if ".." in key or "//" in key:
        return Checked(INVALID)
    expected = signature(int(expires), path, user_id, viewer)
    if not hmac.compare_digest(expected.encode(), given.encode()):
        return Checked(INVALID)
    if int(expires) < int(now):  # nginx: expired when the time is past e
        return Checked(EXPIRED)
    return Checked(VALID, key, int(match.group("file_id")), int(user_id), match.group("ext"))
