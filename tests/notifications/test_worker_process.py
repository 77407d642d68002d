"""The real worker: huey's consumer in a subprocess, against the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from lms.notifications.models import QUEUED, SENDING, SENT, OutboxMail
from lms.notifications.services import queue_enrollment_notice

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def worker_environment(app, database_url: str, tmp_path: Path, **extra: str) -> dict:
    """The environment of a real job worker on the test's database (huey on a file of the
    test's own, no Redis), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "LMS_DEMO_LOGIN", "FLASK_APP")}
    env.update(
        LMS_ENV="development",
        DATABASE_URL=database_url,
        HUEY_SQLITE_PATH=str(tmp_path / "huey.db"),
        LMS_MAIL_DIR=app.config["LMS_MAIL_DIR"],
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


@pytest.fixture
def worker_env(app, database_url, tmp_path):
    return worker_environment(app, database_url, tmp_path, LMS_OUTBOX_STALE_SECONDS="2")


class Worker:
    def __init__(self, argv, env, log):
        self.log = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


@pytest.fixture
def start_worker(worker_env, tmp_path):
    started = []

    def _start(*argv, **extra_env):
        worker = Worker(list(argv), {**worker_env, **extra_env}, tmp_path / "worker.log")
        started.append(worker)
        return worker

    yield _start
    for worker in started:
        worker.kill(signal.SIGINT)


def _wait_for(predicate, timeout=120.0, what="condition", log=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    detail = Path(log).read_text(errors="replace")[-3000:] if log else ""
    raise AssertionError(f"timed out waiting for {what}\n{detail}")


def _status(db, mail_id):
    db.session.rollback()
    return db.session.scalar(select(OutboxMail.status).where(OutboxMail.id == mail_id))


def _emls(app):
    return sorted(Path(app.config["LMS_MAIL_DIR"]).glob("*.eml"))


def test_huey_consumer_delivers_mail_promptly_after_the_commit(app, db, make_enrollment, start_worker, worker_env,
                                                               tmp_path):
    enrollment = make_enrollment()
    earlier = queue_enrollment_notice(enrollment, "confirmed")  # committed without asking the worker
    db.session.commit()
    # Periodic tasks off (-n): only the job enqueued after a commit can deliver.
    start_worker(str(BIN / "huey_consumer"), "lms.jobs.huey", "-w", "2", "-k", "thread", "-n")
    log = tmp_path / "worker.log"
    time.sleep(3)
    assert _status(db, earlier.id) == QUEUED
    # A change committed by the app (another process) enqueues a delivery job after its commit.
    script = (
        "from lms import create_app\n"
        "from lms.extensions import db\n"
        "from lms.enrollment.models import Enrollment\n"
        "from lms.notifications.services import queue_enrollment_notice\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        f"    e = db.session.get(Enrollment, {enrollment.id})\n"
        "    queue_enrollment_notice(e, 'changed', dedupe_suffix='2')\n"
        "    db.session.commit()\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=worker_env, check=True, timeout=120)
    db.session.rollback()  # a fresh snapshot: the other process committed
    second = db.session.scalar(select(OutboxMail).where(OutboxMail.kind == "changed"))
    _wait_for(lambda: _status(db, second.id) == SENT, what="prompt delivery", log=log)
    # The job delivers everything due, including the mail queued before it.
    assert _status(db, earlier.id) == SENT
    files = _emls(app)
    assert len(files) == 2
    assert {f.name for f in files} == {f"outbox-{earlier.id}.eml", f"outbox-{second.id}.eml"}


def test_worker_killed_mid_send_delivers_exactly_once_after_restart(app, db, make_enrollment, start_worker, tmp_path):
    mail = queue_enrollment_notice(make_enrollment(), "confirmed")
    db.session.commit()
    marker = tmp_path / "sending.marker"
    backend = "tests.notifications.failing_backend:HangsOnce"
    log = tmp_path / "worker.log"
    worker = start_worker(
        str(BIN / "huey_consumer"), "lms.jobs.huey", "-w", "2", "-k", "thread",
        MAIL_BACKEND=backend, TEST_SEND_MARKER=str(marker),
    )
    _wait_for(marker.exists, what="the send to start", log=log)
    worker.kill(signal.SIGKILL)  # dies holding the claim, before anything was written
    assert _status(db, mail.id) == SENDING
    assert _emls(app) == []

    time.sleep(2.5)  # LMS_OUTBOX_STALE_SECONDS=2: the claim is now stale
    start_worker(
        str(BIN / "flask"), "--app", "wsgi", "lms", "worker",
        MAIL_BACKEND=backend, TEST_SEND_MARKER=str(marker),
    )
    _wait_for(lambda: _status(db, mail.id) == SENT, what="takeover after restart", log=log)
    time.sleep(1.0)
    assert len(_emls(app)) == 1
    db.session.rollback()
    row = db.session.get(OutboxMail, mail.id)
    assert row.attempts == 2 and row.claimed_at is None


@pytest.fixture
def redis_url(tmp_path):
    import shutil
    import socket

    from tests.conftest import require

    server = shutil.which("redis-server")
    require(server is not None, "redis-server (apt-get install redis-server) for the Redis worker test")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(tmp_path)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


def test_worker_on_redis_delivers_what_the_app_queues(app, db, make_enrollment, start_worker, worker_env, redis_url,
                                                      tmp_path):
    enrollment = make_enrollment()
    env = {**worker_env, "REDIS_URL": redis_url}
    start_worker(str(BIN / "flask"), "--app", "wsgi", "lms", "worker", "--no-periodic", REDIS_URL=redis_url)
    script = (
        "from lms import create_app\n"
        "from lms.jobs import huey\n"
        "from lms.extensions import db\n"
        "from lms.enrollment.models import Enrollment\n"
        "from lms.notifications.services import queue_enrollment_notice\n"
        "assert type(huey).__name__ == 'RedisHuey', type(huey)\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        f"    e = db.session.get(Enrollment, {enrollment.id})\n"
        "    queue_enrollment_notice(e, 'confirmed')\n"
        "    db.session.commit()\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, check=True, timeout=120)
    db.session.rollback()
    mail = db.session.scalar(select(OutboxMail).where(OutboxMail.enrollment_id == enrollment.id))
    _wait_for(lambda: _status(db, mail.id) == SENT, what="delivery through Redis", log=tmp_path / "worker.log")
    assert [f.name for f in _emls(app)] == [f"outbox-{mail.id}.eml"]
    assert "RedisHuey" in (tmp_path / "worker.log").read_text()
