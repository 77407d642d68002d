"""Recordings stream into a draft archive once; transcripts become WebVTT captions."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from sqlalchemy import func, select

from lms.archives.models import DRAFT, Archive, ArchiveFile
from lms.common.timeutil import utcnow
from lms.teams.models import GraphOperation
from tests.teams.conftest import RECORDING_SIZE
from tests.teams.graph_server import mp4_sha256

SIZE = RECORDING_SIZE


def test_recording_and_transcript_become_a_draft_archive_once(ended, client, db, graph_server, app):
    session = ended["session"]
    response = client.post(f"/teams/sessions/{session.id}/import/recordings")
    assert response.status_code == 302
    op = db.session.scalar(select(GraphOperation).where(GraphOperation.kind == "import_recording"))
    assert op.status == "done", op.last_error
    archive = db.session.scalar(select(Archive).where(Archive.graph_recording_id == ended["recording"]["id"]))
    assert archive is not None and archive.status == DRAFT and archive.session_id == session.id
    files = {f.kind: f for f in db.session.scalars(select(ArchiveFile).where(ArchiveFile.archive_id == archive.id))}
    video = files["video"]
    assert video.size_bytes == SIZE and video.sha256 == mp4_sha256(SIZE)
    from lms.archives.storage import get_storage

    digest = hashlib.sha256()
    for chunk in get_storage().open_range(video.storage_key):
        digest.update(chunk)
    assert digest.hexdigest() == mp4_sha256(SIZE)  # the stored bytes are the recording's
    captions = files["captions"]
    assert captions.graph_content_id == ended["transcript"]["id"]
    transcript_calls = graph_server.calls("GET", "/transcripts/")
    assert transcript_calls[-1].query == {"$format": "text/vtt"}
    assert graph_server.content_bytes_sent == SIZE

    # again (periodic task, webhook, button): nothing is downloaded or created twice
    client.post(f"/teams/sessions/{session.id}/import/recordings")
    assert db.session.scalar(select(func.count()).select_from(Archive)) == 1
    assert db.session.scalar(select(func.count()).select_from(ArchiveFile)) == 2
    assert len(graph_server.calls("GET", "/content")) == 2  # one MP4, one VTT: the first run only
    assert graph_server.content_bytes_sent == SIZE


def test_an_interrupted_download_stores_nothing_and_is_retried(ended, client, db, graph_server):
    session = ended["session"]
    graph_server.fail("/recordings/", 503, times=None, method="GET")
    client.post(f"/teams/sessions/{session.id}/import/recordings")
    op = db.session.scalar(select(GraphOperation).where(GraphOperation.kind == "import_recording"))
    assert op.status == "failed" and "503" in op.last_error and op.details["retryable"] is True
    assert db.session.scalar(select(func.count()).select_from(Archive)) == 0
    graph_server.faults.clear()
    from lms.teams.services import execute_operation

    execute_operation(op.id)
    db.session.refresh(op)
    assert op.status == "done"
    assert db.session.scalar(select(func.count()).select_from(Archive)) == 1


def test_nightly_catch_up_uses_get_all_recordings_and_queues_the_session(ended, db, graph_server, app):
    from lms.teams.graph import client_from_app
    from lms.teams.services import catch_up_recordings_with

    session = ended["session"]
    end = utcnow()
    result = catch_up_recordings_with(client_from_app(), session.graph_organizer, end - timedelta(days=2), end)
    db.session.commit()
    assert result["recordings"] == 1 and result["transcripts"] == 1 and result["sessions"] == [session.id]
    call = graph_server.calls("GET", "getAllRecordings")[0]
    assert f"meetingOrganizerUserId='{session.graph_organizer}'" in call.path
    assert "startDateTime=" in call.path and "endDateTime=" in call.path
    assert db.session.scalar(select(Archive).where(Archive.graph_recording_id == ended["recording"]["id"]))


def test_cli_imports_recordings(ended, runner, db):
    result = runner.invoke(args=["lms", "graph-import-recordings", "--session", str(ended["session"].id)])
    assert result.exit_code == 0, result.output
    assert db.session.scalar(select(func.count()).select_from(Archive)) == 1


def test_two_recordings_of_one_meeting_get_titles_told_apart(ended, client, db, graph_server):
    from lms.common.timeutil import as_utc, to_tokyo

    session = ended["session"]
    second_at = as_utc(session.ends_at) + timedelta(minutes=20)
    graph_server.add_recording(session.graph_online_meeting_id, "organizer-oid", 1024 * 1024, second_at)
    assert client.post(f"/teams/sessions/{session.id}/import/recordings").status_code == 302
    titles = sorted(db.session.scalars(select(Archive.title).where(Archive.session_id == session.id)))
    assert len(titles) == 2 and titles[0] != titles[1]
    assert any(title.endswith(f" {to_tokyo(second_at):%H:%M}）") and "（録画 " in title for title in titles), titles
