"""The attacks on viewing credit, each refused, through the real endpoint.

* A video whose container states no length (a browser recording; a fragmented MP4) cannot
  be completed with a report that brings its own "duration": nothing counts until the
  server has measured it, and then only at the speed of the wall clock.
* Bursts of reports, parallel tabs and several videos played at once never earn more than
  the wall-clock time that passed plus ``progress.WALL_SLACK_SECONDS``: one clock per learner.

Most tests drive the server's clock (``progress.wall_time``); the burst and the tabs run in
real time, measured around the requests.
"""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
import requests
from sqlalchemy import func, select

from lms.archives import durations, progress, tasks
from lms.archives.models import ViewingProgress
from lms.common.timeutil import utcnow
from lms.completion.models import Completion
from lms.extensions import db as _db
from tests import factories
from tests.archives import media
from tests.archives.conftest import add_file, make_archive

SLACK = progress.WALL_SLACK_SECONDS
T0 = utcnow().replace(microsecond=0)


class Clock:
    """The server's wall clock, moved by the test."""

    def __init__(self):
        # (from now, not from the module's import: an archive's parts count from when they are
        # ready, so the clock must not run behind the files the test creates)
        self.start = self.now = utcnow().replace(microsecond=0)

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def elapsed(self) -> float:
        return (self.now - self.start).total_seconds()


@pytest.fixture
def clock(monkeypatch):
    value = Clock()
    monkeypatch.setattr(progress, "wall_time", lambda: value.now)
    return value


@pytest.fixture
def held_measurements(monkeypatch):
    held: list[int] = []
    monkeypatch.setattr(tasks, "measure_duration_task", held.append)
    return held


_ids = iter(range(10**6))


def post(client, video_id: int, intervals, position: float = 0.0, **extra):
    body = {"report_id": f"rep{next(_ids):08d}", "intervals": intervals, "position": position, **extra}
    response = client.post(f"/archives/files/{video_id}/progress", json=body)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()


def total_watched(staff_member_id: int) -> int:
    _db.session.commit()  # a fresh snapshot: what the requests wrote
    return _db.session.scalar(select(func.coalesce(func.sum(ViewingProgress.watched_seconds), 0))
                              .where(ViewingProgress.staff_member_id == staff_member_id))


def completions(staff_member_id: int) -> int:
    _db.session.commit()
    return _db.session.scalar(select(func.count()).select_from(Completion)
                              .where(Completion.staff_member_id == staff_member_id))


def known_video(archive, seconds: int, name: str = "v.webm"):
    return add_file(archive, media.webm(seconds, duration=seconds), name)


# ------------------------------------------------------------------ no length, no credit


@pytest.mark.parametrize(("make", "name"), [
    (lambda: media.webm(30), "画面録画.webm"),  # MediaRecorder: no Duration, unknown sizes
    (lambda: media.fragmented_mp4(30), "録画.mp4"),  # mvhd duration 0
], ids=["webm-without-duration", "fragmented-mp4"])
def test_a_video_without_a_stated_length_cannot_be_completed_by_a_report_that_brings_one(
        db, client, login_as, owned_course, held_measurements, clock, make, name):
    archive = make_archive(owned_course[1])
    video = add_file(archive, make(), name)
    assert video.duration_seconds is None  # stored without a length; the worker has not run
    learner = login_as("learner", "131016")
    staff_id = learner.staff_member.id

    # The attack of the issue, right after opening the player.
    answer = post(client, video.id, [[0, 1]], 1, duration=1)
    assert answer["counting"] is False and answer["completed"] is False and answer["watched_seconds"] == 0
    assert "視聴した時間は記録されません" in answer["notice"]
    clock.advance(60)
    answer = post(client, video.id, [[0, 30]], 30, duration=30)
    assert answer["watched_seconds"] == 0 and not answer["completed"]
    assert total_watched(staff_id) == 0 and completions(staff_id) == 0
    assert "修了証（PDF）" not in client.get("/completion/history").get_data(as_text=True)

    # The worker measures it; from now on it counts, at the speed of the clock.
    assert durations.measure_duration(video.id) == 30
    clock.advance(1000)
    start = clock.now
    for _ in range(10):  # a burst at one instant
        answer = post(client, video.id, [[0, 30]], 30, duration=1)
    assert answer["watched_seconds"] <= SLACK and not answer["completed"]
    completed_after = None
    for second in range(1, 40):
        clock.advance(1)
        answer = post(client, video.id, [[0, 30]], 30, duration=1)
        assert answer["duration_seconds"] == 30  # the server's figure, whatever the player says
        assert answer["watched_seconds"] <= second + SLACK
        if answer["completed"]:
            completed_after = (clock.now - start).total_seconds()
            break
    assert completed_after is not None and completed_after >= 27 - SLACK  # 90 % of 30 s
    assert completions(staff_id) == 1
    assert "修了証（PDF）" in client.get("/completion/history").get_data(as_text=True)


