"""Absolute links into the app for mails and files, built without a request (the worker has
none): ``LMS_BASE_URL`` + the endpoint's path."""

from __future__ import annotations

from functools import lru_cache

from flask import current_app, has_app_context


def base_url() -> str:
    configured = current_app.config.get("LMS_BASE_URL") if has_app_context() else None
    return (configured or "http://127.0.0.1:5000").rstrip("/")


def app_url(endpoint: str, fallback: str, **values) -> str:
    """``LMS_BASE_URL`` + the path of ``endpoint`` (``fallback`` when it is not registered)."""
    path = fallback
    if has_app_context():
        path = _app_path(current_app.url_map, endpoint, fallback, tuple(sorted(values.items())))
    return f"{base_url()}{path}"


@lru_cache(maxsize=1024)
def _app_path(url_map, endpoint: str, fallback: str, values: tuple) -> str:
    try:
        return url_map.bind("localhost").build(endpoint, dict(values))
    except Exception:  # noqa: BLE001 - endpoint not registered (yet): the fallback path
        return fallback
