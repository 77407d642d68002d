"""Faults: the database connection dropped in the middle of an enrollment, the disk filling
up during an upload. Afterwards nothing is half-written and the user got a clear message.

(Worker killed mid-mail: tests/notifications/test_worker_process.py, stale-claim takeover.
Worker killed mid-Graph-import, and Graph answering 429/503 for minutes:
tests/teams/test_graph_faults.py, with the local Graph server's fault injection.)"""

from __future__ import annotations

import os
import subprocess
import threading

import pytest
from sqlalchemy import create_engine, event, func, select, text

from tests.conftest import require
from tests.factories import make_course, make_session, make_user, sign_in

# ---------------------------------------------------------------- database connection dropped


@pytest.fixture
def app_config(app_config):
    return {**app_config, "PROPAGATE_EXCEPTIONS": False, "LMS_LOG_REQUESTS": False}


def _counts(db, session_id):
    from lms.audit.models import AuditLog
    from lms.courses.models import TrainingSession
    from lms.enrollment.models import Enrollment
    from lms.notifications.models import OutboxMail

    db.session.rollback()
    return {
        "enrollments": db.session.scalar(select(func.count()).select_from(Enrollment)
                                         .where(Enrollment.session_id == session_id)),
        "counter": db.session.get(TrainingSession, session_id).confirmed_count,
        "mails": db.session.scalar(select(func.count()).select_from(OutboxMail)),
        "audit": db.session.scalar(select(func.count()).select_from(AuditLog)),
    }


def test_connection_dropped_in_the_middle_of_an_enrollment(app, db, client):
    if db.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL-only fault (pg_terminate_backend); runs in the PostgreSQL pass")
    learner = make_user("learner", "131016")
    course = make_course(title="障害試験の研修")
    session = make_session(course, capacity=5)
    sign_in(client, learner)
    admin = create_engine(db.engine.url, isolation_level="AUTOCOMMIT")
    fired: list[str] = []
    seen_insert = threading.Event()

    @event.listens_for(db.engine, "before_cursor_execute")
    def _kill_midway(conn, cursor, statement, parameters, context, executemany):
        if fired:
            return
        sql = statement.lstrip().upper()
        if sql.startswith("INSERT INTO ENROLLMENT"):
            seen_insert.set()
            return
        if seen_insert.is_set():
            # The enrollment row is written; the counter, mail and audit rows are not yet:
            # drop this connection from the server side, as a database restart would.
            pid = conn.connection.dbapi_connection.info.backend_pid
            with admin.connect() as other:
                other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            fired.append(statement.split()[0] + " " + " ".join(statement.split()[1:3]))

    try:
        response = client.post(f"/sessions/{session.id}/enroll", headers={"Accept": "application/json"})
    finally:
        event.remove(db.engine, "before_cursor_execute", _kill_midway)
        admin.dispose()
    assert fired, "the fault was injected"
    print(f"fault at {fired[0]!r}: HTTP {response.status_code}")
    after = _counts(db, session.id)
    # The service runs the transaction again on a fresh connection: the learner never sees
    # the fault, and nothing is doubled.
    assert response.status_code == 201, response.get_data(as_text=True)
    assert after["enrollments"] == 1 and after["counter"] == 1
    assert after["mails"] == 1
    assert client.get("/healthz").status_code == 200


# ---------------------------------------------------------------- disk full during an upload


@pytest.fixture
def tiny_disk(tmp_path):
    """A 2 MiB tmpfs as the archive storage (root only); removed afterwards."""
    mount_point = tmp_path / "tiny-storage"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                          capture_output=True, text=True)
    require(done.returncode == 0, f"mount -t tmpfs (root): {done.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def test_disk_full_during_upload_gives_a_clear_message_and_leaves_nothing(tiny_disk, _schema, database_url,
                                                                          app_config):
    from lms import create_app
    from lms.archives.models import Archive, ArchiveFile, UploadSession
    from lms.extensions import db
    from tests.archives.conftest import TUS, tus_create, tus_patch, video_bytes
    from tests.conftest import _empty_tables

    app = create_app({**app_config, "LMS_STORAGE_DIR": str(tiny_disk)})
    with app.app_context():
        try:
            trainer = make_user("trainer", "130001")
            course = make_course(title="障害試験の研修", owner_id=trainer.id)
            archive = Archive(course_id=course.id, title="録画", description="", status="draft",
                              audience="eligible", created_by_id=trainer.id)
            db.session.add(archive)
            db.session.commit()
            client = app.test_client()
            sign_in(client, trainer)
            head = video_bytes("webm")
            data = head + os.urandom(3 * 1024 * 1024)  # larger than the disk
            created = tus_create(client, archive.id, len(data))
            assert created.status_code == 201, created.get_data(as_text=True)
            location = created.headers["Location"]
            offset, response = 0, None
            while offset < len(data):
                response = tus_patch(client, location, offset, data[offset:offset + 512 * 1024])
                if response.status_code != 204:
                    break
                offset = int(response.headers["Upload-Offset"])
            assert response is not None and response.status_code not in (204, 200), "the disk cannot hold it"
            assert response.status_code < 600
            message = response.get_data(as_text=True)
            assert response.status_code != 500 or "システムエラー" in message
            assert response.status_code == 507 and "空き容量が不足" in message, message
            db.session.rollback()
            assert db.session.scalar(select(func.count()).select_from(ArchiveFile)) == 0
            upload = db.session.scalar(select(UploadSession))
            assert upload is None or upload.received_bytes < len(data)
            # The app still answers, and a small file fits once the failed part is gone.
            head_response = client.head(location, headers=TUS)
            assert head_response.status_code in (200, 204, 404, 410)
            client.delete(location, headers=TUS)
            small = tus_create(client, archive.id, len(head))
            assert small.status_code == 201
            done = tus_patch(client, small.headers["Location"], 0, head)
            assert done.status_code == 204, done.get_data(as_text=True)
            db.session.rollback()
            assert db.session.scalar(select(func.count()).select_from(ArchiveFile)) == 1
        finally:
            db.session.remove()
            _empty_tables(db)
            db.engine.dispose()
