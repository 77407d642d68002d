"""Faults in the recording import (issue #8).

1. The real worker (``flask --app wsgi lms worker``) is SIGKILLed in the middle of a
   recording download: the local Graph server has sent the first 2 MiB of the content and
   holds the stream open, and the worker has written exactly those bytes to its part file.
   A worker started afterwards sweeps what the dead run left and runs the import again:
   one archive with the recording's bytes and SHA-256, nothing else in storage.
2. Another writer commits while a download is in progress, or while the meeting is looked
   up by its join URL (SQLite: a read transaction kept across a Graph call could not write
   afterwards, "database is locked"), and another run imports the same recording during
   the download (the run re-checks before it writes).
3. The sweep's rules: the bytes of a run at work and every file an archive refers to stay.
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from lms.archives.models import Archive, ArchiveFile
from lms.audit.models import AuditLog
from lms.courses.models import Course
from lms.teams.models import GraphOperation
from tests.notifications.test_worker_process import _wait_for
from tests.teams.conftest import RECORDING_SIZE
from tests.teams.graph_server import mp4_chunks, mp4_sha256
from tests.teams.test_graph_faults import (  # noqa: F401 - start_worker, worker_env: fixtures
    import_op,
    queue_import_elsewhere,
    start_worker,
    worker_env,
)

ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024
SIZE = RECORDING_SIZE
HELD_AT = 2 * MiB  # a multiple of the client's 1 MiB read size: the part reaches exactly this


def _files(app, area: str) -> list[Path]:
    base = Path(app.config["LMS_STORAGE_DIR"]) / area
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []


def _keys(app) -> list[str]:
    base = Path(app.config["LMS_STORAGE_DIR"]) / "objects"
    return [str(p.relative_to(base)) for p in _files(app, "objects")]


def _wait_for_part(app, size: int, timeout: float = 30) -> Path:
    """The part file of the download in progress, once it holds ``size`` bytes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = [p for p in _files(app, "parts") if p.stat().st_size >= size]
        if parts:
            assert len(parts) == 1, parts
            return parts[0]
        time.sleep(0.05)
    raise AssertionError(f"no part of {size} bytes: {[(p, p.stat().st_size) for p in _files(app, 'parts')]}")


def _import_op(db, session_id):
    return import_op(db, session_id, "import_recording")


def _assert_imported_once(app, db, scene):
    """One draft archive: its video is the recording (size, SHA-256 of the stored bytes), its
    captions the transcript; storage holds those two files and nothing else."""
    db.session.rollback()
    archives = db.session.scalars(select(Archive)).all()
    assert [a.graph_recording_id for a in archives] == [scene["recording"]["id"]]
    files = {f.kind: f for f in db.session.scalars(select(ArchiveFile))}
    assert sorted(files) == ["captions", "video"]
    video = files["video"]
    assert video.archive_id == archives[0].id and video.size_bytes == SIZE and video.sha256 == mp4_sha256(SIZE)
    from lms.archives.storage import get_storage

    digest = hashlib.sha256()
    for chunk in get_storage().open_range(video.storage_key):
        digest.update(chunk)
    assert digest.hexdigest() == mp4_sha256(SIZE)
    assert files["captions"].graph_content_id == scene["transcript"]["id"]
    assert _files(app, "parts") == []  # no part left behind
    assert sorted(_keys(app)) == sorted([video.storage_key, files["captions"].storage_key])
    audit = db.session.scalar(select(func.count()).select_from(AuditLog).where(AuditLog.action == "archive.import"))
    assert audit == 1


# ---------------------------------------------------------------- 1. worker killed mid-download


