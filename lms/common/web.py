"""Request plumbing: security headers, request IDs, safe redirects, error pages."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import quote, urlsplit

from flask import Flask, Response, current_app, g, jsonify, make_response, render_template, request
from flask_babel import gettext as _
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import IntegrityError, OperationalError
from werkzeug.exceptions import BadRequest

from lms.common.database import is_retryable
from lms.common.public import is_public_endpoint
from lms.extensions import db, limiter

log = logging.getLogger(__name__)


def is_safe_next(target: str | None) -> bool:
    """Only same-site relative paths: "/catalogue?x=1", never "//evil", "https://…" or "\\evil"."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(c) < 32 for c in target):
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def safe_next(target: str | None, default: str = "/") -> str:
    return target if target is not None and is_safe_next(target) else default


def same_site_referrer() -> str | None:
    """The page of this site the request came from (path and query), or None (no referrer, another
    site's, or not a safe path)."""
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc != request.host or not referrer.path:
        return None
    return safe_next(referrer.path + (f"?{referrer.query}" if referrer.query else ""), "") or None


def content_disposition(filename: str, fallback: str | None = None, *, inline: bool = False) -> str:
    """The Content-Disposition of a file: ``filename`` (Japanese names welcome) in RFC 6266's
    ``filename*`` form, and an ASCII ``filename`` for older clients (``fallback``, else the
    name's ASCII characters)."""
    ascii_name = (fallback or filename.encode("ascii", "ignore").decode()).replace('"', "").replace("\\", "")
    kind = "inline" if inline else "attachment"
    return f"{kind}; filename=\"{ascii_name or 'download'}\"; filename*=UTF-8''{quote(filename)}"


def private_download(body, filename: str, content_type: str, fallback: str | None = None) -> Response:
    """A download for the signed-in user only: attachment, never kept by a shared cache."""
    response = Response(body, content_type=content_type)
    response.headers["Content-Disposition"] = content_disposition(filename, fallback)
    response.headers["Cache-Control"] = "private, no-store"
    return response


def content_security_policy(app: Flask, form_action_origins: Iterable[str] = ()) -> str:
    """The Content-Security-Policy header. ``form_action_origins``: origins a form may post to
    besides this site (the identity provider: sign-out posts to /auth/logout, which redirects
    to its end-session endpoint, and browsers apply form-action to that redirect too)."""
    form_action = " ".join(["'self'", *form_action_origins, *app.config.get("CSP_FORM_ACTION_EXTRA", [])])
    media = " ".join(["'self'", "blob:", *app.config.get("CSP_MEDIA_EXTRA", [])])
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"media-src {media}; font-src 'self'; connect-src 'self'; object-src 'none'; "
        f"frame-ancestors 'none'; base-uri 'self'; form-action {form_action}"
    )


# app.extensions key: [(path prefix, renderer(code, title, message) -> response)], for an area
# that answers errors in its own format (the integration API: RFC 9457 problem details).
ERROR_RENDERERS = "lms_error_renderers"


def register_error_renderer(app: Flask, prefix: str, renderer: Callable[[int, str, str], Any]) -> None:
    """Answer the error pages of every path under ``prefix`` with ``renderer``."""
    app.extensions.setdefault(ERROR_RENDERERS, []).append((prefix, renderer))


# app.extensions key: endpoints whose page may carry inline styles (a vendored viewer that
# styles its own elements: the API docs). Scripts stay 'self' only, everywhere.
INLINE_STYLE_ENDPOINTS = "lms_inline_style_endpoints"


def allow_inline_styles(app: Flask, endpoint: str) -> None:
    app.extensions.setdefault(INLINE_STYLE_ENDPOINTS, set()).add(endpoint)


# app.extensions key: endpoints whose pages Microsoft Teams, Outlook and Microsoft 365 may show
# in a frame (the Teams app's personal tab and the learner pages it leads to). Every other
# page refuses every frame.
TEAMS_FRAME_ENDPOINTS = "lms_teams_frame_endpoints"
# The hosts of Teams, Outlook and Microsoft 365 that frame a tab (Microsoft's list for tabs).
TEAMS_FRAME_ANCESTORS = (
    "https://teams.microsoft.com", "https://*.teams.microsoft.com", "https://teams.cloud.microsoft",
    "https://*.cloud.microsoft", "https://*.office.com", "https://outlook.office.com",
    "https://outlook.office365.com", "https://*.office365.com", "https://*.microsoft365.com",
)


