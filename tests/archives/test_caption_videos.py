"""Captions belong to one video of their archive: an archive of several videos (前半 and 後半)
captions each, each video plays with its own track, caption search and chapters link to the
captions' video, and removing a video removes its captions."""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import func, inspect, select, text

from lms.archives import files, filetypes, recording_import
from lms.archives.models import READY, ArchiveFile, TranscriptCue, UploadSession
from lms.archives.storage import get_storage
from lms.audit.models import AuditLog
from tests import factories
from tests.archives.conftest import VTT_TEXT, add_file, make_archive, tus_create, tus_patch, tus_upload, video_bytes
from tests.test_migrations import MIGRATIONS, empty_database_url, migrated_app  # noqa: F401 - fixtures

SECOND_VTT = """WEBVTT

00:00:00.000 --> 00:00:02.000
<v 講師 佐藤>後半は質疑応答です。

00:00:03.000 --> 00:00:05.000
<v 講師 佐藤>最後にアンケートをお願いします。
"""


@pytest.fixture
def two_videos(db, owned_course):
    """A published archive with two videos, 前半 then 後半: (archive, first, second)."""
    _trainer, course = owned_course
    archive = make_archive(course)
    first = add_file(archive, video_bytes("webm"), "前半.webm")
    second = add_file(archive, video_bytes("webm"), "後半.webm")
    return archive, first, second


@pytest.fixture
def trainer_client(client, login_as, owned_course):
    login_as(user=owned_course[0])
    return client


def tracks(page: str) -> list[str]:
    """The src of every <track> element of a page."""
    return [html.unescape(src) for src in re.findall(r'<track\b[^>]*\bsrc="([^"]+)"', page)]


def player_links(page: str) -> set[tuple[str, str | None, str | None]]:
    """(path, video, t) of every link to a player position on a page."""
    found = set()
    for href in re.findall(r'href="([^"]+)#player"', page):
        url = urlsplit(html.unescape(href))
        query = parse_qs(url.query)
        found.add((url.path, (query.get("video") or [None])[0], (query.get("t") or [None])[0]))
    return found


def captions_of(db, archive) -> list[ArchiveFile]:
    return list(db.session.scalars(select(ArchiveFile).where(
        ArchiveFile.archive_id == archive.id, ArchiveFile.kind == "captions").order_by(ArchiveFile.id)))


def upload_captions(client, archive, text: str, video=None, filename: str = "captions.vtt"):
    extra = {"video_id": str(video.id)} if video is not None else {}
    _location, response = tus_upload(client, archive.id, text.encode(), filename=filename, **extra)
    return response


# ---------------------------------------------------------------- choosing the video


def test_with_two_videos_the_upload_offers_the_videos_by_name(db, trainer_client, two_videos):
    archive, first, second = two_videos
    page = trainer_client.get(f"/archives/manage/{archive.id}").get_data(as_text=True)
    select_html = re.search(r'<select id="upload-video"[^>]*>(.*?)</select>', page, re.S)
    assert select_html is not None and 'for="upload-video"' in page
    options = re.findall(r'<option value="(\d+)">([^<]*)</option>', select_html.group(1))
    assert options == [(str(first.id), "前半.webm"), (str(second.id), "後半.webm")]


def test_with_one_video_no_choice_is_shown(db, trainer_client, owned_course):
    archive = make_archive(owned_course[1], status="draft")
    add_file(archive, video_bytes("webm"), "第1回.webm")
    page = trainer_client.get(f"/archives/manage/{archive.id}").get_data(as_text=True)
    assert "upload-video" not in page


def test_captions_for_the_second_video_play_with_it_and_the_first_keeps_its_own(db, trainer_client, two_videos):
    archive, first, second = two_videos
    assert upload_captions(trainer_client, archive, SECOND_VTT, second, "後半.vtt").status_code == 204
    [for_second] = captions_of(db, archive)
    assert for_second.video_file_id == second.id

    # The second video plays with its track; the first has none yet.
    page = trainer_client.get(f"/archives/{archive.id}?video={second.id}").get_data(as_text=True)
    [src] = tracks(page)
    assert f"/files/{for_second.id}/" in src
    served = trainer_client.get(src)
    assert served.status_code == 200 and "後半は質疑応答です。" in served.get_data(as_text=True)
    assert tracks(trainer_client.get(f"/archives/{archive.id}").get_data(as_text=True)) == []

    # Captions without a choice are the first video's, and replace nothing of the second's.
    assert upload_captions(trainer_client, archive, VTT_TEXT, None, "前半.vtt").status_code == 204
    for_second, for_first = captions_of(db, archive)
    assert for_first.video_file_id == first.id
    assert for_first.status == READY and for_second.status == READY
    [src_first] = tracks(trainer_client.get(f"/archives/{archive.id}?video={first.id}").get_data(as_text=True))
    [src_second] = tracks(trainer_client.get(f"/archives/{archive.id}?video={second.id}").get_data(as_text=True))
    assert f"/files/{for_first.id}/" in src_first and f"/files/{for_second.id}/" in src_second
    assert "皆さん、こんにちは" in trainer_client.get(src_first).get_data(as_text=True)

    # Newer captions for the second video replace its older ones only.
    newer = SECOND_VTT.replace("質疑応答", "意見交換")
    assert upload_captions(trainer_client, archive, newer, second, "後半2.vtt").status_code == 204
    statuses = {c.filename: c.status for c in captions_of(db, archive)}
    assert statuses == {"後半.vtt": "replaced", "前半.vtt": "ready", "後半2.vtt": "ready"}