def test_the_players_duration_is_never_stored_or_used(db, client, login_as, owned_course, clock):
    archive = make_archive(owned_course[1])
    video = known_video(archive, 100)
    login_as("learner", "131016")
    post(client, video.id, [], 0, duration=1)
    clock.advance(10)
    answer = post(client, video.id, [[0, 10]], 10, duration=10)
    assert answer["duration_seconds"] == 100 and answer["percent"] == 10 and not answer["completed"]
    assert "duration" not in progress.parse_report({"report_id": "abcdefgh", "intervals": [], "duration": 5})
    assert not hasattr(ViewingProgress, "duration_seconds")


# ------------------------------------------------------------------ bursts and tabs (real time)


def test_a_burst_of_reports_earns_no_more_than_the_time_that_passed(db, client, login_as, owned_course):
    archive = make_archive(owned_course[1])
    video = known_video(archive, 30)
    learner = login_as("learner", "131016")
    started = time.monotonic()
    answers = [post(client, video.id, [[0, 30]], 30) for _ in range(25)]
    elapsed = time.monotonic() - started
    watched = total_watched(learner.staff_member.id)
    assert watched <= elapsed + SLACK, (watched, elapsed)
    assert not any(a["completed"] for a in answers) and completions(learner.staff_member.id) == 0


def _session_cookie(app, user) -> dict[str, str]:
    """A signed session cookie as the sign-in leaves it (with its server-side record)."""
    return {app.config["SESSION_COOKIE_NAME"]: factories.session_cookie(app, user)}