def allow_teams_frame(app: Flask, *endpoints: str) -> None:
    app.extensions.setdefault(TEAMS_FRAME_ENDPOINTS, set()).update(endpoints)


def teams_frameable(endpoint: str | None) -> bool:
    return endpoint in current_app.extensions.get(TEAMS_FRAME_ENDPOINTS, ())


_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
# The API's own validators name the field that holds a NUL (a 422 with the field's error).
_JSON_CHECKED_BY_VIEWS = ("api_v1",)


class NulCharacter(BadRequest):
    """U+0000 in a request: no page or API has a use for one, and PostgreSQL can neither store
    nor compare it (it would be a 500)."""


class LoneSurrogate(BadRequest):
    """A JSON string holding half of a UTF-16 surrogate pair, escaped (``"\\ud800"``) or encoded
    (bytes ED A0 80): no character at all, which neither database can store (UTF-8 cannot encode
    it: it would be a 500). Refused as a body that is not UTF-8 is, the API's included."""


class NotUtf8Json(BadRequest):
    """A JSON body in UTF-16 or UTF-32: JSON between systems is UTF-8 (RFC 8259), and only a
    UTF-8 body is checked for the characters above."""


_NUL_ESCAPE = b"\\u0000"  # (one backslash, then u0000)
# Half a surrogate pair: a \u escape of one (whether it is paired is looked at around it), or
# one encoded in UTF-8 (ED followed by A0–BF never begins a character).
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_ENCODED_SURROGATE = re.compile(rb"\xed[\xa0-\xbf]")
_BACKSLASH = 0x5C


def _escape_at(data: bytes, at: int) -> bool:
    """Whether the backslash at ``at`` begins an escape (an even number of backslashes before
    it), not the second half of an escaped backslash."""
    before = at
    while before > 0 and data[before - 1] == _BACKSLASH:
        before -= 1
    return (at - before) % 2 == 0


def _high_escape(data: bytes, at: int) -> bool:
    unit = data[at:at + 6]
    return len(unit) == 6 and unit[:2] == b"\\u" and unit[2:3] in b"dD" and unit[3:4] in b"89abAB"


def _low_escape(data: bytes, at: int) -> bool:
    unit = data[at:at + 6]
    return len(unit) == 6 and unit[:2] == b"\\u" and unit[2:3] in b"dD" and unit[3:4] in b"cdefCDEF"


def has_lone_surrogate(data: bytes) -> bool:
    """Whether a UTF-8 JSON text holds half a surrogate pair (escaped or encoded). Looks only
    around the surrogate escapes, so a large body of ordinary text costs one scan, not a parse."""
    if _ENCODED_SURROGATE.search(data):
        return True
    for found in _SURROGATE_ESCAPE.finditer(data):
        at = found.start()
        if not _escape_at(data, at):
            continue  # (an escaped backslash, then the letters u, d, 8, …)
        if _high_escape(data, at):
            if not _low_escape(data, at + 6):
                return True
        elif not (at >= 6 and _high_escape(data, at - 6) and _escape_at(data, at - 6)):
            return True
    return False


def _refuse_nul() -> None:
    """400 for a NUL character in the path, the query, a form field's name or value, an
    uploaded file's name, or a JSON body's keys and strings (the API's views name the field
    of a NUL themselves); and for half a surrogate pair in any JSON body."""
    if "\x00" in request.path or any("\x00" in k or "\x00" in v for k, v in request.args.items(multi=True)):
        raise NulCharacter()
    if request.mimetype in _FORMS:
        if any("\x00" in k or "\x00" in v for k, v in request.form.items(multi=True)) or any(
            "\x00" in k or "\x00" in (f.filename or "") for k, f in request.files.items(multi=True)
        ):
            raise NulCharacter()
    elif request.is_json:
        data = request.get_data(cache=True)
        if data and json.detect_encoding(data) != "utf-8":
            raise NotUtf8Json()
        if has_lone_surrogate(data):
            raise LoneSurrogate()
        if request.blueprint not in _JSON_CHECKED_BY_VIEWS and _NUL_ESCAPE in data and _json_has_nul(data):
            raise NulCharacter()