def test_worker_killed_mid_download_is_taken_over_with_one_archive_and_nothing_left_behind(
        ended, app, db, graph_server, worker_env, start_worker, tmp_path):  # noqa: F811
    session, trainer, rec = ended["session"], ended["trainer"], ended["recording"]
    log = tmp_path / "worker.log"
    held = graph_server.hold(f"/recordings/{rec['id']}/content", after_bytes=HELD_AT)
    queue_import_elsewhere(worker_env, session.id, "import_recording", trainer.id)
    worker = start_worker()
    assert held.reached.wait(60), log.read_text(errors="replace")[-3000:]
    part = _wait_for_part(app, HELD_AT)  # the worker has stored 2 MiB and waits for more
    worker.kill(signal.SIGKILL)
    held.release()

    op = _import_op(db, session.id)
    assert op.status == "running" and op.attempts == 1
    assert op.claimed_by.split(":")[1] == str(worker.proc.pid)  # claimed by the process now dead
    assert part.name == f"op{op.id}_1-{hashlib.sha256(rec['id'].encode()).hexdigest()[:24]}.part"
    assert part.stat().st_size == HELD_AT  # what the dead run left: a part no row refers to
    assert db.session.scalar(select(func.count()).select_from(Archive)) == 0  # nothing half-written
    assert db.session.scalar(select(func.count()).select_from(ArchiveFile)) == 0
    assert _keys(app) == []  # nothing committed in storage either

    # A worker started now removes the dead run's part and runs the import again.
    start_worker()
    _wait_for(lambda: _import_op(db, session.id).status == "done", timeout=60, what="the take-over", log=log)
    op = _import_op(db, session.id)
    assert op.attempts == 2 and op.last_error == ""
    assert op.details["imported"] == [rec["id"]] and op.details["transcripts"] == [ended["transcript"]["id"]]
    assert not part.exists()
    _assert_imported_once(app, db, ended)
    video = db.session.scalar(select(ArchiveFile).where(ArchiveFile.kind == "video"))
    assert video.storage_key.startswith(f"archives/import/op{op.id}_2-")  # written by the second run
    # Graph sent the content twice: 2 MiB to the dead run, all of it to the second.
    assert len(graph_server.calls("GET", f"/recordings/{rec['id']}/content")) == 2
    assert "removed 1 file(s) left by interrupted runs" in log.read_text(errors="replace")


# ---------------------------------------------------------------- 2. writers during the download


def _during_download(app, held, action, *, part: bool = True):
    """Run ``action`` (in its own app context and database session) once the import has
    stored 2 MiB of the recording and waits for the rest (``part=False``: once the held
    request has arrived); then let the download finish."""
    done = []

    def run():
        try:
            if held.reached.wait(30):
                if part:
                    _wait_for_part(app, HELD_AT)
                with app.app_context():
                    action()
                done.append(True)
        finally:
            held.release()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, done


def _another_writer(course_id):
    def write():
        from lms.extensions import db as db_

        db_.session.execute(update(Course).where(Course.id == course_id).values(summary="変更しました"))
        db_.session.commit()

    return write


def test_another_writer_committing_during_the_download_does_not_break_the_import(ended, app, client, db, graph_server):
    session, rec = ended["session"], ended["recording"]
    held = graph_server.hold(f"/recordings/{rec['id']}/content", after_bytes=HELD_AT)
    thread, done = _during_download(app, held, _another_writer(session.course_id))
    client.post(f"/teams/sessions/{session.id}/import/recordings")  # runs the operation here (tests)
    thread.join(30)
    assert done == [True]
    op = _import_op(db, session.id)
    assert op.status == "done", op.last_error
    assert db.session.scalar(select(Course.summary).where(Course.id == session.course_id)) == "変更しました"
    _assert_imported_once(app, db, ended)


