"""tus 1.0.0 uploads: creation, offsets, resume, termination, expiry; type, size and SHA-256 checks."""

from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import select

from lms.archives.models import CAPTIONS, FAILED, READY, SLIDES, VIDEO, ArchiveFile, TranscriptCue, UploadSession
from lms.archives.storage import get_storage
from lms.common.filenames import sanitise_filename
from tests.archives.conftest import (
    TUS,
    VTT_TEXT,
    make_archive,
    sha256,
    tus_create,
    tus_metadata,
    tus_patch,
    tus_upload,
    video_bytes,
)


@pytest.fixture
def archive(owned_course):
    _trainer, course = owned_course
    return make_archive(course, status="draft")


@pytest.fixture
def trainer_client(client, login_as, owned_course):
    login_as(user=owned_course[0])
    return client


def files_of(db, archive):
    return db.session.scalars(select(ArchiveFile).where(ArchiveFile.archive_id == archive.id)).all()


def parts_dir(app):
    from pathlib import Path

    return Path(app.config["LMS_STORAGE_DIR"]) / "parts"


def test_options_advertises_protocol(trainer_client):
    response = trainer_client.options("/archives/uploads")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {"creation", "termination", "expiration"}
    assert int(response.headers["Tus-Max-Size"]) >= 4 * 1024**3


def test_create_patch_in_chunks_makes_a_verified_ready_file(app, db, trainer_client, archive):
    data = video_bytes("webm")
    created = tus_create(trainer_client, archive.id, len(data), filename="第1回 録画.webm", sha256=sha256(data))
    assert created.status_code == 201
    assert created.headers["Tus-Resumable"] == "1.0.0"
    assert created.headers["Upload-Expires"]
    location = created.headers["Location"]
    head = trainer_client.head(location, headers=TUS)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "0"
    assert head.headers["Upload-Length"] == str(len(data))
    assert head.headers["Cache-Control"] == "no-store"

    first = tus_patch(trainer_client, location, 0, data[:5000])
    assert first.status_code == 204
    assert first.headers["Upload-Offset"] == "5000"
    assert files_of(db, archive) == []  # nothing visible before the end
    second = tus_patch(trainer_client, location, 5000, data[5000:])
    assert second.status_code == 204
    assert second.headers["Upload-Offset"] == str(len(data))

    [archive_file] = files_of(db, archive)
    assert archive_file.status == READY
    assert archive_file.kind == VIDEO
    assert archive_file.content_type == "video/webm"
    assert archive_file.sha256 == sha256(data)
    assert archive_file.size_bytes == len(data)
    assert archive_file.duration_seconds == 6
    assert archive_file.filename == "第1回 録画.webm"
    stored = b"".join(get_storage().open_range(archive_file.storage_key))
    assert stored == data
    assert not any(parts_dir(app).rglob("*.part"))


def test_wrong_offset_is_a_conflict_and_resume_continues_from_head(db, trainer_client, archive):
    data = video_bytes("mp4")
    created = tus_create(trainer_client, archive.id, len(data), filename="rec.mp4")
    location = created.headers["Location"]
    assert tus_patch(trainer_client, location, 0, data[:3000]).status_code == 204
    # A client that lost its place sends the wrong offset: refused, nothing changes.
    conflict = tus_patch(trainer_client, location, 1000, data[1000:4000])
    assert conflict.status_code == 409
    assert "アップロード位置" in conflict.get_data(as_text=True)
    offset = int(trainer_client.head(location, headers=TUS).headers["Upload-Offset"])
    assert offset == 3000
    assert tus_patch(trainer_client, location, offset, data[offset:]).status_code == 204
    [archive_file] = files_of(db, archive)
    assert archive_file.sha256 == sha256(data)
    assert archive_file.content_type == "video/mp4"


