"""The contract with the Teams area: import_recording and attach_transcript."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lms.archives import recording_import
from lms.archives.models import Archive, ArchiveFile, TranscriptCue
from lms.archives.storage import get_storage
from lms.common.errors import InvalidInput
from tests import factories
from tests.archives.conftest import VTT_TEXT, sha256, video_bytes


def chunks(data: bytes, size: int = 1000):
    for i in range(0, len(data), size):
        yield data[i : i + size]


@pytest.fixture
def session(db, owned_course):
    return factories.make_session(owned_course[1], title="第2回")


def test_import_creates_a_draft_archive_once(db, session):
    data = video_bytes("mp4")
    archive = recording_import.import_recording(session.id, "rec-1", chunks(data), "../rec.mp4", "video/mp4", len(data))
    db.session.commit()
    assert archive.status == "draft" and archive.source == "teams" and archive.session_id == session.id
    [video] = archive.files
    assert video.status == "ready" and video.sha256 == sha256(data) and video.duration_seconds == 6
    assert video.filename == "rec.mp4"
    assert b"".join(get_storage().open_range(video.storage_key)) == data

    def must_not_be_read():
        raise AssertionError("chunks read on the second call")
        yield b""

    again = recording_import.import_recording(session.id, "rec-1", must_not_be_read(), "rec.mp4", "video/mp4", None)
    assert again.id == archive.id
    assert db.session.scalar(select(func.count()).select_from(Archive)) == 1


def test_import_refuses_non_video_and_truncated_downloads(db, session, app):
    from pathlib import Path

    with pytest.raises(InvalidInput, match="動画"):
        recording_import.import_recording(session.id, "rec-2", chunks(b"<html>error</html>" * 10), "r.mp4", "video/mp4", None)
    data = video_bytes("mp4")
    with pytest.raises(InvalidInput, match="途中まで"):
        recording_import.import_recording(session.id, "rec-3", chunks(data[:5000]), "r.mp4", "video/mp4", len(data))
    assert db.session.scalar(select(func.count()).select_from(Archive)) == 0
    root = Path(app.config["LMS_STORAGE_DIR"])
    assert not [p for p in root.rglob("*") if p.is_file()]


def test_attach_transcript_is_idempotent_and_searchable(db, session, make_user):
    data = video_bytes("mp4")
    archive = recording_import.import_recording(session.id, "rec-4", chunks(data), "r.mp4", "video/mp4", len(data))
    captions = recording_import.attach_transcript(archive.id, VTT_TEXT, "transcript-1")
    db.session.commit()
    assert captions.kind == "captions" and captions.graph_content_id == "transcript-1"
    assert recording_import.attach_transcript(archive.id, VTT_TEXT, "transcript-1").id == captions.id
    assert db.session.scalar(select(func.count()).select_from(ArchiveFile).where(ArchiveFile.kind == "captions")) == 1
    assert db.session.scalar(select(func.count()).select_from(TranscriptCue)) == 3
    with pytest.raises(InvalidInput):
        recording_import.attach_transcript(archive.id, "not a vtt", "transcript-2")


def test_demo_archives_load_once_with_video_and_captions(db, owned_course):
    from lms.archives.demo import load_demo_archives

    assert load_demo_archives() == 2
    assert load_demo_archives() == 0
    archives = db.session.scalars(select(Archive)).all()
    assert len(archives) == 2 and all(a.status == "published" for a in archives)
    for archive in archives:
        kinds = sorted(f.kind for f in archive.files)
        assert kinds == ["captions", "video"]
        video = next(f for f in archive.files if f.kind == "video")
        assert video.duration_seconds == 30
        assert get_storage().size(video.storage_key) == video.size_bytes < 300_000


def test_sweep_on_azure_removes_a_dead_runs_blocks_and_keeps_the_rest(db, session, app, azurite):
    import uuid

    app.config.update(LMS_STORAGE_BACKEND="azure", AZURE_STORAGE_CONNECTION_STRING=azurite,
                      AZURE_STORAGE_CONTAINER=f"t{uuid.uuid4().hex[:12]}")
    storage = get_storage()
    data = video_bytes("mp4")
    archive = recording_import.import_recording(session.id, "rec-5", chunks(data), "r.mp4", "video/mp4", len(data), run="op7_1")
    db.session.commit()
    [video] = archive.files
    assert video.storage_key == recording_import.import_storage_key("op7_1", "rec-5")
    dead = recording_import.import_storage_key("op8_1", "rec-6")  # a killed run's uncommitted blocks
    live = recording_import.import_storage_key("op8_2", "rec-6")  # the run writing now
    for key in (dead, live):
        storage.append_part(key, 0, [data[:1000]])
    try:
        removed = recording_import.sweep_import_files(lambda runs: runs & {"op8_2"})
        assert removed == [dead]
        assert sorted(storage.list_keys("archives/import/")) == sorted([video.storage_key, live])
        assert b"".join(storage.open_range(video.storage_key)) == data
    finally:
        storage.container.delete_container()
