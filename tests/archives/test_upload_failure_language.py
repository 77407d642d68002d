"""Why an upload failed is kept without a language (a code and its parameters) and put into
words in the language of whoever reads it: not the uploader's at the time of the failure, nor
the worker's. A reason stored before the codes (free text) is shown as it is."""

from __future__ import annotations

import re

import pytest
from flask_babel import force_locale
from sqlalchemy import select

from lms.archives import reasons, uploads
from lms.archives.models import FAILED, UploadSession
from lms.common.timeutil import utcnow
from lms.extensions import db as _db
from tests.archives.conftest import make_archive, tus_create, tus_patch, tus_upload, video_bytes

EXE = b"MZ\x90\x00" + b"\x00" * 5000  # an .exe renamed to .mp4
JA_REFUSAL = "このファイルの形式には対応していません。動画（MP4・WebM）"
EN_REFUSAL = "This file type is not supported. Upload videos (MP4, WebM)"
JA_CHECKSUM = "ファイルの検証（SHA-256）に失敗しました。"
EN_CHECKSUM = "File verification (SHA-256) failed."
FULL_WIDTH = re.compile("[「」（）]")


@pytest.fixture
def archive(owned_course):
    _trainer, course = owned_course
    return make_archive(course, status="draft")


def upload_notices(html: str) -> str:
    """The list of unfinished uploads on the archive's page."""
    match = re.search(r'<ul class="upload-sessions">(.*?)</ul>', html, re.S)
    assert match, "no list of unfinished uploads"
    return match.group(1)


def page_for(app, login_as, archive, *, role: str | None = None, user=None, locale: str = "ja") -> str:
    viewer = app.test_client()
    if user is not None:
        user.locale = locale
        _db.session.commit()
        login_as(user=user, on=viewer)
    else:
        login_as(role, on=viewer, locale=locale)
    response = viewer.get(f"/archives/manage/{archive.id}")
    assert response.status_code == 200
    return upload_notices(response.get_data(as_text=True))


def test_a_refusal_met_in_japanese_reads_in_english_for_an_english_admin(app, db, client, login_as, owned_course,
                                                                         archive):
    trainer = owned_course[0]
    trainer.locale = "ja"
    login_as(user=trainer)
    _location, response = tus_upload(client, archive.id, EXE, filename="lecture.mp4", filetype="video/mp4")
    assert response.status_code == 415 and JA_REFUSAL in response.get_data(as_text=True)
    upload = db.session.scalar(select(UploadSession))
    assert upload.status == FAILED
    assert (upload.error_code, upload.error) == (reasons.UNSUPPORTED_TYPE, "")  # no language stored

    english = page_for(app, login_as, archive, role="platform_admin", locale="en")
    assert EN_REFUSAL in english and JA_REFUSAL not in english
    assert "lecture.mp4 (" in english and not FULL_WIDTH.search(english), english
    japanese = page_for(app, login_as, archive, user=trainer, locale="ja")
    assert JA_REFUSAL in japanese and EN_REFUSAL not in japanese
    assert "lecture.mp4（" in japanese


def test_a_refusal_met_in_english_reads_in_japanese_once_the_uploader_switches(app, db, client, login_as,
                                                                                owned_course, archive):
    trainer = owned_course[0]
    trainer.locale = "en"
    login_as(user=trainer)
    location, response = tus_upload(client, archive.id, EXE, filename="lecture.mp4", filetype="video/mp4")
    assert response.status_code == 415 and EN_REFUSAL in response.get_data(as_text=True)

    japanese = page_for(app, login_as, archive, user=trainer, locale="ja")
    assert JA_REFUSAL in japanese and EN_REFUSAL not in japanese
    assert JA_REFUSAL in page_for(app, login_as, archive, role="platform_admin", locale="ja")
    # The upload resource answers in the asker's language too (the trainer's is Japanese now).
    gone = tus_patch(client, location, 0, b"x")
    assert gone.status_code == 404 and JA_REFUSAL in gone.get_data(as_text=True)