def test_dropped_connection_keeps_received_bytes_for_resume(app, db, owned_course, archive):
    """A PATCH whose body stops early (the connection dropped) keeps what arrived."""
    from lms.archives import uploads

    data = video_bytes("webm")
    trainer = owned_course[0]
    upload = uploads.create_upload(trainer, archive, len(data), {"filename": "v.webm"})
    db.session.commit()

    def dropping():
        yield data[:7000]
        raise OSError("connection reset by peer")

    result = uploads.receive_chunk(uploads.UploadSnapshot.of(upload), 0, dropping())
    assert result.disconnected and result.offset == 7000
    uploads.save_chunk_result(upload, result)
    db.session.commit()
    assert upload.status == "uploading" and upload.received_bytes == 7000
    assert files_of(db, archive) == []  # truncated: not visible
    result = uploads.receive_chunk(uploads.UploadSnapshot.of(upload), 7000, [data[7000:]])
    uploads.save_chunk_result(upload, result)
    uploads.finish_upload(upload)
    db.session.commit()
    [archive_file] = files_of(db, archive)
    assert archive_file.sha256 == sha256(data)


def test_truncated_upload_is_not_visible(db, trainer_client, archive):
    data = video_bytes("webm")
    created = tus_create(trainer_client, archive.id, len(data) + 100)
    location = created.headers["Location"]
    assert tus_patch(trainer_client, location, 0, data).status_code == 204
    assert files_of(db, archive) == []
    page = trainer_client.get(f"/archives/manage/{archive.id}")
    assert "中断中" in page.get_data(as_text=True)


def test_body_beyond_declared_length_is_refused(db, trainer_client, archive):
    data = video_bytes("webm")
    created = tus_create(trainer_client, archive.id, 1000)
    response = tus_patch(trainer_client, created.headers["Location"], 0, data[:2000])
    assert response.status_code == 413
    assert files_of(db, archive) == []


def test_wrong_magic_bytes_refused_with_message_and_nothing_left(app, db, trainer_client, archive):
    fake = b"MZ\x90\x00" + b"\x00" * 5000  # an .exe renamed to .mp4
    location, response = tus_upload(trainer_client, archive.id, fake, filename="lecture.mp4", filetype="video/mp4")
    assert response.status_code == 415
    assert "対応していません" in response.get_data(as_text=True)
    assert files_of(db, archive) == []
    assert not any(parts_dir(app).rglob("*.part"))
    upload = db.session.scalar(select(UploadSession))
    assert upload.status == FAILED and upload.error_code == "unsupported_type"
    # The refused upload cannot be continued.
    assert trainer_client.head(location, headers=TUS).status_code in (404, 410)
    # Its notice stays on the archive's page until the trainer takes it off.
    page = trainer_client.get(f"/archives/manage/{archive.id}").get_data(as_text=True)
    dismiss = f"/archives/manage/{archive.id}/uploads/{upload.id}/dismiss"
    assert "lecture.mp4" in page and dismiss in page
    assert trainer_client.post(f"/archives/manage/{archive.id}/uploads/not-an-id/dismiss").status_code == 404
    done = trainer_client.post(dismiss, follow_redirects=True)
    assert done.status_code == 200 and "一覧から消しました" in done.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.scalar(select(UploadSession)) is None
    assert trainer_client.post(dismiss).status_code == 404


def test_sha256_mismatch_refused_and_nothing_left(app, db, trainer_client, archive):
    data = video_bytes("webm")
    _location, response = tus_upload(trainer_client, archive.id, data, sha256="0" * 64)
    assert response.status_code == 460
    assert "SHA-256" in response.get_data(as_text=True)
    assert files_of(db, archive) == []
    assert not any(parts_dir(app).rglob("*.part"))
    assert not any((parts_dir(app).parent / "objects").rglob("*")) or all(
        p.is_dir() for p in (parts_dir(app).parent / "objects").rglob("*")
    )


@pytest.mark.parametrize(
    "name",
    ["../../../etc/passwd", "..\\..\\windows\\system32\\x.mp4", "/abs/path/v.webm", "a\x00b.webm", "..", ""],
)
def test_path_traversal_names_cannot_escape_storage(app, db, trainer_client, archive, name):
    data = video_bytes("webm")
    _location, response = tus_upload(trainer_client, archive.id, data, filename=name)
    assert response.status_code == 204
    [archive_file] = files_of(db, archive)
    assert "/" not in archive_file.filename and "\\" not in archive_file.filename
    assert "\x00" not in archive_file.filename and not archive_file.filename.startswith(".")
    assert archive_file.filename.endswith(".webm")
    assert archive_file.storage_key.startswith(f"archives/{archive.id}/")
    path = get_storage().local_path(archive_file.storage_key).resolve()
    assert path.is_relative_to((parts_dir(app).parent / "objects").resolve())