@pytest.mark.parametrize("kind", ["recordings", "attendance"])
def test_another_writer_committing_while_the_meeting_is_looked_up_does_not_break_the_import(
        kind, ended, app, client, db, graph_server):
    session = ended["session"]
    meeting_id = session.graph_online_meeting_id
    session.graph_online_meeting_id = ""  # not known yet: the import looks it up by join URL first
    db.session.commit()
    held = graph_server.hold("/onlineMeetings", **{"$filter": f"JoinWebUrl eq '{session.join_url}'"})
    thread, done = _during_download(app, held, _another_writer(session.course_id), part=False)
    client.post(f"/teams/sessions/{session.id}/import/{kind}")
    thread.join(30)
    assert done == [True]
    db.session.rollback()
    op = db.session.scalar(select(GraphOperation).where(GraphOperation.kind == f"import_{kind.rstrip('s')}"))
    assert op.status == "done", op.last_error
    assert db.session.scalar(select(Course.summary).where(Course.id == session.course_id)) == "変更しました"
    assert session.graph_online_meeting_id == meeting_id  # found and stored
    if kind == "recordings":
        _assert_imported_once(app, db, ended)


def test_a_recording_imported_by_another_run_during_the_download_is_not_stored_twice(
        ended, app, client, db, graph_server):
    session, rec = ended["session"], ended["recording"]
    held = graph_server.hold(f"/recordings/{rec['id']}/content", after_bytes=HELD_AT)
    other = {}

    def another_run():
        from lms.archives.recording_import import import_recording
        from lms.extensions import db as db_

        archive = import_recording(session.id, rec["id"], mp4_chunks(SIZE), "other.mp4", "video/mp4", SIZE)
        db_.session.commit()
        other["archive_id"] = archive.id

    thread, done = _during_download(app, held, another_run)
    client.post(f"/teams/sessions/{session.id}/import/recordings")
    thread.join(30)
    assert done == [True]
    op = _import_op(db, session.id)
    assert op.status == "done", op.last_error
    # The other run's archive is the one; the bytes this run stored meanwhile are gone.
    _assert_imported_once(app, db, ended)
    video = db.session.scalar(select(ArchiveFile).where(ArchiveFile.kind == "video"))
    assert video.archive_id == other["archive_id"] and video.filename == "other.mp4"
    assert not video.storage_key.startswith(f"archives/import/op{op.id}_")


# ---------------------------------------------------------------- 3. what the sweep removes


def test_sweep_keeps_live_runs_and_archive_files_and_removes_what_dead_runs_left(ended, app, db, client):
    from lms.archives.recording_import import import_storage_key
    from lms.archives.storage import get_storage
    from lms.teams.services import sweep_recording_imports

    session = ended["session"]
    client.post(f"/teams/sessions/{session.id}/import/recordings")
    op = _import_op(db, session.id)
    assert op.status == "done"
    imported = db.session.scalar(select(ArchiveFile.storage_key).where(ArchiveFile.kind == "video"))
    running = GraphOperation(session_id=session.id, kind="import_recording", status="running", attempts=3,
                             claimed_by="elsewhere:1:1")
    db.session.add(running)
    db.session.commit()
    storage = get_storage()
    live_part = import_storage_key(f"op{running.id}_3", "rec-a")  # being written by a live run
    live_object = import_storage_key(f"op{running.id}_3", "rec-b")  # stored, its rows not yet committed
    dead_part = import_storage_key(f"op{running.id}_2", "rec-a")  # an earlier attempt of that operation
    done_object = import_storage_key(f"op{op.id}_1", "rec-c")  # its run finished: no archive refers to it
    young = import_storage_key(None, "rec-d")  # a random name (no run): kept a day
    old = import_storage_key(None, "rec-e")
    for key in (live_part, dead_part, young, old):
        storage.append_part(key, 0, [b"partial"])
    for key in (live_object, done_object):
        storage.write_object(key, [b"whole"], "video/mp4")
    day_ago = time.time() - 25 * 3600
    os.utime(storage._part(old), (day_ago, day_ago))

    removed = sweep_recording_imports()
    assert sorted(removed) == sorted([dead_part, done_object, old])
    left = storage.list_keys("archives/import/")
    assert sorted(left) == sorted([imported, live_part, live_object, young])
    assert storage.part_size(live_part) == len(b"partial") and storage.exists(live_object)
    assert b"".join(storage.open_range(imported)) != b""  # the archive's file is untouched
    assert sweep_recording_imports() == []
