"""An unexpected failure under /api/v1 is a problem too (500), in the client's language."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_problem


@pytest.fixture
def app_config(app_config):
    return {**app_config, "PROPAGATE_EXCEPTIONS": False, "LMS_LOG_REQUESTS": False}


def test_a_crash_is_a_500_problem(app, client):
    def boom():
        raise RuntimeError("a bug")

    app.add_url_rule("/api/v1/test-crash", "api_v1.test_crash", boom)
    body = assert_problem(client.get("/api/v1/test-crash", headers={"Accept-Language": "en"}), 500, "server-error")
    assert body["title"].isascii() and body["request_id"]
    assert "a bug" not in body["detail"]