def test_invisible_formatting_characters_leave_the_name(db, trainer_client, archive):
    """A right-to-left override showed 「研修\u202egpj.exe」 as 「研修exe.jpg」 (and the download
    name kept it)."""
    name = "研\u200b修\u202egpj\u2066\u200f\ufeff\x85.exe"
    assert sanitise_filename(name) == "研修gpj.exe"
    _location, response = tus_upload(trainer_client, archive.id, video_bytes("webm"), filename=name)
    assert response.status_code == 204
    [archive_file] = files_of(db, archive)
    assert archive_file.filename == "研修gpj.webm"


def test_size_limit_refused_at_creation_with_japanese_message(app, trainer_client, archive):
    app.config["LMS_MAX_UPLOAD_BYTES"] = 10_000
    response = tus_create(trainer_client, archive.id, 10_001)
    assert response.status_code == 413
    assert "ファイルが大きすぎます" in response.get_data(as_text=True)
    assert "Location" not in response.headers


def test_kind_limit_for_captions(app, db, trainer_client, archive):
    created = tus_create(trainer_client, archive.id, 11 * 1024 * 1024, filename="big.vtt")
    response = tus_patch(trainer_client, created.headers["Location"], 0, b"WEBVTT\n\n" + b"x" * 100)
    assert response.status_code == 413
    assert "字幕ファイルが大きすぎます" in response.get_data(as_text=True)
    assert not any(parts_dir(app).rglob("*.part"))


def test_terminate_deletes_the_part(app, db, trainer_client, archive):
    data = video_bytes("webm")
    created = tus_create(trainer_client, archive.id, len(data))
    location = created.headers["Location"]
    tus_patch(trainer_client, location, 0, data[:4000])
    assert any(parts_dir(app).rglob("*.part"))
    deleted = trainer_client.delete(location, headers=TUS)
    assert deleted.status_code == 204
    assert not any(parts_dir(app).rglob("*.part"))
    assert trainer_client.head(location, headers=TUS).status_code in (404, 410)
    assert files_of(db, archive) == []


def test_expired_parts_are_cleaned_up_by_the_task_and_cli(app, db, runner, trainer_client, archive):
    from lms.common.timeutil import utcnow

    data = video_bytes("webm")
    created = tus_create(trainer_client, archive.id, len(data))
    location = created.headers["Location"]
    tus_patch(trainer_client, location, 0, data[:4000])
    upload = db.session.scalar(select(UploadSession))
    upload.expires_at = utcnow() - timedelta(minutes=1)
    db.session.commit()
    assert trainer_client.head(location, headers=TUS).status_code == 410
    assert tus_patch(trainer_client, location, 4000, data[4000:]).status_code == 410
    result = runner.invoke(args=["archives", "expire-uploads"])
    assert "expired uploads: 1" in result.output
    assert not any(parts_dir(app).rglob("*.part"))
    db.session.expire_all()
    assert db.session.get(UploadSession, upload.id).status == "expired"


def test_tus_requires_version_and_patch_content_type(trainer_client, archive):
    response = trainer_client.post(f"/archives/manage/{archive.id}/uploads", headers={"Upload-Length": "10"})
    assert response.status_code == 412
    created = tus_create(trainer_client, archive.id, 100)
    bad = trainer_client.patch(created.headers["Location"], data=b"x",
                               headers={**TUS, "Upload-Offset": "0", "Content-Type": "text/plain"})
    assert bad.status_code == 415
    # A size that is not a plain non-negative number is said to be missing, never read as empty.
    for length in ("-5", "+5", "1_000", "５", ""):
        refused = trainer_client.post(f"/archives/manage/{archive.id}/uploads",
                                      headers={**TUS, "Upload-Length": length, "Upload-Metadata": tus_metadata(
                                          filename="video.webm")})
        assert refused.status_code == 400 and "ファイルのサイズが指定されていません" in refused.get_data(as_text=True)