def test_a_viewer_gets_each_videos_track(db, client, login_as, two_videos):
    archive, first, second = two_videos
    factories.sign_in(client, db.session.get(factories.User, archive.created_by_id))
    upload_captions(client, archive, SECOND_VTT, second, "後半.vtt")
    login_as("learner", "131016")
    [src] = tracks(client.get(f"/archives/{archive.id}?video={second.id}").get_data(as_text=True))
    assert client.get(src).status_code == 200
    assert tracks(client.get(f"/archives/{archive.id}?video={first.id}").get_data(as_text=True)) == []


def test_search_and_chapters_link_to_the_captions_video(db, trainer_client, two_videos):
    archive, first, second = two_videos
    upload_captions(trainer_client, archive, VTT_TEXT, first, "前半.vtt")
    upload_captions(trainer_client, archive, SECOND_VTT, second, "後半.vtt")

    page = trainer_client.get("/archives/search?q=アンケート").get_data(as_text=True)
    assert (f"/archives/{archive.id}", str(second.id), "3") in player_links(page)
    page = trainer_client.get("/archives/search?q=チャット").get_data(as_text=True)
    assert (f"/archives/{archive.id}", str(first.id), "2") in player_links(page)

    # The archive's own search finds the other video's cue and links to that video.
    page = trainer_client.get(f"/archives/{archive.id}?video={first.id}&q=アンケート").get_data(as_text=True)
    assert (f"/archives/{archive.id}", str(second.id), "3") in player_links(page)
    # Chapters and the transcript are the playing video's, and link to it.
    page = trainer_client.get(f"/archives/{archive.id}?video={second.id}").get_data(as_text=True)
    assert "後半は質疑応答です。" in page and "まずはチャットの操作" not in page
    assert (f"/archives/{archive.id}", str(second.id), "3") in player_links(page)
    assert {video for _path, video, t in player_links(page) if t is not None} == {str(second.id)}


# ---------------------------------------------------------------- refusals and bad files


def test_a_video_not_of_this_archive_is_refused_and_nothing_is_started(db, trainer_client, two_videos,
                                                                      owned_course):
    archive, _first, _second = two_videos
    other = make_archive(owned_course[1], title="別の録画")
    foreign = add_file(other, video_bytes("webm"), "別.webm")
    slides_like = add_file(archive, VTT_TEXT.encode(), "captions.vtt")  # a file of the archive, not a video
    before = db.session.scalar(select(func.count()).select_from(UploadSession))
    for value in (str(foreign.id), str(slides_like.id), "999999", "abc", "99999999999999999999"):
        response = tus_create(trainer_client, archive.id, 100, filename="c.vtt", video_id=value)
        assert response.status_code == 404, (value, response.status_code)
        assert "字幕を付ける動画が見つかりません" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(UploadSession)) == before


def test_another_trainer_cannot_add_captions(db, client, login_as, two_videos):
    archive, first, _second = two_videos
    login_as("trainer", "130001")
    response = tus_create(client, archive.id, 100, filename="c.vtt", video_id=str(first.id))
    assert response.status_code == 404
    assert captions_of(db, archive) == []


def test_bad_captions_for_a_video_keep_the_error_and_lose_nothing(db, trainer_client, two_videos):
    archive, _first, second = two_videos
    upload_captions(trainer_client, archive, SECOND_VTT, second, "後半.vtt")
    bad = "WEBVTT\n\n00:00:01.000->00:00:05.000\nhello\n"
    response = upload_captions(trainer_client, archive, bad, second, "typo.vtt")
    assert response.status_code == 415
    assert "字幕が1件も読み取れません" in response.get_data(as_text=True)
    [kept] = [c for c in captions_of(db, archive) if c.status == READY]
    assert kept.filename == "後半.vtt" and kept.video_file_id == second.id
    assert tracks(trainer_client.get(f"/archives/{archive.id}?video={second.id}").get_data(as_text=True))


def test_captions_whose_video_was_removed_during_the_upload_fail_with_the_reason(db, trainer_client, two_videos):
    archive, _first, second = two_videos
    created = tus_create(trainer_client, archive.id, len(SECOND_VTT.encode()), filename="後半.vtt",
                         video_id=str(second.id))
    assert created.status_code == 201
    trainer_client.post(f"/archives/manage/{archive.id}/files/{second.id}/remove")
    response = tus_patch(trainer_client, created.headers["Location"], 0, SECOND_VTT.encode())
    assert response.status_code == 460
    assert "字幕を付ける動画がアップロード中に削除されました" in response.get_data(as_text=True)
    assert [c for c in captions_of(db, archive) if c.status == READY] == []


# ---------------------------------------------------------------- removing a video