def test_a_size_refusal_keeps_its_numbers_and_reads_in_each_language(app, db, client, login_as, owned_course,
                                                                     archive):
    trainer = owned_course[0]
    login_as(user=trainer)
    captions = b"WEBVTT\n\n" + b"x" * 100
    created = tus_create(client, archive.id, 11 * 1024 * 1024)
    response = tus_patch(client, created.headers["Location"], 0, captions)
    assert response.status_code == 413
    upload = db.session.scalar(select(UploadSession))
    assert upload.error_code == reasons.KIND_TOO_LARGE
    assert upload.error_params == {"kind": "captions", "limit": 10 * 1024 * 1024}

    english = page_for(app, login_as, archive, role="platform_admin", locale="en")
    assert "file is too large (limit 10 MB)" in english and not FULL_WIDTH.search(english), english
    japanese = page_for(app, login_as, archive, user=trainer, locale="ja")
    assert "字幕ファイルが大きすぎます（上限 10 MB）。" in japanese


def test_the_workers_checksum_failure_reads_in_the_viewers_language(app, db, login_as, owned_course, archive,
                                                                   monkeypatch):
    trainer = owned_course[0]
    monkeypatch.setattr(uploads.tasks, "verify_upload_task", lambda upload_id: None)  # the worker is busy
    data = video_bytes("webm")
    upload = uploads.create_upload(trainer, archive, len(data), {"filename": "v.webm", "sha256": "0" * 64})
    db.session.flush()
    uploads.save_chunk_result(upload, uploads.receive_chunk(uploads.UploadSnapshot.of(upload), 0, [data]))
    uploads.finish_upload(upload)
    db.session.commit()
    assert uploads.verify_upload(upload.id) == FAILED  # no request: the worker speaks Japanese
    db.session.expire_all()
    assert db.session.get(UploadSession, upload.id).error_code == reasons.CHECKSUM_MISMATCH

    english = page_for(app, login_as, archive, role="platform_admin", locale="en")
    assert EN_CHECKSUM in english and JA_CHECKSUM not in english
    assert JA_CHECKSUM in page_for(app, login_as, archive, user=trainer, locale="ja")


def test_a_reason_stored_as_free_text_before_the_codes_is_shown_as_it_is(app, db, client, login_as, owned_course,
                                                                        archive):
    trainer = owned_course[0]
    old = "ファイルの検証（SHA-256）に失敗しました。（旧形式の記録）"
    upload = UploadSession(id="00000000-0000-4000-8000-000000000001", archive_id=archive.id, kind="video",
                           filename="old.webm", declared_length=100, storage_key="archives/old", created_by_id=trainer.id,
                           status=FAILED, error=old, expires_at=utcnow())
    db.session.add(upload)
    db.session.commit()
    assert db.session.get(UploadSession, upload.id).error_code == ""

    assert old in page_for(app, login_as, archive, role="platform_admin", locale="en")
    assert old in page_for(app, login_as, archive, user=trainer, locale="ja")
    assert uploads.failure_text(upload) == old
    # The dismiss button still takes it off.
    upload_id = upload.id
    login_as(user=trainer)
    done = client.post(f"/archives/manage/{archive.id}/uploads/{upload_id}/dismiss", follow_redirects=True)
    assert done.status_code == 200
    db.session.expire_all()
    assert db.session.get(UploadSession, upload_id) is None


def test_an_unknown_code_or_unreadable_params_fall_back_to_the_stored_text_or_a_general_one(app, db, owned_course,
                                                                                           archive):
    upload = UploadSession(status=FAILED, error_code="from_a_newer_version", error_params=None, error="")
    with app.test_request_context():
        assert uploads.failure_text(upload) == "このアップロードは中止されました。最初からやり直してください。"
        upload.error = "古い理由"
        assert uploads.failure_text(upload) == "古い理由"
        upload.error_code, upload.error_params = reasons.KIND_TOO_LARGE, {"kind": "video"}  # no limit
        assert uploads.failure_text(upload) == "古い理由"
        assert reasons.describe(reasons.TOO_LARGE, {"limit": 1024**3}) == "ファイルが大きすぎます（上限 1.0 GB）。"


@pytest.mark.parametrize("code", [value for name, value in vars(reasons).items()
                                  if name.isupper() and isinstance(value, str)])
def test_every_code_has_words_in_both_languages_and_english_uses_ascii_brackets(app, code):
    params = {"kind": "slides", "limit": 200 * 1024 * 1024}
    with app.test_request_context():
        with force_locale("ja"):
            japanese = reasons.describe(code, params)
        with force_locale("en"):
            english = reasons.describe(code, params)
    assert japanese and english and japanese != english
    assert english.isascii(), english