def test_csrf_header_required_for_tus_writes(app, client, login_as, owned_course, archive):
    app.config["WTF_CSRF_ENABLED"] = True
    login_as(user=owned_course[0])
    page = client.get(f"/archives/manage/{archive.id}")
    import re

    token = re.search(r'data-csrf="([^"]+)"', page.get_data(as_text=True)).group(1)
    refused = tus_create(client, archive.id, 100)
    assert refused.status_code == 403
    accepted = tus_create(client, archive.id, 100, headers={"X-CSRFToken": token})
    assert accepted.status_code == 201


def _denials(db):
    from lms.audit.models import AuditLog

    db.session.rollback()
    return [(e.target_type, e.target_id) for e in db.session.scalars(
        select(AuditLog).where(AuditLog.action == "access.denied").order_by(AuditLog.id))]


def test_other_trainers_and_learners_cannot_upload(db, client, login_as, archive):
    """Another trainer's archive is answered exactly as one that does not exist, whatever the
    request says about the upload (permission is checked before anything else about it)."""
    login_as("trainer", "130001")
    for length in (100, 0, "x", 10**20):
        theirs = tus_create(client, archive.id, length)
        nothing = tus_create(client, 2147483647, length)
        assert theirs.status_code == nothing.status_code == 404, length
        assert theirs.get_data() == nothing.get_data()
    assert _denials(db) == [("archive", str(archive.id))] * 4
    assert db.session.scalars(select(UploadSession)).all() == []
    login_as("learner", "131016")
    assert tus_create(client, archive.id, 100).status_code == 403  # no uploads at all for the role
    assert tus_create(client, 2147483647, 100).status_code == 403


def test_other_user_cannot_touch_someone_elses_upload(db, client, login_as, owned_course, archive):
    login_as(user=owned_course[0])
    location = tus_create(client, archive.id, 100).headers["Location"]
    login_as("trainer", "130001")
    unknown = "/archives/uploads/00000000-0000-4000-8000-000000000000"
    assert client.head(location, headers=TUS).status_code == client.head(unknown, headers=TUS).status_code == 404
    assert tus_patch(client, location, 0, b"WEBVTT\n").status_code == 404
    assert ("upload", location.rsplit("/", 1)[1]) in _denials(db)


def test_slides_pdf_pptx_and_fake_pptx(db, trainer_client, archive):
    pdf = b"%PDF-1.4\n" + b"1 0 obj <<>> endobj\n" * 50 + b"trailer << >>\nstartxref\n9\n%%EOF\n"
    _l, response = tus_upload(trainer_client, archive.id, pdf, filename="slides.pdf")
    assert response.status_code == 204
    # A PDF cut short (its end, with the cross-reference offset and %%EOF, lost) opens nowhere.
    _l, response = tus_upload(trainer_client, archive.id, pdf[:600], filename="cut.pdf")
    assert response.status_code == 415
    assert "PDF ファイルとして開けません" in response.get_data(as_text=True)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("ppt/presentation.xml", "<p/>")
    _l, response = tus_upload(trainer_client, archive.id, buffer.getvalue(), filename="slides.pptx")
    assert response.status_code == 204
    other = io.BytesIO()
    with zipfile.ZipFile(other, "w") as z:
        z.writestr("word/document.xml", "<w/>")
    _l, response = tus_upload(trainer_client, archive.id, other.getvalue(), filename="fake.pptx")
    assert response.status_code == 415
    assert "PowerPoint" in response.get_data(as_text=True)
    kinds = sorted((f.kind, f.content_type) for f in files_of(db, archive))
    assert [k for k, _ in kinds] == [SLIDES, SLIDES]


