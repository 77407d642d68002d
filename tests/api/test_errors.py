"""An unexpected failure under /api/v1 is a problem too (500), in the client's language."""

from __future__ import annotations

import pytest

from tests.api.conftest import A, assert_problem


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


def test_a_nul_character_is_refused_not_a_server_error(api, client, db):
    """PostgreSQL can neither store nor compare U+0000: found by schemathesis (a 500 on
    ?employee_number=%00). Refused everywhere: in the path or query (400), in a JSON field
    (422), in a page's form (400)."""
    from tests.factories import make_user, sign_in

    assert_problem(api("reader_a", "get", "/api/v1/enrollments?employee_number=%00"), 400, "bad-request")
    assert_problem(api("reader_a", "get", "/api/v1/staff/K%0001"), 400, "bad-request")
    bad = assert_problem(api("writer_a", "put", "/api/v1/staff/K0001", json={"full_name": "連携\u0000太郎"}), 422)
    assert "full_name" in bad["errors"]
    sign_in(client, make_user("learner", A))
    assert client.get("/courses?q=%00").status_code == 400
    assert client.post("/lang", data={"lang": "en\x00", "next": "/"}).status_code == 400
