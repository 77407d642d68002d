"""How long a stored video is: read from its container's headers, or measured by the worker
from its last timestamps when the headers do not say (browser and screen recordings: WebM
without a Duration; fragmented MP4 with an mvhd duration of 0). Until the server knows, the
video plays but its viewing counts nothing, and the trainer sees why."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from lms.archives import containers, durations, recording_import, tasks
from lms.archives.models import ArchiveFile
from lms.archives.storage import get_storage
from lms.common.timeutil import utcnow
from tests import factories
from tests.archives import media
from tests.archives.conftest import DATA, add_file, make_archive
from tests.conftest import ROOT

DEMO_VIDEO = ROOT / "data" / "demo" / "archive-demo.webm"  # 30 s, VP9 + Opus, by ffmpeg


def reader(data: bytes):
    return lambda start, length: data[start : start + length]


def both(data: bytes, code: str) -> tuple[int | None, int | None]:
    return (containers.header_duration(reader(data), len(data), code),
            containers.scanned_duration(reader(data), len(data), code))


# ------------------------------------------------------------------ the containers


@pytest.mark.parametrize(("what", "make", "code", "header", "scanned"), [
    ("MediaRecorder WebM: no Duration, unknown sizes", lambda: media.webm(30), "webm", None, 30),
    ("WebM with sized clusters and Cues", lambda: media.webm(30, unknown_sizes=False, cues=True), "webm", None, 30),
    ("WebM with a Duration", lambda: media.webm(30, duration=30.0), "webm", 30, 30),
    ("WebM ending in a BlockGroup with a BlockDuration",
     lambda: media.webm(30, fps=1, last_block_duration=1000), "webm", None, 30),
    ("WebM with a 0.1 ms TimecodeScale", lambda: media.webm(30, timecode_scale=100_000, cluster_seconds=2),
     "webm", None, 30),
    ("WebM with a Duration of 0", lambda: media.webm(30, duration=0.0), "webm", None, 30),
    ("fragmented MP4, durations per sample", lambda: media.fragmented_mp4(30), "mp4", None, 30),
    ("fragmented MP4, default duration in tfhd",
     lambda: media.fragmented_mp4(30, per_sample_durations=False), "mp4", None, 30),
    ("fragmented MP4, default duration in trex",
     lambda: media.fragmented_mp4(30, per_sample_durations=False, default_in="trex"), "mp4", None, 30),
    ("fragmented MP4 without tfdt", lambda: media.fragmented_mp4(30, tfdt=False), "mp4", None, 30),
    ("fragmented MP4 with an audio track", lambda: media.fragmented_mp4(45, audio_timescale=48_000), "mp4", None, 45),
    ("fragmented MP4 with a mehd", lambda: media.fragmented_mp4(30, mehd_seconds=30), "mp4", 30, 30),
])
def test_durations_from_the_headers_and_from_the_last_timestamps(what, make, code, header, scanned):
    assert both(make(), code) == (header, scanned), what


@pytest.mark.parametrize(("path", "code", "seconds", "strip"), [
    (DATA / "tiny.webm", "webm", 6, media.without_webm_duration),
    (DEMO_VIDEO, "webm", 30, media.without_webm_duration),
    (DATA / "tiny.mp4", "mp4", 6, media.without_mp4_durations),
])
def test_real_files_without_their_stated_duration_measure_the_same(path: Path, code, seconds, strip):
    """Files written by ffmpeg: the scan agrees with the headers, and still finds the length
    once the headers are made to say nothing."""
    data = path.read_bytes()
    assert both(data, code) == (seconds, seconds)
    assert both(strip(data), code) == (None, seconds)


def test_a_recording_cut_off_counts_up_to_its_last_whole_block():
    data, first_20_seconds = media.webm(30), media.webm(20)
    assert data.startswith(first_20_seconds)  # unknown sizes: a recording grows at its end
    assert both(first_20_seconds, "webm") == (None, 20)
    assert both(data[: len(first_20_seconds) + 7], "webm") == (None, 20)  # cut inside a cluster's header
    assert both(data[: len(data) * 2 // 3], "webm")[1] in (19, 20, 21)


@pytest.mark.parametrize(("what", "data", "code"), [
    ("WebM without any block", media.webm(0), "webm"),
    ("WebM header only", media.webm(30)[:40], "webm"),
    ("MP4 with neither durations nor samples", media.fragmented_mp4(0), "mp4"),
    ("not a container at all", b"\x1a\x45\xdf\xa3" + bytes(100), "webm"),
    ("garbage after an ftyp", b"\x00\x00\x00\x10ftypisom\x00\x00\x02\x00" + b"\xff" * 64, "mp4"),
    ("timestamps a week long", media.fragmented_mp4(2, timescale=1, fps=1, fragment_seconds=1)
     .replace(b"tfdt\x01\x00\x00\x00" + bytes(8), b"tfdt\x01\x00\x00\x00" + (7 * 86400).to_bytes(8, "big")),
     "mp4"),
])
def test_what_does_not_tell_its_length_is_unknown(what, data, code):
    assert both(data, code) == (None, None), what


def test_the_scan_hops_over_sample_data():
    """A fragmented MP4 of 8 fragments with 2 MiB of samples each: the scan reads the boxes'
    headers, not the samples."""
    data = media.fragmented_mp4(16)
    parts, pos = [], 0
    for box, _body, end in containers._boxes(containers._Source(reader(data), len(data)), 0, len(data)):
        chunk = data[pos:end]
        parts.append(chunk if box != b"mdat" else (len(chunk) + 2 * 1024 * 1024).to_bytes(4, "big") + b"mdat"
                     + chunk[8:] + bytes(2 * 1024 * 1024))
        pos = end
    big = b"".join(parts)
    read = []

    def counting(start, length):
        read.append(length)
        return big[start : start + length]

    assert containers.scanned_duration(counting, len(big), "mp4") == 16
    assert len(big) > 16 * 1024 * 1024 and sum(read) < len(big) / 10


# ------------------------------------------------------------------ the worker measures; the trainer sees why


@pytest.fixture
def held_measurements(monkeypatch):
    """The worker is busy: measurements are held here until the test runs them."""
    held: list[int] = []
    monkeypatch.setattr(tasks, "measure_duration_task", held.append)
    return held


@pytest.mark.parametrize(("make", "name"), [
    (lambda: media.webm(30), "画面録画.webm"),
    (lambda: media.fragmented_mp4(30), "録画.mp4"),
])
def test_a_video_without_a_stated_length_is_measured_by_the_worker(db, client, login_as, owned_course,
                                                                   held_measurements, make, name):
    trainer, course = owned_course
    archive = make_archive(course)
    video = add_file(archive, make(), name)
    assert held_measurements == [video.id]  # handed to the worker after the commit
    assert video.status == "ready" and video.duration_seconds is None and video.duration_checked_at is None
    assert durations.duration_state(video) == durations.MEASURING

    login_as(user=trainer)
    page = client.get(f"/archives/manage/{archive.id}").get_data(as_text=True)
    assert "長さを確認中" in page and "修了の判定にも数えられません" in page
    login_as("learner", "131016")
    viewer_page = client.get(f"/archives/{archive.id}").get_data(as_text=True)
    assert "確認が終わるまで、視聴した時間は記録されません" in viewer_page

    assert durations.measure_duration(video.id) == 30
    db.session.expire_all()
    video = db.session.get(ArchiveFile, video.id)
    assert video.duration_seconds == 30 and video.duration_checked_at is not None
    assert durations.measure_duration(video.id) == 30  # a second run (a retried job) changes nothing
    login_as(user=trainer)
    page = client.get(f"/archives/manage/{archive.id}").get_data(as_text=True)
    assert "0:00:30" in page and "長さを確認中" not in page and "数えられません" not in page


def test_inline_jobs_measure_at_once(db, owned_course):
    archive = make_archive(owned_course[1])
    video = add_file(archive, media.webm(42), "rec.webm")
    db.session.expire_all()
    assert db.session.get(ArchiveFile, video.id).duration_seconds == 42


def test_a_video_whose_length_cannot_be_found_says_so(db, client, login_as, owned_course, held_measurements):
    trainer, course = owned_course
    archive = make_archive(course)
    video = add_file(archive, media.webm(0), "empty.webm")
    assert durations.measure_duration(video.id) is None
    db.session.expire_all()
    video = db.session.get(ArchiveFile, video.id)
    assert video.duration_checked_at is not None and durations.duration_state(video) == durations.UNMEASURABLE
    login_as(user=trainer)
    page = client.get(f"/archives/manage/{archive.id}").get_data(as_text=True)
    assert "長さ不明" in page and "動画の長さを確認できませんでした" in page and "もう一度アップロード" in page


def test_an_unreadable_file_stays_to_be_measured(db, owned_course, held_measurements):
    archive = make_archive(owned_course[1])
    video = add_file(archive, media.webm(30), "rec.webm")
    get_storage().delete(video.storage_key)
    assert durations.measure_duration(video.id) is None
    db.session.expire_all()
    assert durations.duration_state(db.session.get(ArchiveFile, video.id)) == durations.MEASURING


def test_a_lost_measurement_is_handed_over_again_by_the_periodic_task(db, owned_course, held_measurements):
    from datetime import timedelta

    archive = make_archive(owned_course[1])
    video = add_file(archive, media.webm(30), "rec.webm")
    held_measurements.clear()  # the worker lost it
    tasks.run_expire_uploads()
    assert held_measurements == []  # too early to tell
    db.session.execute(ArchiveFile.__table__.update().values(created_at=utcnow() - timedelta(hours=1)))
    db.session.commit()
    tasks.run_expire_uploads()
    assert held_measurements == [video.id]


def test_a_teams_recording_without_a_stated_length_is_measured(db, owned_course):
    session = factories.make_session(owned_course[1], title="第2回")
    data = media.fragmented_mp4(60)
    archive = recording_import.import_recording(session.id, "rec-f", iter([data]), "会議.mp4", "video/mp4", len(data))
    db.session.commit()
    db.session.expire_all()
    [video] = db.session.scalars(select(ArchiveFile).where(ArchiveFile.archive_id == archive.id)).all()
    assert video.duration_seconds == 60


@pytest.mark.parametrize(("data", "name"), [
    (b"\x1a\x45\xdf\xa3" + bytes(range(256)) * 40, "fake.webm"),
    (b"\0\0\0\x18ftypmp42" + bytes(range(255, -1, -1)) * 40, "fake.mp4"),
], ids=["webm", "mp4"])
def test_a_file_that_is_only_a_videos_magic_number_is_marked_and_cannot_be_published(db, client, login_as,
                                                                                   owned_course, data, name):
    """Its first bytes pass the type check, but no length can be read and no browser plays it."""
    from lms.archives import services
    from lms.common.errors import InvalidInput
    from tests.archives.conftest import video_bytes

    trainer, course = owned_course
    archive = make_archive(course, status="draft")
    video = add_file(archive, data, name)
    assert durations.duration_state(video) == durations.UNMEASURABLE
    login_as(user=trainer)
    page = client.get(f"/archives/manage/{archive.id}").get_data(as_text=True)
    assert "再生できない可能性があります" in page and "検証済み" not in page
    with pytest.raises(InvalidInput, match=f"長さを読み取れない動画があるため公開できません（{name}）"):
        services.publish_archive(trainer, archive)
    db.session.rollback()
    # A playable video beside it is not enough: the archive is completed only once every
    # video is, and this one never could be.
    add_file(archive, video_bytes("webm"), "本編.webm")
    refused = client.post(f"/archives/manage/{archive.id}/publish", follow_redirects=True).get_data(as_text=True)
    assert f"長さを読み取れない動画があるため公開できません（{name}）" in refused
    db.session.refresh(archive)
    assert archive.status == "draft"
    services.remove_file(trainer, db.session.get(ArchiveFile, video.id))
    services.publish_archive(trainer, archive)
    db.session.commit()
    assert archive.status == "published"


def test_publishing_waits_for_the_measurement_of_its_only_video(db, owned_course, held_measurements):
    from lms.archives import services
    from lms.common.errors import Conflict

    trainer, course = owned_course
    archive = make_archive(course, status="draft")
    video = add_file(archive, media.webm(30), "画面録画.webm")
    with pytest.raises(Conflict, match="動画の長さを確認しています"):
        services.publish_archive(trainer, archive)
    db.session.rollback()
    durations.measure_duration(video.id)
    services.publish_archive(trainer, archive)
    db.session.commit()
    assert archive.status == "published"