def test_captions_upload_creates_cues_and_replaces_older_captions(db, trainer_client, archive):
    data = VTT_TEXT.encode()
    _l, response = tus_upload(trainer_client, archive.id, data, filename="captions.vtt")
    assert response.status_code == 204
    [first] = files_of(db, archive)
    assert first.kind == CAPTIONS
    cues = db.session.scalars(select(TranscriptCue).where(TranscriptCue.archive_file_id == first.id)).all()
    assert [c.start_ms for c in cues] == [0, 2000, 4000]
    assert cues[0].speaker == "講師 山田" and "Teams 活用研修" in cues[0].text
    assert cues[0].search_text == cues[0].search_text.casefold()
    newer = VTT_TEXT.replace("会議の録画", "会議の録音").encode()
    tus_upload(trainer_client, archive.id, newer, filename="captions2.vtt")
    db.session.expire_all()
    statuses = sorted(f.status for f in files_of(db, archive))
    assert statuses == ["ready", "replaced"]
    assert db.session.scalar(select(TranscriptCue).where(TranscriptCue.archive_file_id == first.id)) is None


def test_broken_vtt_refused(db, trainer_client, archive):
    bad = b"WEBVTT\n\n" + "字幕".encode("shift_jis") * 10
    _l, response = tus_upload(trainer_client, archive.id, bad, filename="c.vtt")
    assert response.status_code == 415
    assert "WebVTT" in response.get_data(as_text=True)
    assert files_of(db, archive) == []


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be"])
def test_utf16_captions_are_told_to_be_utf8(db, trainer_client, archive, encoding):
    """Saved as "Unicode" (UTF-16, with its byte-order mark): the message says UTF-8, not that
    the type is unknown."""
    body = VTT_TEXT.encode(encoding)
    if encoding == "utf-16-be":
        body = b"\xfe\xff" + body
    _l, response = tus_upload(trainer_client, archive.id, body, filename="c.vtt")
    assert response.status_code == 415
    assert "UTF-8" in response.get_data(as_text=True)
    assert files_of(db, archive) == []


def test_a_cue_with_an_impossible_time_is_skipped_not_the_whole_file(db, trainer_client, archive):
    body = ("WEBVTT\n\n99:99:99.000 --> 00:00:02.000\nx\n\n00:00:01.000 --> 100000000:00:00.000\ny\n\n"
            "00:00:03.000 --> 00:00:05.000\n残る字幕\n").encode()
    _l, response = tus_upload(trainer_client, archive.id, body, filename="c.vtt")
    assert response.status_code in (200, 204), response.get_data(as_text=True)
    [captions] = files_of(db, archive)
    cues = db.session.scalars(select(TranscriptCue).where(TranscriptCue.archive_file_id == captions.id)).all()
    assert [(c.start_ms, c.text) for c in cues] == [(3000, "残る字幕")]


def test_captions_with_no_cue_are_refused_and_the_older_captions_kept(db, trainer_client, archive):
    """A mistyped arrow makes every block no cue: such a file replaced working captions with an
    empty track (and took chapters and caption search with it)."""
    tus_upload(trainer_client, archive.id, VTT_TEXT.encode(), filename="captions.vtt")
    [working] = files_of(db, archive)
    bad = b"WEBVTT\n\n00:00:01.000->00:00:05.000\nhello\n"
    _l, response = tus_upload(trainer_client, archive.id, bad, filename="typo.vtt")
    assert response.status_code == 415
    assert "字幕が1件も読み取れません" in response.get_data(as_text=True)
    db.session.expire_all()
    assert [(f.id, f.status) for f in files_of(db, archive)] == [(working.id, READY)]
    assert len(db.session.scalars(select(TranscriptCue).where(TranscriptCue.archive_file_id == working.id)).all()) == 3


def test_captions_with_too_many_cues_say_so_and_the_limit(db, trainer_client, archive):
    times = (f"{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}" for n in range(50_001))
    cues = "".join(f"{t}.000 --> {t}.500\n字幕\n\n" for t in times)
    _l, response = tus_upload(trainer_client, archive.id, f"WEBVTT\n\n{cues}".encode(), chunk=1024 * 1024,
                              filename="long.vtt")
    assert response.status_code == 415
    text = response.get_data(as_text=True)
    assert "字幕の数が多すぎます" in text and "50,000" in text
    assert files_of(db, archive) == []


