"""U+0000 wherever a request can carry text: PostgreSQL can neither store nor compare it, so
one reaching a query is a 500. The walk sends every route that takes a body, with real
objects' ids, as each role: a form whose field names hold NUL, an upload whose file name
holds NUL, and JSON with NUL in keys and values. Each is a 4xx (or the page's own form
error), never a 5xx."""

from __future__ import annotations

import io
import json

import pytest

from lms.common.jobs import worker_heartbeat
from tests.security.test_id_bounds import ROLES, _as, _methods, _path

JSON = json.dumps({"a\u0000": "b\u0000", "full_name": "連携\u0000", "entries": [{"employee_number": "\u0000"}],
                   "position": "\u0000", "code": "\u0000", "value": ["\u0000"]})


@pytest.fixture
def app_config(app_config):
    return {**app_config, "PROPAGATE_EXCEPTIONS": False, "LMS_LOG_REQUESTS": False}


def _bodies():
    yield "names", {"data": {"title\x00": "x", "name\x00": "x", "q": "x"}}
    yield "file", {"data": {"file": (io.BytesIO("番号,氏名\nK1,連携\n".encode()), "名簿\x00.csv"),
                            "upload": (io.BytesIO(b"WEBVTT\n"), "a\x00.vtt")},
                   "content_type": "multipart/form-data"}
    yield "json", {"data": JSON, "content_type": "application/json"}


def test_nul_in_names_files_and_json_is_refused_without_a_crash(app, world):
    params, users = world
    worker_heartbeat()
    crashes = []
    walked = 0
    for rule in app.url_map.iter_rules():
        methods = [m for m in _methods(rule) if m not in ("GET", "OPTIONS")]
        if rule.endpoint == "static" or not methods:
            continue
        walked += 1
        url = _path(rule, params)
        for method in methods:
            for role in ROLES:
                for kind, body in _bodies():
                    response = _as(app, users[role]).open(url, method=method, buffered=True, **body)
                    if response.status_code >= 500:
                        crashes.append(f"{method} {url} {kind} as {role}: {response.status_code}")
    assert walked > 60
    assert not crashes, "\n".join(crashes)
