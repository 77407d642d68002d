"""Rate limits: on sign-in, enrollment and progress reports; keyed by user, else by address;
a clear Japanese (or English) 429 page; memory storage by default, Redis in production."""

from __future__ import annotations

import socket
import uuid

import pytest

from tests.conftest import require


@pytest.fixture
def app_config(app_config):
    return {
        **app_config,
        "RATELIMIT_ENABLED": True,
        "RATELIMIT_STORAGE_URI": "memory://",
        "LMS_LIMIT_SIGN_IN": "3/minute",
        "LMS_LIMIT_ENROLL": "3/minute",
        "LMS_LIMIT_PROGRESS": "3/minute",
        "LMS_LIMIT_EXPORT": "2/minute",
    }


def _statuses(client, method, url, n, **kw):
    return [client.open(url, method=method, **kw).status_code for _ in range(n)]


def test_sign_in_is_limited_by_address_with_a_japanese_page(client):
    statuses = _statuses(client, "POST", "/auth/demo", 4, data={"user_id": "999999"})
    assert 429 not in statuses[:3]
    assert statuses[3] == 429
    response = client.post("/auth/demo", data={"user_id": "999999"})
    assert response.status_code == 429
    body = response.get_data(as_text=True)
    assert "アクセスが集中しています" in body
    assert "しばらく待ってから、もう一度お試しください。" in body
    assert '<html lang="ja">' in body
    # When the window that refused it reopens: within the minute of the 3/minute limit.
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    assert "Content-Security-Policy" in response.headers


def test_429_page_in_english(client):
    client.post("/lang", data={"lang": "en", "next": "/"})
    _statuses(client, "GET", "/auth/demo", 3)
    response = client.get("/auth/demo")
    assert response.status_code == 429
    assert '<html lang="en">' in response.get_data(as_text=True)


def test_other_addresses_keep_their_own_budget(client):
    _statuses(client, "POST", "/auth/demo", 3, data={}, environ_base={"REMOTE_ADDR": "10.0.0.1"})
    assert client.post("/auth/demo", environ_base={"REMOTE_ADDR": "10.0.0.1"}).status_code == 429
    assert client.post("/auth/demo", environ_base={"REMOTE_ADDR": "10.0.0.2"}).status_code != 429


def test_behind_a_proxy_the_forwarded_address_is_the_key(app_config, make_app):
    app = make_app({**app_config, "LMS_PROXY_COUNT": 1})
    proxied = app.test_client()
    for _ in range(3):
        proxied.get("/auth/demo", headers={"X-Forwarded-For": "203.0.113.5"})
    assert proxied.get("/auth/demo", headers={"X-Forwarded-For": "203.0.113.5"}).status_code == 429
    # Same proxy (same REMOTE_ADDR), another client: its own budget.
    assert proxied.get("/auth/demo", headers={"X-Forwarded-For": "203.0.113.6"}).status_code == 200


def test_enrollment_is_limited_per_user_not_per_address(app, client, login_as, make_user):
    login_as("learner")
    statuses = _statuses(client, "POST", "/sessions/999999/enroll", 4)
    assert 429 not in statuses[:3] and statuses[3] == 429
    # Another signed-in user from the same address is not affected.
    other = app.test_client()
    login_as("learner", on=other)
    assert other.post("/sessions/999999/enroll").status_code != 429


def test_enrollment_429_answers_json_to_scripts(client, login_as):
    login_as("learner")
    headers = {"Accept": "application/json"}
    _statuses(client, "POST", "/sessions/999999/enroll", 3, headers=headers)
    response = client.post("/sessions/999999/enroll", headers=headers)
    assert response.status_code == 429
    assert response.is_json
    assert response.get_json()["error"] == "アクセスが集中しています"


def test_progress_reports_are_limited(app, client, login_as):
    require("archives.progress" in app.view_functions, "archives.progress route (archives area)")
    login_as("learner")
    headers = {"Accept": "application/json", "X-CSRFToken": "x"}
    statuses = _statuses(client, "POST", "/archives/files/999999/progress", 4, json={}, headers=headers)
    assert 429 not in statuses[:3] and statuses[3] == 429


def test_limits_off_when_disabled(app_config, make_app):
    app = make_app({**app_config, "RATELIMIT_ENABLED": False})
    plain = app.test_client()
    assert 429 not in _statuses(plain, "GET", "/auth/demo", 6)


def test_redis_storage_url_follows_redis_url(app_config, make_app):
    config = {k: v for k, v in app_config.items() if k != "RATELIMIT_STORAGE_URI"}
    app = make_app({**config, "REDIS_URL": "redis://127.0.0.1:6379/0"})
    assert app.config["RATELIMIT_STORAGE_URI"] == "redis://127.0.0.1:6379/0"
    app = make_app(config)
    assert app.config["RATELIMIT_STORAGE_URI"] == "memory://"


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


def test_limits_are_shared_through_redis_across_app_instances(app_config, make_app):
    """Two app instances (two gunicorn workers) count together when Redis holds the counters."""
    require(_redis_up(), "Redis on 127.0.0.1:6379")

    config = {**app_config, "RATELIMIT_STORAGE_URI": "redis://127.0.0.1:6379/0",
              "RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}"}
    first, second = make_app(config).test_client(), make_app(config).test_client()
    statuses = [c.get("/auth/demo").status_code for c in (first, second, first)]
    assert statuses == [200, 200, 200]
    assert second.get("/auth/demo").status_code == 429