def test_captions_timed_past_any_video_are_refused(db, trainer_client, archive):
    """Found by a QA pass: a cue at 99999999999999999 hours could not be stored (an integer
    column); the worker's check crashed on every retry and the upload stayed 「検証中」 for ever,
    keeping the archive from being published. Such a cue is skipped (as a browser skips it); a
    file with no other cue is refused as captions with no readable cue."""
    for hours in ("99999999999999999", "600", "1" * 5000):
        bad = f"WEBVTT\n\n00:00:06.000 --> {hours}:00:10.000\n長い\n".encode()
        _l, response = tus_upload(trainer_client, archive.id, bad, filename="c.vtt")
        assert response.status_code == 415, hours[:20]
        assert "字幕が1件も読み取れません" in response.get_data(as_text=True)
    assert files_of(db, archive) == []
    fine = "WEBVTT\n\n595:00:00.000 --> 595:00:10.000\n長い講義の最後\n".encode()
    _l, response = tus_upload(trainer_client, archive.id, fine, filename="c.vtt")
    assert response.status_code == 204
    [captions] = files_of(db, archive)
    assert db.session.scalar(select(TranscriptCue.end_ms).where(TranscriptCue.archive_file_id == captions.id)) == 595 * 3600_000 + 10_000


def test_nul_in_captions_and_upload_metadata_is_no_server_error(db, trainer_client, archive):
    """Found by a hostile-input sweep on PostgreSQL, which cannot store U+0000: WebVTT's parser
    reads a NUL as U+FFFD, so a cue keeps its text; the upload's metadata loses its control
    characters (the file name was already made safe: they leave it)."""
    data = VTT_TEXT.replace("会議の録画", "会議の\x00録画").encode()
    _l, response = tus_upload(trainer_client, archive.id, data, filename="captions.vtt")
    assert response.status_code == 204
    [captions] = files_of(db, archive)
    texts = db.session.scalars(select(TranscriptCue.text).where(TranscriptCue.archive_file_id == captions.id)).all()
    assert any("会議の\ufffd録画" in text for text in texts)
    created = tus_create(trainer_client, archive.id, 100, filename="a\x00.webm", filetype="video/\x00webm")
    assert created.status_code == 201
    upload = db.session.scalar(select(UploadSession).where(UploadSession.status != READY))
    assert (upload.filename, upload.metadata_json["filetype"]) == ("a.webm", "video/webm")


class TestAzureUploads:
    """The same protocol with Azure Blob Storage (Azurite): parts are uncommitted blocks."""

    @pytest.fixture
    def app_config(self, app_config, azurite):
        from lms.common.timeutil import utcnow

        return {**app_config, "LMS_STORAGE_BACKEND": "azure", "AZURE_STORAGE_CONNECTION_STRING": azurite,
                "AZURE_STORAGE_CONTAINER": f"up{utcnow():%H%M%S%f}"}

    def test_chunked_resumable_upload_is_verified_and_committed(self, db, trainer_client, archive):
        data = video_bytes("webm")
        created = tus_create(trainer_client, archive.id, len(data), sha256=sha256(data))
        location = created.headers["Location"]
        assert tus_patch(trainer_client, location, 0, data[:6000]).status_code == 204
        assert trainer_client.head(location, headers=TUS).headers["Upload-Offset"] == "6000"
        assert files_of(db, archive) == []
        assert tus_patch(trainer_client, location, 6000, data[6000:]).status_code == 204
        [archive_file] = files_of(db, archive)
        assert archive_file.status == READY and archive_file.duration_seconds == 6
        assert b"".join(get_storage().open_range(archive_file.storage_key)) == data

    def test_checksum_mismatch_leaves_no_blob(self, db, trainer_client, archive):
        data = video_bytes("mp4")
        _location, response = tus_upload(trainer_client, archive.id, data, sha256="f" * 64)
        assert response.status_code == 460
        assert files_of(db, archive) == []
        upload = db.session.scalar(select(UploadSession))
        assert not get_storage().exists(upload.storage_key)
        assert get_storage().part_size(upload.storage_key) == 0