def test_removing_a_video_removes_its_captions_only(db, trainer_client, two_videos):
    archive, first, second = two_videos
    upload_captions(trainer_client, archive, VTT_TEXT, first, "前半.vtt")
    upload_captions(trainer_client, archive, SECOND_VTT, second, "後半.vtt")
    for_first, for_second = captions_of(db, archive)
    confirm = trainer_client.get(f"/archives/manage/{archive.id}/files/{second.id}/remove").get_data(as_text=True)
    assert "一緒に削除される字幕" in confirm and "後半.vtt" in confirm
    trainer_client.post(f"/archives/manage/{archive.id}/files/{second.id}/remove")
    db.session.expire_all()
    assert db.session.get(ArchiveFile, for_second.id).status == "removed"
    assert not get_storage().exists(for_second.storage_key)
    assert db.session.scalar(select(func.count()).select_from(TranscriptCue)
                             .where(TranscriptCue.archive_file_id == for_second.id)) == 0
    assert db.session.get(ArchiveFile, for_first.id).status == READY
    entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "archive.file_remove")).one()
    assert entry.details["captions_removed"] == ["後半.vtt"]
    from lms.admin.audit_text import DETAIL_LABELS

    assert "captions_removed" in DETAIL_LABELS
    page = trainer_client.get(f"/archives/{archive.id}").get_data(as_text=True)
    assert len(tracks(page)) == 1


# ---------------------------------------------------------------- Teams transcripts


def test_a_transcript_attaches_to_the_video_of_its_recording(db, owned_course):
    archive = make_archive(owned_course[1], status="draft")
    add_file(archive, video_bytes("webm"), "前半.webm")
    data = video_bytes("mp4")
    key = files.new_storage_key(archive.id)
    get_storage().write_object(key, [data], filetypes.MP4.content_type)
    recorded = files.add_file(archive.id, filetypes.MP4, "録画.mp4", len(data), "0" * 64, key, 3, None,
                              graph_content_id="rec-42")
    db.session.commit()
    first_id = archive.files[0].id

    captions = recording_import.attach_transcript(archive.id, VTT_TEXT, "transcript-42", "rec-42")
    assert captions.video_file_id == recorded.id
    # The data does not say (or names a recording not here): the first video, as before.
    other = recording_import.attach_transcript(archive.id, VTT_TEXT, "transcript-43")
    assert other.video_file_id == first_id
    unknown = recording_import.attach_transcript(archive.id, VTT_TEXT, "transcript-44", "rec-elsewhere")
    assert unknown.video_file_id == first_id
    db.session.commit()
    assert db.session.get(ArchiveFile, captions.id).status == READY  # not replaced by the first video's


def test_an_imported_recording_names_its_recording_for_its_transcript(db, owned_course):
    session = factories.make_session(owned_course[1], title="第2回")
    data = video_bytes("mp4")
    archive = recording_import.import_recording(session.id, "rec-7", iter([data]), "r.mp4", "video/mp4", len(data))
    db.session.commit()
    [video] = archive.files
    assert video.graph_content_id == "rec-7"
    captions = recording_import.attach_transcript(archive.id, VTT_TEXT, "transcript-7", "rec-7")
    assert captions.video_file_id == video.id


# ---------------------------------------------------------------- the migration


def test_the_migration_links_existing_captions_to_the_archives_first_video(migrated_app):  # noqa: F811
    """b3f7d2a96c14: captions from before were the first (ready) video's; they are linked to
    it, so that nothing changes for them. An archive without a video keeps them unlinked."""
    import uuid

    from flask_migrate import downgrade, upgrade

    from lms.archives.models import Archive
    from lms.auth.models import User
    from lms.courses.models import Course
    from lms.extensions import db

    user = User(tenant_id=str(uuid.uuid4()), object_id=str(uuid.uuid4()), display_name="t", email="t@example.jp")
    course = Course(title="研修", summary="", description_md="")
    with_videos, without = Archive(course=course, title="録画"), Archive(course=course, title="字幕だけ")
    db.session.add_all([user, course, with_videos, without])
    db.session.flush()

    def row(archive, kind, status="ready"):
        f = ArchiveFile(archive_id=archive.id, kind=kind, filename=f"{kind}.x", content_type="x",
                        storage_key=f"archives/{uuid.uuid4().hex}", status=status)
        db.session.add(f)
        db.session.flush()
        return f.id

    removed = row(with_videos, "video", "removed")
    first = row(with_videos, "video")
    row(with_videos, "video")
    old_captions = row(with_videos, "captions", "replaced")
    captions = row(with_videos, "captions")
    lone = row(without, "captions")
    db.session.commit()
    db.session.remove()

    downgrade(directory=str(MIGRATIONS), revision="8f4a2c6d1e93")
    assert "video_file_id" not in {c["name"] for c in inspect(db.engine).get_columns("archive_file")}
    upgrade(directory=str(MIGRATIONS))
    with db.engine.connect() as conn:
        links = dict(conn.execute(text("SELECT id, video_file_id FROM archive_file")).all())
    assert links[captions] == first and links[old_captions] == first
    assert links[lone] is None
    assert links[removed] is None and links[first] is None
