"""/healthz says the process is alive; /readyz says whether this machine can serve users:
database, job queue, a live worker (its heartbeat) and archive storage. /hello is for
benchmarks only and is not served in production."""

from __future__ import annotations

import time

import pytest

from lms.common.jobs import HEARTBEAT_KEY, heartbeat_age, huey, worker_heartbeat


@pytest.fixture
def no_heartbeat():
    huey.get(HEARTBEAT_KEY)  # reading without peek removes it
    yield
    huey.get(HEARTBEAT_KEY)


def test_ready_when_every_part_answers(client, no_heartbeat):
    worker_heartbeat()
    response = client.get("/readyz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    checks = body["checks"]
    assert checks["database"] == "ok" and checks["storage"] == "ok"
    assert checks["queue"]["status"] == "ok" and isinstance(checks["queue"]["pending"], int)
    assert checks["worker"]["status"] == "ok" and 0 <= checks["worker"]["heartbeat_age_s"] < 5


def test_not_ready_without_a_worker_heartbeat(client, no_heartbeat):
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["worker"] == {"status": "no heartbeat", "heartbeat_age_s": None}
    assert heartbeat_age() is None


def test_not_ready_when_the_worker_has_been_silent_too_long(app, client, no_heartbeat):
    huey.put(HEARTBEAT_KEY, time.time() - app.config["LMS_WORKER_HEARTBEAT_MAX_AGE"] - 30)
    response = client.get("/readyz")
    assert response.status_code == 503
    worker = response.get_json()["checks"]["worker"]
    assert worker["status"] == "stale" and worker["heartbeat_age_s"] > app.config["LMS_WORKER_HEARTBEAT_MAX_AGE"]


def test_not_ready_when_archive_storage_is_unusable(app, client, tmp_path, no_heartbeat):
    worker_heartbeat()
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the storage directory should be")
    app.config["LMS_STORAGE_DIR"] = str(blocked)
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.get_json()
    assert body["status"] == "error" and body["checks"]["storage"] == "unreachable"
    assert body["checks"]["database"] == "ok"
    # /healthz only asks whether the process is alive: still 200.
    assert client.get("/healthz").status_code == 200


def test_hello_is_not_served_in_production(app, client):
    assert client.get("/hello").data == b"hello"
    app.config["LMS_ENV"] = "production"
    try:
        assert client.get("/hello").status_code == 404
    finally:
        app.config["LMS_ENV"] = "testing"
