"""Serving archive files: HTTP Range and conditional requests, and the access check on every request."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from lms.archives.models import AUDIENCE_ENROLLEES, AUDIENCE_MUNICIPALITIES, ArchiveMunicipality
from lms.common.timeutil import utcnow
from tests import factories
from tests.archives.conftest import VTT_TEXT, add_file, make_archive, video_bytes
from tests.pages import same_page


def url(archive, f, **query):
    q = "&".join(f"{k}={v}" for k, v in query.items())
    return f"/archives/{archive.id}/files/{f.id}/{f.filename}" + (f"?{q}" if q else "")


@pytest.fixture
def viewer(client, login_as):
    login_as("learner", "131016")  # 千代田区: eligible for the course
    return client


def test_range_request_answers_206_with_content_range(viewer, published):
    archive, video = published
    data = video_bytes("webm")
    response = viewer.get(url(archive, video), headers={"Range": "bytes=100-1123"})
    assert response.status_code == 206
    assert response.headers["Accept-Ranges"] == "bytes"
    assert response.headers["Content-Range"] == f"bytes 100-1123/{len(data)}"
    assert response.headers["Content-Length"] == "1024"
    assert response.data == data[100:1124]
    assert response.headers["Content-Type"] == "video/webm"
    suffix = viewer.get(url(archive, video), headers={"Range": "bytes=-10"})
    assert suffix.status_code == 206 and suffix.data == data[-10:]
    # A suffix longer than the file is the whole file (RFC 9110 14.1.3), not a 416.
    for longer in (len(data), len(data) + 1, 10**12):
        whole_range = viewer.get(url(archive, video), headers={"Range": f"bytes=-{longer}"})
        assert whole_range.status_code == 206 and whole_range.data == data
        assert whole_range.headers["Content-Range"] == f"bytes 0-{len(data) - 1}/{len(data)}"
    whole = viewer.get(url(archive, video))
    assert whole.status_code == 200 and whole.data == data
    assert whole.headers["Accept-Ranges"] == "bytes"
    assert "private" in whole.headers["Cache-Control"]


def test_range_beyond_the_end_is_416(viewer, published):
    archive, video = published
    size = len(video_bytes("webm"))
    response = viewer.get(url(archive, video), headers={"Range": f"bytes={size + 10}-"})
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{size}"
    assert "ファイルの長さを超えた位置" in response.get_data(as_text=True)  # (the site's page, in Japanese)


def test_conditional_requests_304_412_and_if_range(viewer, published):
    archive, video = published
    data = video_bytes("webm")
    first = viewer.get(url(archive, video))
    etag = first.headers["ETag"]
    last_modified = first.headers["Last-Modified"]
    assert viewer.get(url(archive, video), headers={"If-None-Match": etag}).status_code == 304
    assert viewer.get(url(archive, video), headers={"If-Modified-Since": last_modified}).status_code == 304
    assert viewer.get(url(archive, video), headers={"If-Match": '"something-else"'}).status_code == 412
    assert viewer.get(url(archive, video), headers={"If-Match": etag}).status_code == 200
    assert viewer.get(url(archive, video),
                      headers={"If-Unmodified-Since": "Thu, 01 Jan 2015 00:00:00 GMT"}).status_code == 412
    # If-Range with the current validator: the range; with a stale one: the whole file.
    same = viewer.get(url(archive, video), headers={"Range": "bytes=0-9", "If-Range": etag})
    assert same.status_code == 206 and same.data == data[:10]
    stale = viewer.get(url(archive, video), headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    assert stale.status_code == 200 and stale.data == data
    # A weak validator never matches in If-Range (RFC 9110 13.1.5: the strong comparison).
    weak = viewer.get(url(archive, video), headers={"Range": "bytes=0-9", "If-Range": f"W/{etag}"})
    assert weak.status_code == 200 and weak.data == data


def test_head_and_download_disposition(viewer, published):
    archive, video = published
    head = viewer.head(url(archive, video))
    assert head.status_code == 200 and head.data == b""
    assert head.headers["Content-Length"] == str(len(video_bytes("webm")))
    download = viewer.get(url(archive, video, download=1))
    disposition = download.headers["Content-Disposition"]
    assert disposition.startswith("attachment;") and "UTF-8''" in disposition
    inline = viewer.get(url(archive, video))
    assert inline.headers["Content-Disposition"].startswith("inline;")


def test_other_municipality_refused_on_every_request(client, login_as, published):
    archive, video = published
    login_as("learner", "131032")  # 港区: not eligible, answered as for an archive that does not exist
    page = client.get(f"/archives/{archive.id}")
    unknown = client.get("/archives/2147483647")
    assert page.status_code == unknown.status_code == 404
    assert "アーカイブが見つかりません" in page.get_data(as_text=True)
    assert same_page(page, f"/archives/{archive.id}", unknown, "/archives/2147483647")
    ranged = client.get(url(archive, video), headers={"Range": "bytes=0-99"})
    assert ranged.status_code == 404
    assert ranged.data.find(video_bytes("webm")[:50]) == -1
    assert archive.title not in client.get("/archives/").get_data(as_text=True)


def test_withdrawal_stops_playback_at_once(db, viewer, published):
    archive, video = published
    assert viewer.get(url(archive, video), headers={"Range": "bytes=0-99"}).status_code == 206
    archive.status = "withdrawn"
    db.session.commit()
    refused = viewer.get(url(archive, video), headers={"Range": "bytes=100-199"})
    assert refused.status_code == 403
    assert "公開を終了しました" in refused.get_data(as_text=True)


def test_expired_window_stops_playback_at_once(db, viewer, published):
    archive, video = published
    archive.available_until = utcnow() + timedelta(hours=1)
    db.session.commit()
    assert viewer.get(url(archive, video), headers={"Range": "bytes=0-99"}).status_code == 206
    archive.available_until = utcnow() - timedelta(seconds=1)
    db.session.commit()
    refused = viewer.get(url(archive, video), headers={"Range": "bytes=100-199"})
    assert refused.status_code == 403
    assert "公開期間は終了しました" in refused.get_data(as_text=True)
    archive.available_until = None
    archive.available_from = utcnow() + timedelta(days=1)
    db.session.commit()
    assert "まだ始まっていません" in viewer.get(url(archive, video)).get_data(as_text=True)


def test_draft_is_hidden_from_learners_but_not_from_its_trainer(db, client, login_as, owned_course, published):
    archive, video = published
    archive.status = "draft"
    db.session.commit()
    login_as("learner", "131016")
    assert client.get(url(archive, video)).status_code == 404  # as if there were none
    login_as(user=owned_course[0])
    assert client.get(url(archive, video), headers={"Range": "bytes=0-9"}).status_code == 206


def test_enrollees_audience_needs_a_confirmed_enrollment(db, client, login_as, owned_course, published):
    from lms.enrollment.models import Enrollment

    archive, video = published
    archive.audience = AUDIENCE_ENROLLEES
    db.session.commit()
    user = login_as("learner", "131016")
    assert client.get(url(archive, video)).status_code == 404
    session = factories.make_session(owned_course[1])
    db.session.add(Enrollment(session_id=session.id, staff_member_id=user.staff_member.id,
                              municipality_id=user.municipality_id, status="waitlisted"))
    db.session.commit()
    assert client.get(url(archive, video)).status_code == 404
    enrollment = db.session.query(Enrollment).one()
    enrollment.status = "confirmed"
    db.session.commit()
    assert client.get(url(archive, video)).status_code == 200


def test_municipalities_audience(db, client, login_as, published):
    archive, video = published
    archive.audience = AUDIENCE_MUNICIPALITIES
    archive.municipalities.append(ArchiveMunicipality(municipality_id=factories.municipality("131032").id))
    db.session.commit()
    login_as("learner", "131032")  # 港区: listed although not eligible for the course
    assert client.get(url(archive, video)).status_code == 200
    login_as("learner", "131016")  # 千代田区: eligible for the course but not listed
    assert client.get(url(archive, video)).status_code == 404


def test_file_of_another_archive_is_404(db, viewer, owned_course, published):
    archive, _video = published
    other = make_archive(owned_course[1], title="別の録画")
    other_file = add_file(other, video_bytes("mp4"), "x.mp4")
    assert viewer.get(f"/archives/{archive.id}/files/{other_file.id}/x.mp4").status_code == 404
    assert viewer.get(f"/archives/{archive.id}/files/999999/x.mp4").status_code == 404


def test_accel_redirect_hands_bytes_to_nginx_after_the_check(app, client, login_as, published):
    archive, video = published
    app.config["LMS_ACCEL_REDIRECT_PREFIX"] = "/_protected_archives"
    login_as("learner", "131016")
    response = client.get(url(archive, video), headers={"Range": "bytes=0-9"})
    assert response.status_code == 200
    assert response.headers["X-Accel-Redirect"] == f"/_protected_archives/{video.storage_key}"
    assert response.data == b""
    login_as("learner", "131032")
    refused = client.get(url(archive, video))
    assert refused.status_code == 404 and "X-Accel-Redirect" not in refused.headers


def test_player_page_has_video_captions_and_chapters(db, viewer, published):
    archive, video = published
    bare = viewer.get(f"/archives/{archive.id}").get_data(as_text=True)
    assert "字幕ボタン" not in bare and "早送りした部分は視聴時間に含まれません。" in bare  # no captions: no caption button
    add_file(archive, VTT_TEXT.encode(), "captions.vtt")
    page = viewer.get(f"/archives/{archive.id}?t=3").get_data(as_text=True)
    assert "<video" in page and 'kind="captions"' in page and 'srclang="ja"' in page
    assert 'data-start="3"' in page
    assert 'data-seek="2"' in page  # a chapter link from the transcript
    assert "字幕は再生画面の字幕ボタンで切り替えられます。" in page
    # Every script, stylesheet and media source is self-hosted (no CDN).
    import re

    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources and all(not s.startswith(("http://", "https://", "//")) for s in sources if not s.startswith("#")), sources


def test_the_description_keeps_its_line_breaks_as_plain_text(db, viewer, published):
    archive, _video = published
    archive.description = "1行目\n2行目 <b>太字</b>"
    db.session.commit()
    page = viewer.get(f"/archives/{archive.id}").get_data(as_text=True)
    assert '<p class="pre-wrap">1行目\n2行目 &lt;b&gt;太字&lt;/b&gt;</p>' in page


def test_each_video_of_an_archive_plays_in_the_player_and_records_its_viewing(db, client, login_as, viewer,
                                                                             owned_course, published):
    """A recording split in 前半/後半 recorded only 前半: the others were bare links (and one of
    unknown length showed 「（）」)."""
    archive, first = published
    add_file(archive, VTT_TEXT.encode(), "captions.vtt")
    second = add_file(archive, video_bytes("mp4"), "後半.mp4")
    unknown = add_file(archive, b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 8, "fake.webm")
    other_archive = make_archive(owned_course[1])
    elsewhere = add_file(other_archive, video_bytes("webm"), "別.webm")
    page = viewer.get(f"/archives/{archive.id}").get_data(as_text=True)
    assert f'data-progress-url="/archives/files/{first.id}/progress"' in page and 'kind="captions"' in page
    assert f'href="/archives/{archive.id}?video={second.id}#player"' in page
    assert "fake.webm</a></li>" in page and "（）" not in page
    page = viewer.get(f"/archives/{archive.id}?video={second.id}").get_data(as_text=True)
    assert f'data-progress-url="/archives/files/{second.id}/progress"' in page
    assert f'<h2 id="player-heading">{second.filename}</h2>' in page
    # Finishing one part is not finishing the archive: the player says so.
    assert "この動画の視聴は完了です（アーカイブの視聴は、すべての動画の視聴で完了します）" in page
    assert "このアーカイブの視聴は完了です" not in page
    assert 'kind="captions"' not in page  # the captions are the first video's
    assert f'href="/archives/{archive.id}?video={first.id}#player"' in page
    assert f"?video={second.id}#" not in page
    report = viewer.post(f"/archives/files/{second.id}/progress", json={"report_id": "start0001", "intervals": []})
    assert report.status_code == 200 and report.get_json()["duration_seconds"] == second.duration_seconds
    for wrong in (elsewhere.id, "x", unknown.id * 10**12):
        page = viewer.get(f"/archives/{archive.id}?video={wrong}").get_data(as_text=True)
        assert f'data-progress-url="/archives/files/{first.id}/progress"' in page


@pytest.fixture
def azure_app_config(app_config, azurite):
    return {**app_config, "LMS_STORAGE_BACKEND": "azure", "AZURE_STORAGE_CONNECTION_STRING": azurite,
            "AZURE_STORAGE_CONTAINER": f"http{utcnow():%H%M%S%f}"}


class TestAzure:
    @pytest.fixture
    def app_config(self, azure_app_config):
        return azure_app_config

    def test_playback_redirects_to_a_fresh_sas_that_serves_ranges(self, app, client, login_as, published):
        archive, video = published
        login_as("learner", "131016")
        response = client.get(url(archive, video))
        assert response.status_code == 302
        assert response.headers["Cache-Control"] == "no-store"
        sas = response.headers["Location"]
        assert "sig=" in sas and "sp=r" in sas
        ranged = requests.get(sas, headers={"Range": "bytes=0-99"}, timeout=10)
        assert ranged.status_code == 206 and ranged.content == video_bytes("webm")[:100]
        # The blob host is allowed as a media source by the Content-Security-Policy.
        origin = sas.split("/devstoreaccount1")[0]
        assert origin in response.headers["Content-Security-Policy"].split("media-src")[1].split(";")[0]
        login_as("learner", "131032")
        assert client.get(url(archive, video)).status_code == 404

    def test_captions_are_served_by_the_app(self, app, client, login_as, published):
        archive, _video = published
        captions = add_file(archive, VTT_TEXT.encode(), "captions.vtt")
        login_as("learner", "131016")
        response = client.get(url(archive, captions))
        assert response.status_code == 200 and response.data.startswith(b"WEBVTT")

    def test_the_app_streams_ranges_of_a_stored_object(self, app, client, login_as, published):
        """Served through the storage API (no local file): the same Range and conditional answers."""
        archive, _video = published
        data = VTT_TEXT.encode()
        captions = add_file(archive, data, "captions.vtt")
        login_as("learner", "131016")
        ranged = client.get(url(archive, captions), headers={"Range": "bytes=7-16"})
        assert ranged.status_code == 206 and ranged.data == data[7:17]
        assert ranged.headers["Content-Range"] == f"bytes 7-16/{len(data)}"
        assert client.get(url(archive, captions), headers={"Range": "bytes=-5"}).data == data[-5:]
        beyond = client.get(url(archive, captions), headers={"Range": f"bytes={len(data) + 1}-"})
        assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(data)}"
        etag = ranged.headers["ETag"]
        assert client.get(url(archive, captions), headers={"If-None-Match": etag}).status_code == 304
        assert client.get(url(archive, captions), headers={"If-Match": '"other"'}).status_code == 412


class TestAzureManagedIdentity:
    """Production's way in: the account URL and the managed identity, no key anywhere."""

    @pytest.fixture
    def app_config(self, app_config, azurite_entra, managed_identity):
        return {**app_config, "LMS_STORAGE_BACKEND": "azure", "AZURE_STORAGE_ACCOUNT_URL": azurite_entra["account_url"],
                "AZURE_STORAGE_CA_BUNDLE": azurite_entra["ca_bundle"],
                "AZURE_STORAGE_CONTAINER": f"mi{utcnow():%H%M%S%f}"}

    def test_playback_redirects_to_a_user_delegation_sas_and_captions_come_from_the_app(
            self, app, client, login_as, published, azurite_entra):
        archive, video = published
        login_as("learner", "131016")
        response = client.get(url(archive, video))
        assert response.status_code == 302 and response.headers["Cache-Control"] == "no-store"
        sas = response.headers["Location"]
        assert sas.startswith(azurite_entra["account_url"] + "/")
        assert "skoid=" in sas and "sktid=" in sas and "sp=r" in sas and "sig=" in sas
        origin = azurite_entra["account_url"].split("/devstoreaccount1")[0]
        assert origin in response.headers["Content-Security-Policy"].split("media-src")[1].split(";")[0]
        # The app reads the blobs with the identity's token (captions are served by the app).
        captions = add_file(archive, VTT_TEXT.encode(), "captions.vtt")
        served = client.get(url(archive, captions))
        assert served.status_code == 200 and served.data.startswith(b"WEBVTT")
        login_as("learner", "131032")
        assert client.get(url(archive, video)).status_code == 404


