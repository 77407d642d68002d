"""With CSRF protection on (as in production), the API's writes need their bearer token only."""

from __future__ import annotations

import pytest

from tests.api.conftest import assert_problem


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}


def test_a_put_with_a_token_needs_no_csrf_token_and_one_without_is_401(api):
    created = api("writer_a", "put", "/api/v1/staff/C0001", json={"full_name": "保護 太郎"})
    assert created.status_code == 201, created.get_data(as_text=True)
    assert_problem(api(None, "put", "/api/v1/staff/C0001", json={"full_name": "保護 太郎"}), 401, "unauthorized")

