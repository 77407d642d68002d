"""Static files under URLs that change with their content, so they can be cached for a year.

Every ``url_for("static", filename=…)`` gets ``?v=<first 12 hex digits of the file's
SHA-256>``. After a deploy a changed ``upload.js`` has a new URL, so no browser runs last
week's copy; an unchanged file keeps its URL and stays cached.

- Behind nginx (docs/nginx.conf) nginx serves /static/ itself: a request with ``v`` is
  answered ``Cache-Control: public, max-age=31536000, immutable``, one without it
  ``no-cache`` (revalidated each time).
- Without nginx (the embedded default) the app does the same: a request whose ``v`` is the
  file's current version gets the year-long header; any other (none, or a stale version
  asked for by an old page) ``no-cache``, so a browser never keeps a stale file for long.

The hash is computed once per file and kept until the file's modification time or size
changes (a deploy), so building a URL costs one ``stat``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from threading import Lock

from flask import Flask, request
from werkzeug.security import safe_join

YEAR_SECONDS = 365 * 24 * 3600
VERSION_LENGTH = 12

_cache: dict[str, tuple[int, int, str]] = {}
_lock = Lock()


def file_version(static_folder: str, filename: str) -> str | None:
    """The version of ``filename`` under ``static_folder``, or None if there is no such file."""
    path = safe_join(static_folder, filename)
    if path is None:
        return None
    try:
        stat = os.stat(path)
    except OSError:
        return None
    cached = _cache.get(path)
    if cached is not None and cached[0] == stat.st_mtime_ns and cached[1] == stat.st_size:
        return cached[2]
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()[:VERSION_LENGTH]
    with _lock:
        _cache[path] = (stat.st_mtime_ns, stat.st_size, digest)
    return digest


def init_static_versions(app: Flask) -> None:
    folder = app.static_folder
    if folder is None:
        return
    static_folder: str = folder

    @app.url_defaults
    def _static_version(endpoint: str, values: dict) -> None:
        if endpoint == "static" and "filename" in values and "v" not in values:
            version = file_version(static_folder, values["filename"])
            if version is not None:
                values["v"] = version

    @app.after_request
    def _static_caching(response):
        if request.endpoint != "static" or response.status_code not in (200, 206, 304):
            return response
        asked = request.args.get("v")
        filename = (request.view_args or {}).get("filename", "")
        if asked and asked == file_version(static_folder, filename):
            response.headers["Cache-Control"] = f"public, max-age={YEAR_SECONDS}, immutable"
            response.expires = None
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response