def test_parallel_tabs_share_one_clock(app, db, live_server, owned_course, make_user):
    """Eight "tabs" send reports at once, each claiming the whole video."""
    archive = make_archive(owned_course[1])
    video = known_video(archive, 30)
    learner = make_user("learner", "131016")
    cookies = _session_cookie(app, learner)
    url = f"{live_server.url}/archives/files/{video.id}/progress"
    barrier = threading.Barrier(8)
    answers: list[tuple[int, dict]] = []

    def tab(number: int) -> None:
        with requests.Session() as session:
            session.cookies.update(cookies)
            barrier.wait()
            for i in range(4):
                body = {"report_id": f"tab{number}r{i:04d}", "intervals": [[0, 30]], "position": 30}
                response = session.post(url, json=body, timeout=30, allow_redirects=False)
                answers.append((response.status_code, response.json() if response.status_code == 200 else {}))

    threads = [threading.Thread(target=tab, args=(n,)) for n in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert [status for status, _body in answers] == [200] * 32
    assert all(body["counting"] for _status, body in answers)
    watched = total_watched(learner.staff_member.id)
    assert watched <= elapsed + SLACK, (watched, elapsed)
    assert completions(learner.staff_member.id) == 0


# ------------------------------------------------------------------ several videos at once


def test_two_videos_of_one_archive_watched_at_once_take_the_time_of_both(db, client, login_as, owned_course,
                                                                         clock):
    archive = make_archive(owned_course[1])
    first, second = known_video(archive, 30, "1.webm"), known_video(archive, 30, "2.webm")
    learner = login_as("learner", "131016")
    staff_id = learner.staff_member.id
    done_at = None
    for step in range(0, 80):
        for video in (first, second):
            answer = post(client, video.id, [[0, 30]], 30)
        assert total_watched(staff_id) <= clock.elapsed() + SLACK
        if progress.archive_completed_at(staff_id, archive.id) is not None:
            done_at = clock.elapsed()
            break
        clock.advance(1)
    assert answer["completed"]
    assert done_at is not None and done_at >= 2 * 27 - SLACK  # not 21 s: the two share one clock


def test_videos_of_two_archives_watched_at_once_share_the_clock(db, client, login_as, owned_course, clock):
    videos = [known_video(make_archive(owned_course[1], title=f"第{n}回"), 40) for n in (1, 2, 3)]
    learner = login_as("learner", "131016")
    for _step in range(30):
        for video in videos:
            post(client, video.id, [[0, 40]], 40)
        clock.advance(1)
    assert total_watched(learner.staff_member.id) <= 30 + SLACK


# ------------------------------------------------------------------ the rule itself (no HTTP)


@pytest.fixture
def learner(make_user):
    return make_user("learner", "131016")


def report(intervals, position=0.0) -> dict:
    return progress.parse_report({"report_id": f"rep{next(_ids):08d}", "intervals": intervals,
                                  "position": position})


def test_credit_keeps_pace_with_the_clock_without_rounding(db, owned_course, learner):
    """Reports every 10.4 s, each with the 10.4 s just watched: the fractions carry over, so
    the credit neither falls behind the clock nor runs ahead of it."""
    archive = make_archive(owned_course[1])
    video = known_video(archive, 1000)
    video.archive.course.viewing_threshold_pct = 100
    progress.record_progress(learner, video, report([]), now=T0)
    for n in range(1, 61):
        watched_to = 10.4 * n
        row = progress.record_progress(learner, video, report([[watched_to - 10.4, watched_to]]),
                                       now=T0 + timedelta(seconds=watched_to)).progress
        assert watched_to - 1 <= row.watched_seconds <= watched_to + SLACK


def test_a_pause_is_not_credited(db, owned_course, learner):
    archive = make_archive(owned_course[1])
    video = known_video(archive, 1000)
    progress.record_progress(learner, video, report([]), now=T0)
    progress.record_progress(learner, video, report([[0, 10]]), now=T0 + timedelta(seconds=10))
    later = T0 + timedelta(seconds=10 + progress.REPORT_GAP_SECONDS + SLACK + 1)
    row = progress.record_progress(learner, video, report([[10, 500]]), now=later).progress
    assert row.watched_seconds <= 10 + 2 * SLACK  # a new start's slack, nothing for the pause


def test_random_reports_on_many_videos_never_beat_the_clock(db, owned_course, learner):
    """Any order of reports, gaps, files and claims: the sum credited stays within the time
    between the first and the last report plus the slack, after every report."""
    archives = [make_archive(owned_course[1], title=f"第{n}回") for n in (1, 2)]
    videos = [known_video(archives[0], 60, "a.webm"), known_video(archives[0], 45, "b.webm"),
              known_video(archives[1], 90, "c.webm")]
    rng = random.Random(7)
    now = T0
    for _ in range(300):
        now += timedelta(seconds=rng.choice([0, 0, 0.2, 0.7, 1, 3, 9.9, 15, 40, 130]))
        video = rng.choice(videos)
        start = rng.randint(0, 100)
        progress.record_progress(learner, video, report([[start, start + rng.randint(0, 100)]]), now=now)
        credited = sum(row.watched_seconds for row in _db.session.scalars(select(ViewingProgress)))
        assert credited <= (now - T0).total_seconds() + SLACK
