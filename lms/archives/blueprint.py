"""The archives blueprint, and the one answer every viewer route gives when access is refused.

Its routes live in ``pages`` (lists, the player page, trainers' management), ``playback``
(files, byte ranges, playback links, progress reports) and ``tus`` (resumable uploads);
``routes`` registers them all.
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, render_template, request

from lms.archives.access import Refusal
from lms.archives.storage import blob_origin

bp = Blueprint("archives", __name__, url_prefix="/archives")


@bp.record_once
def _allow_blob_media(state) -> None:
    """With Azure storage, players fetch media from the blob host through SAS redirects: let
    the Content-Security-Policy's media-src allow it (lms.common.web reads CSP_MEDIA_EXTRA
    when it builds the header, after the blueprints are registered)."""
    app = state.app
    if (app.config.get("LMS_STORAGE_BACKEND") or "local").lower() != "azure":
        return
    origin = blob_origin(app.config)
    if origin:
        extra = list(app.config.get("CSP_MEDIA_EXTRA", []))
        if origin not in extra:
            app.config["CSP_MEDIA_EXTRA"] = [*extra, origin]


def refusal_response(refusal: Refusal, *, json: bool | None = None) -> Response:
    """The refusal of a viewer route: ``{"error": message}`` for the player's requests (JSON
    endpoints, or a client that asks for JSON), the refusal page otherwise; never cached."""
    if json is None:
        json = request.accept_mimetypes.best == "application/json"
    if json:
        response = jsonify(error=refusal.message)
    else:
        response = Response(render_template("archives/refused.html", message=refusal.message))
    response.status_code = refusal.status
    response.headers["Cache-Control"] = "no-store"
    return response
