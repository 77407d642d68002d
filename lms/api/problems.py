"""RFC 9457 problem details (``application/problem+json``) for every error under /api/v1.

Members: ``type`` (a URN naming the problem, listed in docs/api.md), ``title``, ``status``,
``detail``, ``instance`` (the request's path), plus ``request_id`` and, for a refused
input, ``errors`` (field → messages). Title and detail follow Accept-Language (Japanese
unless the client prefers English: lms.common.i18n).
"""

from __future__ import annotations

import json

from flask import Flask, Response, g, request
from flask_babel import get_locale
from flask_babel import gettext as _
from werkzeug.exceptions import HTTPException

from lms.common.web import register_error_renderer

PREFIX = "/api/v1"
MEDIA_TYPE = "application/problem+json"
_TYPE = "urn:manabi:problem:"

# Status → problem slug, for the errors the application's generic handlers report.
_SLUGS = {
    400: "bad-request", 401: "unauthorized", 403: "forbidden", 404: "not-found", 405: "method-not-allowed",
    409: "conflict", 413: "too-large", 415: "unsupported-media-type", 422: "invalid-input",
    429: "too-many-requests", 500: "server-error", 503: "unavailable",
}


class ApiProblem(Exception):
    """An error of the API, answered as a problem (``slug`` → ``type``)."""

    def __init__(self, status: int, slug: str, title: str, detail: str = "", *,
                 headers: dict[str, str] | None = None, **extensions):
        super().__init__(f"{status} {slug}: {detail}")
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = headers or {}
        self.extensions = extensions


def problem_response(status: int, slug: str, title: str, detail: str = "", *,
                     headers: dict[str, str] | None = None, **extensions) -> Response:
    body = {"type": f"{_TYPE}{slug}", "title": title, "status": status, "detail": detail,
            "instance": request.path, "request_id": getattr(g, "request_id", "")}
    body.update(extensions)
    # ASCII escapes: a detail that quotes the input stays valid even for a lone surrogate sent in it.
    response = Response(json.dumps(body), status=status, mimetype=MEDIA_TYPE)
    response.headers["Content-Language"] = str(get_locale() or "ja")
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def is_api_request() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def init_problems(app: Flask) -> None:
    register_error_renderer(app, PREFIX + "/", _render_generic)

    @app.errorhandler(ApiProblem)
    def _problem(e: ApiProblem):
        return problem_response(e.status, e.slug, e.title, e.detail, headers=e.headers, **e.extensions)

    # Replaces flask-smorest's JSON handler of every HTTPException (registered by Api()):
    # the API answers problems; every other page keeps Werkzeug's own answer.
    @app.errorhandler(HTTPException)
    def _http(e: HTTPException):
        if not is_api_request() or e.code is None or e.code < 400:
            return e.get_response()
        data = getattr(e, "data", None) or {}
        if e.code == 422:
            messages = data.get("messages") or {}
            # webargs nests the messages by location ("query", "json"): the fields are what matter.
            errors = {field: _plain(msgs) for location in messages.values() if isinstance(location, dict)
                      for field, msgs in location.items()}
            return problem_response(422, "invalid-input", _("入力内容が正しくありません"),
                                    _("リクエストの値を確認してください（errors に項目ごとの理由があります）。"),
                                    errors=errors)
        return problem_response(e.code, _SLUGS.get(e.code, "error"), str(e.name), str(e.description or ""))


def _plain(messages) -> list | dict:
    """A field's messages as JSON takes them: a list of strings (a nested entry's: a dict, by
    field or position). The schemas' messages are lazy (lms.api.schemas), read here in the
    request's language; marshmallow leaves a field's own message unlisted when it is lazy."""
    if isinstance(messages, dict):
        return {str(key): _plain(value) for key, value in messages.items()}
    if isinstance(messages, list | tuple):
        return [_plain(m) if isinstance(m, dict) else str(m) for m in messages]
    return [str(messages)]


def _render_generic(code: int, title: str, message: str) -> Response:
    detail = {
        404: _("この URL には API のリソースがありません。"),
        405: _("このリソースはそのメソッドに対応していません。"),
        429: _("短い時間に多くのリクエストが送られました。Retry-After の秒数だけ待ってから再送してください。"),
        500: _("サーバーでエラーが発生しました。request_id を添えて研修担当にお問い合わせください。"),
    }.get(code, message)
    headers = {}
    valid_methods = getattr(request.routing_exception, "valid_methods", None)
    if code == 405 and valid_methods:
        headers["Allow"] = ", ".join(sorted(valid_methods))
    return problem_response(code, _SLUGS.get(code, "error"), title, detail, headers=headers)