def _json_has_nul(data: bytes) -> bool:
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return False  # the view answers malformed JSON itself
    pending = [body]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return False


def wants_json() -> bool:
    """An API path, a client that prefers JSON, or a JSON request that does not prefer HTML (a
    script's post: its errors are read by the script, not shown as a page)."""
    accept = request.accept_mimetypes
    best = accept.best_match(["application/json", "text/html"])
    return request.path.startswith("/api/") or (
        best == "application/json" and accept[best] > accept["text/html"]
    ) or (request.is_json and accept["application/json"] >= accept["text/html"])


def init_web(app: Flask, form_action_origins: Iterable[str] = ()) -> None:
    csp = content_security_policy(app, form_action_origins)

    def _request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if 8 <= len(incoming) <= 64 and incoming.isalnum() else uuid.uuid4().hex

    # First of all before_request functions: a request answered early (the sign-in check
    # redirecting, a rate limit) still has its ID in the log, the audit log and the header.
    app.before_request_funcs.setdefault(None, []).insert(0, _request_id)
    app.before_request_funcs[None].insert(1, _refuse_nul)

    inline_styles = csp.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")
    in_teams = csp.replace("frame-ancestors 'none'", "frame-ancestors " + " ".join(TEAMS_FRAME_ANCESTORS))

    @app.after_request
    def _security_headers(response):
        relaxed = request.endpoint in app.extensions.get(INLINE_STYLE_ENDPOINTS, ())
        framed = request.endpoint in app.extensions.get(TEAMS_FRAME_ENDPOINTS, ())
        response.headers.setdefault("Content-Security-Policy",
                                    in_teams if framed else inline_styles if relaxed else csp)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if not framed:  # (frame-ancestors decides for the others: X-Frame-Options cannot name hosts)
            response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        response.headers["X-Request-ID"] = getattr(g, "request_id", "")
        if app.config.get("HSTS"):
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        if response.mimetype == "text/html":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    def render_error(code: int, title: str, message: str):
        for prefix, renderer in app.extensions.get(ERROR_RENDERERS, ()):
            if request.path.startswith(prefix):
                return renderer(code, title, message)
        if wants_json():
            return jsonify(error=title, message=message), code
        return render_template("errors/error.html", code=code, title=title, message=message), code

    @app.errorhandler(CSRFError)
    def _csrf(e):
        if not is_public_endpoint(app, request.endpoint) and not current_user.is_authenticated:
            # Signed out in this browser (the session, and the form's token with it, went): the
            # page or the script is asked to sign in (a script gets its 401), not told the form expired.
            return app.login_manager.unauthorized()  # type: ignore[attr-defined]
        return render_error(
            400,
            _("フォームの有効期限が切れました"),
            _("ページを再読み込みしてから、もう一度操作してください。入力内容は送信されていません。"),
        )

    @app.errorhandler(NulCharacter)
    def _nul(e):
        return render_error(400, _("使用できない文字が含まれています"),
                            _("入力内容、ファイル名またはアドレスに NUL 文字（U+0000）が含まれています。"
                              "取り除いてから、もう一度送信してください。"))

    @app.errorhandler(LoneSurrogate)
    def _surrogate(e):
        return render_error(400, _("使用できない文字が含まれています"),
                            _("JSON の文字列に、対になっていないサロゲート（\\ud800 など、文字として読めないもの）が"
                              "含まれています。UTF-8 の正しい文字にしてから、もう一度送信してください。"))

    @app.errorhandler(NotUtf8Json)
    def _not_utf8(e):
        return render_error(400, _("リクエストが正しくありません"),
                            _("JSON は UTF-8 で送ってください。"))

    @app.errorhandler(400)
    def _bad_request(e):
        return render_error(400, _("リクエストが正しくありません"), _("入力内容を確認して、もう一度お試しください。"))

    @app.errorhandler(403)
    def _forbidden(e):
        return render_error(403, _("アクセスできません"), _("このページを表示する権限がありません。"))

    @app.errorhandler(404)
    def _not_found(e):
        return render_error(404, _("ページが見つかりません"), _("お探しのページは移動または削除された可能性があります。"))

    @app.errorhandler(405)
    def _method(e):
        return render_error(405, _("この操作はできません"), _("このページはその方法では利用できません。"))

    @app.errorhandler(413)
    def _too_large(e):
        return render_error(413, _("ファイルが大きすぎます"), _("送信できるサイズの上限を超えています。"))

    @app.errorhandler(416)
    def _range_not_satisfiable(e):
        response = make_response(render_error(416, _("指定された位置はファイルにありません"),
                                              _("ファイルの長さを超えた位置が求められました。ページを再読み込みしてください。")))
        length = getattr(e, "length", None)
        if isinstance(length, int):  # (as werkzeug's own answer: the file's length)
            response.headers["Content-Range"] = f"bytes */{length}"
        return response

    @app.errorhandler(429)
    def _too_many(e):
        response = make_response(render_error(
            429,
            _("アクセスが集中しています"),
            _("短い時間に多くの操作が行われました。しばらく待ってから、もう一度お試しください。"),
        ))
        response.headers["Retry-After"] = str(_retry_after())
        return response

    @app.errorhandler(RecursionError)
    def _too_deep(e):
        # JSON nested thousands deep: the standard decoder gives up with RecursionError, which is
        # not the ValueError that get_json(silent=True) and the views' parsers catch.
        _end_transaction()
        if request.is_json:
            return render_error(400, _("リクエストが正しくありません"),
                                _("JSON の入れ子が深すぎるため読めません。内容を確認してください。"))
        log.error("recursion too deep", exc_info=e, extra={"status": 500})
        return _server_error(e)

    @app.errorhandler(IntegrityError)
    def _collided(e):
        # A change that a unique index (or another constraint) refused at its flush or commit:
        # almost always the same form sent twice at once (a double click, two tabs), whose
        # first copy has been saved. Nothing of this request was saved.
        _end_transaction()
        log.warning("a change was refused by a constraint (sent twice at once?)", exc_info=e, extra={"status": 409})
        return render_error(
            409,
            _("同じ操作がほぼ同時に行われました"),
            _("この操作は保存されていません。先に届いた操作が反映されている場合があります。ページを開き直して内容を確認してください。"),
        )

    @app.errorhandler(OperationalError)
    def _busy(e):
        _end_transaction()
        if not is_retryable(e):
            log.error("database error", exc_info=e, extra={"status": 500})
            return _server_error(e)
        # A deadlock, lock timeout or SQLite's busy database: the other transaction went on.
        log.warning("a change waited too long for another (retry)", exc_info=e, extra={"status": 503})
        response = make_response(render_error(
            503,
            _("ただいま混み合っています"),
            _("この操作は保存されていません。少し待ってから、もう一度お試しください。"),
        ))
        response.headers["Retry-After"] = "2"
        return response

    @app.errorhandler(500)
    def _server_error(e):
        # An unhandled exception was already logged by Flask (app.logger, with the request
        # fields of lms.common.logging); log only an explicit abort(500) here.
        if getattr(e, "original_exception", None) is None and not isinstance(e, OperationalError):
            log.error("server error", exc_info=e, extra={"status": 500})
        _end_transaction()  # (a failed flush leaves the session unusable: the page reads the user)
        return render_error(
            500,
            _("システムエラーが発生しました"),
            _("ご不便をおかけしています。時間をおいてもう一度お試しください。問題が続く場合は研修担当にお問い合わせください。"),
        )


def _end_transaction() -> None:
    """Roll back what the failed request left in the database session, so that the error page
    (its menu reads the signed-in user) can use it."""
    try:
        db.session.rollback()
    except Exception:  # noqa: BLE001 - the page must still be answered
        log.warning("could not roll back before the error page", exc_info=True)


def _retry_after() -> int:
    """Seconds until the limit that refused this request lets the client in again."""
    try:
        breached = limiter.current_limit
        if breached is not None:
            return max(1, int(breached.reset_at - time.time()) + 1)
    except Exception:  # the counters' store is unreachable: fall back to a minute
        log.warning("could not read the rate limit's reset time", exc_info=True)
    return 60
