"""Structured logs: one JSON object per line with the request ID, for requests and errors."""

from __future__ import annotations

import json
import logging

import pytest

from lms.common.logging import REQUEST_FIELDS, configure_logging


@pytest.fixture
def app_config(app_config):
    return {**app_config, "LMS_LOG_FORMAT": "json", "PROPAGATE_EXCEPTIONS": False}


@pytest.fixture(autouse=True)
def _restore_text_logging():
    yield
    configure_logging("text")


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_each_request_writes_one_json_line_with_request_id(client, login_as, capsys):
    user = login_as("learner")
    capsys.readouterr()
    response = client.get("/", headers={"X-Request-ID": "abcdef0123456789"})
    assert response.status_code == 200
    lines = [e for e in _json_lines(capsys.readouterr().err) if e["logger"] == "lms.request"]
    assert len(lines) == 1
    entry = lines[0]
    assert set(REQUEST_FIELDS) | {"time", "level", "logger", "message"} <= set(entry)
    assert entry["request_id"] == "abcdef0123456789" == response.headers["X-Request-ID"]
    assert entry["method"] == "GET" and entry["path"] == "/" and entry["status"] == 200
    assert entry["user_id"] == user.id
    assert entry["level"] == "INFO"
    assert isinstance(entry["duration_ms"], float) and entry["duration_ms"] >= 0
    assert entry["remote_addr"] == "127.0.0.1"
    assert entry["time"].endswith("+00:00")


def test_anonymous_request_has_generated_request_id_and_no_user(client, capsys):
    capsys.readouterr()
    response = client.get("/healthz")
    entry = [e for e in _json_lines(capsys.readouterr().err) if e["logger"] == "lms.request"][0]
    assert entry["user_id"] is None
    assert len(entry["request_id"]) == 32 and entry["request_id"] == response.headers["X-Request-ID"]


def test_unhandled_error_is_logged_as_json_with_traceback_and_request_id(app, client, capsys):
    @app.get("/__boom")
    def boom():
        raise ZeroDivisionError("boom")

    from lms.common.public import public

    public(boom)
    capsys.readouterr()
    response = client.get("/__boom")
    assert response.status_code == 500
    assert "システムエラーが発生しました" in response.get_data(as_text=True)
    entries = _json_lines(capsys.readouterr().err)
    errors = [e for e in entries if e["level"] == "ERROR"]
    assert len(errors) == 1
    assert "ZeroDivisionError: boom" in errors[0]["exception"]
    assert errors[0]["request_id"] == response.headers["X-Request-ID"]
    assert errors[0]["path"] == "/__boom" and errors[0]["method"] == "GET"
    request_line = [e for e in entries if e["logger"] == "lms.request"][0]
    assert request_line["status"] == 500 and request_line["level"] == "WARNING"


def test_every_line_is_valid_json_even_with_japanese_and_quotes(app, capsys):
    configure_logging("json")
    logging.getLogger("lms.test").warning('受講者 "山田" の\n登録')
    out = capsys.readouterr().err.strip().splitlines()
    assert len(out) == 1
    assert json.loads(out[0])["message"] == '受講者 "山田" の\n登録'


def test_text_format_is_readable(app, capsys):
    configure_logging("text")
    logging.getLogger("lms.test").info("こんにちは")
    out = capsys.readouterr().err
    assert "INFO lms.test [-] こんにちは" in out


def test_production_defaults_to_json_and_development_to_text():
    import os

    import config

    if os.environ.get("LMS_LOG_FORMAT"):
        pytest.skip("LMS_LOG_FORMAT is set in this environment")
    assert config.ProductionConfig.LMS_LOG_FORMAT == "json"
    assert config.DevelopmentConfig.LMS_LOG_FORMAT == "text"


def test_requests_answered_before_the_view_still_get_their_own_request_id(client, capsys):
    """The sign-in check redirects before any view runs: the redirect carries a fresh ID too."""
    capsys.readouterr()
    first = client.get("/me")
    second = client.get("/me")
    assert first.status_code == second.status_code == 302
    ids = [first.headers["X-Request-ID"], second.headers["X-Request-ID"]]
    assert all(len(i) == 32 for i in ids) and ids[0] != ids[1]
    lines = [e for e in _json_lines(capsys.readouterr().err) if e["logger"] == "lms.request"]
    assert [e["request_id"] for e in lines] == ids
