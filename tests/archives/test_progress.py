"""Viewing progress: merged intervals, wall-clock cap, idempotency, own records only, completion.

The attacks on the credit rule (durations from the player, bursts, tabs, parallel files) are
in test_viewing_credit.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lms.archives import progress
from lms.archives.models import ViewingClock, ViewingProgress
from lms.common.errors import InvalidInput
from lms.common.signals import viewing_changed
from lms.common.timeutil import utcnow
from tests.archives.conftest import add_file, make_archive, video_bytes

T0 = utcnow().replace(microsecond=0)
# Viewing completes courses: the completion dashboard summaries follow (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("summaries_follow")


@pytest.fixture
def video(db, owned_course):
    archive = make_archive(owned_course[1])
    archive_file = add_file(archive, video_bytes("webm"), "v.webm")
    archive_file.duration_seconds = 100  # a 100-second lecture, for round numbers
    archive_file.duration_checked_at = utcnow()
    db.session.commit()
    return archive_file


@pytest.fixture
def learner(make_user):
    return make_user("learner", "131016")


def report(rid, intervals, position=0.0):
    return progress.parse_report({"report_id": rid, "intervals": intervals, "position": position})


def play(learner, video, rid, intervals, at_seconds, position=0.0) -> ViewingProgress:
    recorded = progress.record_progress(learner, video, report(rid, intervals, position),
                                        now=T0 + timedelta(seconds=at_seconds))
    assert recorded.counting
    return recorded.progress


def test_intervals_merge_into_unique_seconds(db, learner, video):
    play(learner, video, "start0001", [], 0)
    play(learner, video, "report0002", [[0, 10]], 10)
    row = play(learner, video, "report0003", [[5, 20]], 20, position=20)
    assert row.intervals == [[0, 20]]
    assert row.watched_seconds == 20
    # Watching the same part again adds nothing.
    row = play(learner, video, "report0004", [[0, 15]], 35)
    assert row.watched_seconds == 20
    row = play(learner, video, "report0005", [[50, 60]], 45, position=60)
    assert row.intervals == [[0, 20], [50, 60]]
    assert row.watched_seconds == 30
    assert row.last_position == 60


def test_forged_report_cannot_credit_more_than_real_time(db, learner, video):
    play(learner, video, "start0001", [], 0)
    # Ten seconds later the "player" claims the whole lecture was watched.
    row = play(learner, video, "forged0002", [[0, 100]], 10, position=100)
    assert row.watched_seconds <= 10 + progress.WALL_SLACK_SECONDS
    assert row.completed_at is None
    # A report after a long absence earns no credit for the absence: the clock starts again
    # (with the slack of a new start).
    row = play(learner, video, "forged0003", [[0, 100]], 10 + 3600)
    assert row.watched_seconds <= 10 + 2 * progress.WALL_SLACK_SECONDS


def test_seeking_to_the_end_counts_nothing_beyond_the_video(db, learner, video):
    play(learner, video, "start0001", [], 0)
    row = play(learner, video, "report0002", [[95, 250]], 60, position=250)
    assert row.intervals == [[95, 100]]
    assert row.last_position == 100


def test_reports_are_idempotent(db, learner, video):
    play(learner, video, "start0001", [], 0)
    first = play(learner, video, "report0002", [[0, 10]], 10)
    assert first.watched_seconds == 10
    mark = db.session.scalar(select(ViewingClock.credited_until))
    again = play(learner, video, "report0002", [[20, 30]], 20)  # same id replayed: ignored
    assert again.watched_seconds == 10
    assert db.session.scalar(select(ViewingClock.credited_until)) == mark  # the clock did not move


def test_completion_at_course_threshold_sends_signal(db, learner, video, owned_course):
    owned_course[1].viewing_threshold_pct = 80
    db.session.commit()
    received = []

    def receiver(sender, **kw):
        received.append(kw)

    viewing_changed.connect(receiver)
    try:
        play(learner, video, "start0001", [], 0)
        row = None
        for i in range(1, 9):  # 8 × 10 s = 80 s
            row = play(learner, video, f"report{i:04d}", [[(i - 1) * 10, i * 10]], i * 10)
            if i < 8:
                assert row.completed_at is None
        assert row.completed_at is not None
        assert received == [{"staff_member_id": learner.staff_member.id, "archive_id": video.archive_id}]
        play(learner, video, "report0009", [[80, 90]], 90)
        assert len(received) == 1  # once
        assert progress.archive_completed_at(learner.staff_member.id, video.archive_id) is not None
    finally:
        viewing_changed.disconnect(receiver)


@pytest.mark.parametrize("payload", [
    None, [], {"report_id": "x"}, {"report_id": "short"},
    {"report_id": "abcdefgh", "intervals": [[10, 5]]},
    {"report_id": "abcdefgh", "intervals": [[-1, 5]]},
    {"report_id": "abcdefgh", "intervals": [["0", 5]]},
    {"report_id": "abcdefgh", "intervals": [[0, float("inf")]]},
    {"report_id": "abcdefgh", "intervals": [[0, 1]] * 500},
    {"report_id": "abcdefgh", "position": True},
    # Integers too large for a float (JSON allows them): refused, not an OverflowError (500).
    {"report_id": "abcdefgh", "intervals": [[0, 10 ** 400]]},
    {"report_id": "abcdefgh", "intervals": [], "position": 10 ** 400},
])
def test_malformed_reports_are_refused(payload):
    with pytest.raises(InvalidInput):
        progress.parse_report(payload)


def test_endpoint_refuses_a_huge_integer_with_400(db, client, login_as, video):
    login_as("learner", "131016")
    body = '{"report_id": "abcdefgh12", "intervals": [[0, 1%s]], "position": 1}' % ("0" * 400)
    response = client.post(f"/archives/files/{video.id}/progress", data=body, content_type="application/json")
    assert response.status_code == 400
    assert "視聴状況の送信内容が正しくありません" in response.get_json()["error"]


def test_endpoint_records_only_the_senders_own_progress(db, client, login_as, make_user, video):
    other = make_user("learner", "131016")
    me = login_as("learner", "131016")
    url = f"/archives/files/{video.id}/progress"
    assert client.post(url, json={"report_id": "start0001", "intervals": []}).status_code == 200
    response = client.post(url, json={"report_id": "rep00002", "intervals": [[0, 1]], "position": 1,
                                      "staff_member_id": other.staff_member.id})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) >= {"watched_seconds", "duration_seconds", "percent", "completed"}
    rows = db.session.scalars(select(ViewingProgress)).all()
    assert [r.staff_member_id for r in rows] == [me.staff_member.id]
    bad = client.post(url, json={"report_id": "!", "intervals": []})
    assert bad.status_code == 400 and "正しくありません" in bad.get_json()["error"]


def test_a_progress_post_without_its_csrf_token_is_answered_in_json(app, db, client, login_as, video):
    """The player's script reads the error: JSON, like the endpoint's other refusals, not the
    HTML page a form gets."""
    login_as("learner", "131016")
    app.config["WTF_CSRF_ENABLED"] = True
    try:
        response = client.post(f"/archives/files/{video.id}/progress", json={"report_id": "start0001", "intervals": []})
    finally:
        app.config["WTF_CSRF_ENABLED"] = False
    assert response.status_code == 400 and response.is_json
    assert response.get_json()["error"] == "フォームの有効期限が切れました"
    assert db.session.scalars(select(ViewingProgress)).all() == []


def test_endpoint_refuses_viewers_outside_the_audience_and_after_withdrawal(db, client, login_as, video):
    url = f"/archives/files/{video.id}/progress"
    login_as("learner", "131032")  # 港区: not eligible, answered as for a file that does not exist
    outside = client.post(url, json={"report_id": "start0001", "intervals": []})
    unknown = client.post("/archives/files/2147483647/progress", json={"report_id": "start0001", "intervals": []})
    assert outside.status_code == unknown.status_code == 404 and outside.get_json() == unknown.get_json()
    login_as("learner", "131016")
    assert client.post(url, json={"report_id": "start0002", "intervals": []}).status_code == 200
    video.archive.status = "withdrawn"
    db.session.commit()
    refused = client.post(url, json={"report_id": "start0003", "intervals": []})
    assert refused.status_code == 403 and "公開を終了" in refused.get_json()["error"]


def test_endpoint_requires_csrf_header(app, client, login_as, video):
    app.config["WTF_CSRF_ENABLED"] = True
    login_as("learner", "131016")
    page = client.get(f"/archives/{video.archive_id}").get_data(as_text=True)
    import re

    token = re.search(r'data-csrf="([^"]+)"', page).group(1)
    url = f"/archives/files/{video.id}/progress"
    assert client.post(url, json={"report_id": "start0001", "intervals": []}).status_code == 400
    ok = client.post(url, json={"report_id": "start0001", "intervals": []}, headers={"X-CSRFToken": token})
    assert ok.status_code == 200


def test_resume_position_is_offered_on_the_page(db, client, login_as, video):
    user = login_as("learner", "131016")
    progress.record_progress(user, video, report("start0001", [], 0), now=T0)
    progress.record_progress(user, video, report("report002", [[0, 10]], 42), now=T0 + timedelta(seconds=10))
    db.session.commit()
    page = client.get(f"/archives/{video.archive_id}").get_data(as_text=True)
    assert 'data-resume="42"' in page


def test_the_percentage_is_rounded_down_alike_on_the_page_and_in_the_players_answer(db, client, login_as, learner,
                                                                                    video):
    """89.9 % of a 90 % threshold showed 「90%」 live (rounded) without 視聴完了, and 89% on the page."""
    video.duration_seconds = 1000
    row = play(learner, video, "start0001", [], 0)
    row.intervals, row.watched_seconds = [[0, 899]], 899
    db.session.commit()
    login_as(user=learner)
    answer = client.post(f"/archives/files/{video.id}/progress", json={"report_id": "rep00002", "intervals": []})
    assert answer.get_json()["percent"] == 89 and not answer.get_json()["completed"]
    assert "視聴済み 89%" in client.get(f"/archives/{video.archive_id}").get_data(as_text=True)
    assert progress.watched_percent(1000, 1000) == 100 and progress.watched_percent(1200, 1000) == 100
    assert progress.watched_percent(5, None) == 0