def test_open_ended_and_oversized_ranges_are_clamped_multiple_ranges_get_the_whole_file(viewer, published):
    archive, video = published
    data = video_bytes("webm")
    tail = viewer.get(url(archive, video), headers={"Range": "bytes=100-"})
    assert tail.status_code == 206 and tail.data == data[100:]
    oversized = viewer.get(url(archive, video), headers={"Range": f"bytes=10-{len(data) * 5}"})
    assert oversized.status_code == 206
    assert oversized.headers["Content-Range"] == f"bytes 10-{len(data) - 1}/{len(data)}"
    several = viewer.get(url(archive, video), headers={"Range": "bytes=0-1,5-6"})
    assert several.status_code == 200 and several.data == data
    malformed = viewer.get(url(archive, video), headers={"Range": "bytes=abc"})
    assert malformed.status_code == 200


def test_if_range_with_a_date(viewer, published):
    archive, video = published
    last_modified = viewer.get(url(archive, video)).headers["Last-Modified"]
    current = viewer.get(url(archive, video), headers={"Range": "bytes=0-9", "If-Range": last_modified})
    assert current.status_code == 206
    old = viewer.get(url(archive, video), headers={"Range": "bytes=0-9", "If-Range": "Thu, 01 Jan 2015 00:00:00 GMT"})
    assert old.status_code == 200
