"""A finished upload is verified off the request path: VERIFYING (nothing visible, the archive
cannot be published), then READY once the worker's SHA-256 pass agrees with the declared
checksum, or FAILED (bytes deleted, the reason shown) when it does not."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from lms.archives import services, tasks, uploads
from lms.archives.models import FAILED, READY, VERIFYING, ArchiveFile, UploadSession
from lms.archives.storage import get_storage
from lms.common.errors import Conflict
from lms.common.jobs import huey
from tests.archives.conftest import make_archive, sha256, tus_create, tus_patch, video_bytes


@pytest.fixture
def archive(owned_course):
    _trainer, course = owned_course
    return make_archive(course, status="draft")


@pytest.fixture
def held_jobs(monkeypatch):
    """The worker is busy: enqueued verifications are held here until the test runs them."""
    held: list[str] = []
    monkeypatch.setattr(tasks, "verify_upload_task", held.append)
    return held


def files_of(db, archive):
    return db.session.scalars(select(ArchiveFile).where(ArchiveFile.archive_id == archive.id)).all()


def received(db, trainer, archive, data: bytes, **metadata) -> UploadSession:
    """An upload whose every byte has arrived, finished (verification enqueued) and committed."""
    upload = uploads.create_upload(trainer, archive, len(data), {"filename": "v.webm", **metadata})
    db.session.flush()
    result = uploads.receive_chunk(uploads.UploadSnapshot.of(upload), 0, [data])
    uploads.save_chunk_result(upload, result)
    uploads.finish_upload(upload)
    db.session.commit()
    return upload


def test_verifying_then_ready_then_publishable(db, owned_course, archive, held_jobs):
    trainer = owned_course[0]
    data = video_bytes("webm")
    upload = received(db, trainer, archive, data, sha256=sha256(data))
    assert held_jobs == [upload.id]  # handed to the worker after the commit, not verified inline
    assert upload.status == VERIFYING
    assert files_of(db, archive) == []  # nothing visible while verifying
    with pytest.raises(Conflict, match="検証"):
        services.publish_archive(trainer, archive)
    db.session.rollback()

    assert uploads.verify_upload(upload.id) == READY
    db.session.expire_all()
    [archive_file] = files_of(db, archive)
    assert archive_file.status == READY and archive_file.sha256 == sha256(data)
    assert archive_file.duration_seconds == 6
    assert db.session.get(UploadSession, upload.id).archive_file_id == archive_file.id
    assert uploads.verify_upload(upload.id) == READY  # a second run (a retried job) changes nothing
    assert len(files_of(db, archive)) == 1
    services.publish_archive(trainer, archive)
    db.session.commit()
    assert archive.status == "published"


def test_checksum_mismatch_fails_with_a_reason_and_nothing_is_published(app, db, owned_course, archive, held_jobs):
    trainer = owned_course[0]
    data = video_bytes("webm")
    upload = received(db, trainer, archive, data, sha256="0" * 64)
    key = upload.storage_key
    assert uploads.verify_upload(upload.id) == FAILED
    db.session.expire_all()
    upload = db.session.get(UploadSession, upload.id)
    assert upload.status == FAILED
    with app.test_request_context():  # (Japanese)
        reason = uploads.failure_text(upload)
    assert "SHA-256" in reason and "もう一度アップロード" in reason
    assert files_of(db, archive) == []
    assert not get_storage().exists(key) and get_storage().part_size(key) == 0
    with pytest.raises(Exception, match="ファイルが1つ以上必要"):
        services.publish_archive(trainer, archive)
    db.session.rollback()
    assert archive.status == "draft"


def test_publish_while_verifying_is_refused_with_a_message_not_an_error(db, client, login_as, owned_course, archive,
                                                                         held_jobs):
    trainer = login_as(user=owned_course[0])
    data = video_bytes("webm")
    upload = received(db, trainer, archive, data)
    page = client.get(f"/archives/manage/{archive.id}").get_data(as_text=True)
    assert "検証中" in page
    response = client.post(f"/archives/manage/{archive.id}/publish")
    assert response.status_code == 302
    shown = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "検証が終わってから公開してください" in shown
    db.session.refresh(archive)
    assert archive.status == "draft"
    uploads.verify_upload(upload.id)
    response = client.post(f"/archives/manage/{archive.id}/publish")
    db.session.refresh(archive)
    assert archive.status == "published"


def test_the_last_patch_says_whether_verification_is_pending(db, client, login_as, owned_course, archive, held_jobs):
    login_as(user=owned_course[0])
    data = video_bytes("webm")
    location = tus_create(client, archive.id, len(data), sha256=sha256(data)).headers["Location"]
    first = tus_patch(client, location, 0, data[:5000])
    assert first.status_code == 204 and "Upload-Verification" not in first.headers
    last = tus_patch(client, location, 5000, data[5000:])
    assert last.status_code == 204 and last.headers["Upload-Verification"] == "pending"
    assert last.headers["Upload-Offset"] == str(len(data))
    # A resent last PATCH, the HEAD and a DELETE see a complete upload.
    assert tus_patch(client, location, 5000, data[5000:]).status_code == 204
    assert client.head(location, headers={"Tus-Resumable": "1.0.0"}).headers["Upload-Offset"] == str(len(data))
    assert client.delete(location, headers={"Tus-Resumable": "1.0.0"}).status_code == 409
    [upload_id] = held_jobs
    assert uploads.verify_upload(upload_id) == READY
    assert [f.status for f in files_of(db, archive)] == [READY]


def test_inline_verification_answers_verified(db, client, login_as, owned_course, archive):
    assert huey.immediate  # tests run jobs inline
    login_as(user=owned_course[0])
    data = video_bytes("mp4")
    location = tus_create(client, archive.id, len(data), sha256=sha256(data), filename="r.mp4").headers["Location"]
    last = tus_patch(client, location, 0, data)
    assert last.status_code == 204 and last.headers["Upload-Verification"] == "verified"


def test_a_lost_verification_is_handed_over_again_by_the_periodic_task(db, owned_course, archive, held_jobs):
    from datetime import timedelta

    from lms.common.timeutil import utcnow

    upload = received(db, owned_course[0], archive, video_bytes("webm"))
    held_jobs.clear()  # the worker lost it
    tasks.run_expire_uploads()
    assert held_jobs == []  # too early to tell
    db.session.execute(UploadSession.__table__.update().values(updated_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    tasks.run_expire_uploads()
    assert held_jobs == [upload.id]


def test_upload_bodies_are_read_in_bounded_pieces(app, db, client, login_as, owned_course, archive, monkeypatch):
    """The PATCH body reaches the storage in pieces of at most 1 MiB, whatever its size."""
    from lms.archives import tus

    login_as(user=owned_course[0])
    data = b"\x1a\x45\xdf\xa3" + bytes(3 * 1024 * 1024)  # a WebM signature, then zeros
    sizes: list[int] = []
    original = uploads.receive_chunk

    def spy(snapshot, offset, chunks):
        def counted():
            for piece in chunks:
                sizes.append(len(piece))
                yield piece
        return original(snapshot, offset, counted())

    monkeypatch.setattr(uploads, "receive_chunk", spy)
    location = tus_create(client, archive.id, len(data) + 10).headers["Location"]
    response = tus_patch(client, location, 0, data)
    assert response.status_code == 204 and response.headers["Upload-Offset"] == str(len(data))
    assert sum(sizes) == len(data) and max(sizes) <= tus.BODY_PIECE
    assert Path(app.config["LMS_STORAGE_DIR"], "parts").exists()


def test_a_file_the_check_cannot_take_fails_instead_of_verifying_for_ever(app, db, owned_course, archive, held_jobs,
                                                                          monkeypatch):
    """Whatever the check did not foresee (here: adding the file fails), the upload fails with a
    reason, its bytes go, and the archive can be published with its other files."""
    trainer = owned_course[0]
    data = video_bytes("webm")
    upload = received(db, trainer, archive, data, sha256=sha256(data))
    key = upload.storage_key

    def broken(*_args, **_kw):
        raise RuntimeError("unforeseen")

    with monkeypatch.context() as patched:
        patched.setattr(uploads, "add_file", broken)
        assert uploads.verify_upload(upload.id) == FAILED
    db.session.expire_all()
    failed = db.session.get(UploadSession, upload.id)
    with app.test_request_context():
        assert "確認できませんでした" in uploads.failure_text(failed)
    assert not get_storage().exists(key)
    good = received(db, trainer, archive, data, sha256=sha256(data))
    assert uploads.verify_upload(good.id) == READY
    services.publish_archive(trainer, archive)
    db.session.commit()
    assert archive.status == "published"
