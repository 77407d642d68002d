"""The Graph client against the local Graph server: paging, throttling, errors, streaming."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from lms.teams.graph import (
    GraphAuthError,
    GraphBadRequest,
    GraphClient,
    GraphError,
    GraphNotFound,
    GraphThrottled,
    GraphTransportError,
)
from tests.teams.graph_server import GraphServer, mp4_sha256

NOW = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)


@pytest.fixture
def server():
    s = GraphServer(page_size=100).start()
    yield s
    s.stop()


def make_client(server, **kw):
    delays: list[float] = []

    def sleep(seconds):
        delays.append(seconds)
        time.sleep(seconds)

    kw.setdefault("backoff_base", 0.05)
    kw.setdefault("backoff_cap", 0.2)
    client = GraphClient(lambda: server.token, base_url=server.base_url, sleep=sleep, **kw)
    client.delays = delays
    return client


def seed_meeting(server, n_records: int) -> tuple[str, str]:
    client = GraphClient(lambda: server.token, base_url=server.base_url)
    event = client.post("/users/org@example.lg.jp/events", {
        "subject": "s", "start": {"dateTime": "2026-11-20T10:00:00", "timeZone": "Tokyo Standard Time"},
        "end": {"dateTime": "2026-11-20T11:00:00", "timeZone": "Tokyo Standard Time"}, "isOnlineMeeting": True,
        "onlineMeetingProvider": "teamsForBusiness"})
    meeting = server.meeting_for_event(event["id"])
    records = [server.attendance_record(object_id=f"00000000-0000-0000-0000-{i:012d}", tenant_id="t", name=f"n{i}",
                                        email=f"u{i}@example.lg.jp", intervals=[(NOW, NOW + timedelta(minutes=30))])
               for i in range(n_records)]
    report = server.add_attendance_report(meeting["id"], NOW, NOW + timedelta(hours=1), records)
    return meeting["id"], report["id"]


def records_path(meeting_id, report_id):
    from urllib.parse import quote

    return (f"/users/org@example.lg.jp/onlineMeetings/{quote(meeting_id, safe='')}/attendanceReports/"
            f"{quote(report_id, safe='')}/attendanceRecords")


def test_get_all_follows_next_links_to_the_end(server):
    meeting_id, report_id = seed_meeting(server, 250)
    client = make_client(server)
    items = client.get_all(records_path(meeting_id, report_id))
    assert len(items) == 250
    assert len({i["id"] for i in items}) == 250
    pages = server.calls("GET", "attendanceRecords")
    assert [p.query.get("$skiptoken") for p in pages] == [None, "100", "200"]
    assert client.calls == 3


def test_throttled_twice_then_success_honours_retry_after(server):
    meeting_id, report_id = seed_meeting(server, 10)
    server.fail("attendanceRecords", 429, times=2, retry_after="1")
    client = make_client(server)
    started = time.monotonic()
    items = client.get_all(records_path(meeting_id, report_id))
    assert len(items) == 10
    assert client.delays == [1.0, 1.0]
    assert time.monotonic() - started >= 2.0
    assert client.calls == 3 and client.retries == 2


def test_retry_after_as_http_date(server):
    meeting_id, report_id = seed_meeting(server, 1)
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=2), usegmt=True)
    server.fail("attendanceRecords", 503, times=1, retry_after=when)
    client = make_client(server)
    assert len(client.get_all(records_path(meeting_id, report_id))) == 1
    assert len(client.delays) == 1 and 0.5 <= client.delays[0] <= 2.0


def test_503_without_retry_after_backs_off_exponentially_with_a_cap(server):
    meeting_id, report_id = seed_meeting(server, 1)
    server.fail("attendanceRecords", 503, times=4)
    client = make_client(server, backoff_base=0.05, backoff_cap=0.15, max_attempts=5)
    assert len(client.get_all(records_path(meeting_id, report_id))) == 1
    assert client.delays == [0.05, 0.1, 0.15, 0.15]


def test_still_throttled_after_every_attempt_raises_typed_error(server):
    meeting_id, report_id = seed_meeting(server, 1)
    server.fail("attendanceRecords", 504, times=None)
    client = make_client(server, max_attempts=3)
    with pytest.raises(GraphThrottled) as info:
        client.get_all(records_path(meeting_id, report_id))
    assert info.value.status == 504 and info.value.code == "GatewayTimeout" and info.value.request_id
    assert info.value.retryable
    assert client.calls == 3


def test_a_long_retry_after_is_never_cut_short_the_run_gives_up_instead(server):
    meeting_id, report_id = seed_meeting(server, 1)
    server.fail("attendanceRecords", 429, times=None, retry_after="600")  # ten minutes
    client = make_client(server, max_wait=60)
    with pytest.raises(GraphThrottled) as info:
        client.get_all(records_path(meeting_id, report_id))
    # One request, no sleep, no early repeat: the caller reschedules no earlier than asked.
    assert info.value.status == 429 and info.value.retry_after == 600 and info.value.retryable
    assert client.delays == [] and len(server.calls("GET", "attendanceRecords")) == 1


def test_waiting_is_bounded_per_client_across_calls(server):
    meeting_id, report_id = seed_meeting(server, 1)
    server.fail("attendanceRecords", 503, times=2, retry_after="0.2")
    client = make_client(server, max_wait=0.5)
    assert len(client.get_all(records_path(meeting_id, report_id))) == 1  # after two 0.2 s pauses
    # 0.1 s of the budget is left: a later call asked to pause 0.2 s gives up at once.
    server.fail("attendanceRecords", 503, times=1, retry_after="0.2")
    with pytest.raises(GraphThrottled) as info:
        client.get_all(records_path(meeting_id, report_id))
    assert info.value.retry_after == 0.2
    assert client.delays == [0.2, 0.2]
    assert len(server.calls("GET", "attendanceRecords")) == 4


def test_a_failed_page_in_the_middle_is_a_failure_not_a_short_result(server):
    meeting_id, report_id = seed_meeting(server, 250)
    server.fail("attendanceRecords", 500, times=1, **{"$skiptoken": "100"})
    client = make_client(server)
    with pytest.raises(GraphError) as info:
        client.get_all(records_path(meeting_id, report_id))
    assert info.value.status == 500
    # and the next run reads everything
    assert len(client.get_all(records_path(meeting_id, report_id))) == 250


def test_post_is_retried_only_when_idempotent(server):
    body = {"subject": "s", "start": {"dateTime": "2026-11-20T10:00:00", "timeZone": "Tokyo Standard Time"},
            "end": {"dateTime": "2026-11-20T11:00:00", "timeZone": "Tokyo Standard Time"}}
    client = make_client(server)
    server.fail("/events", 503, times=1, method="POST")
    with pytest.raises(GraphThrottled):
        client.post("/users/org@example.lg.jp/events", body)
    assert len(server.calls("POST", "/events")) == 1
    server.fail("/events", 503, times=1, method="POST")
    created = client.post("/users/org@example.lg.jp/events", {**body, "transactionId": "tx-1"}, idempotent=True)
    assert len(server.calls("POST", "/events")) == 3
    again = client.post("/users/org@example.lg.jp/events", {**body, "transactionId": "tx-1"}, idempotent=True)
    assert again["id"] == created["id"]  # the transactionId makes the repeat harmless
    # 429 is refused before anything happens: even a non-idempotent POST is repeated
    server.fail("/sendMail", 429, times=1, retry_after="0")
    client.post("/users/org@example.lg.jp/sendMail", {"message": {"subject": "x"}})
    assert len(server.calls("POST", "/sendMail")) == 2 and len(server.sent_mail) == 1


def test_errors_are_typed_with_status_code_message_and_request_id(server):
    client = make_client(server)
    with pytest.raises(GraphNotFound) as info:
        client.get("/users/org@example.lg.jp/events/nope")
    assert info.value.status == 404 and info.value.code == "NotFound" and info.value.request_id
    assert not info.value.retryable
    with pytest.raises(GraphBadRequest):
        client.get("/users/org@example.lg.jp/onlineMeetings", params={"$filter": "subject eq 'x'"})
    bad = GraphClient(lambda: "wrong", base_url=server.base_url)
    with pytest.raises(GraphAuthError) as info:
        bad.get("/users/org@example.lg.jp/events/x")
    assert info.value.status == 401 and info.value.code == "InvalidAuthenticationToken"
    assert "HTTP 401" in str(info.value)


def test_timeouts_and_unreachable_hosts_raise_transport_errors(server):
    slow = GraphServer(latency=1.0).start()
    try:
        client = make_client(slow, read_timeout=0.2, max_attempts=2)
        with pytest.raises(GraphTransportError):
            client.get("/users/x/events/y")
        assert client.calls == 2  # a GET is retried once, then given up
    finally:
        slow.stop()
    closed = GraphClient(lambda: "t", base_url="http://127.0.0.1:9/v1.0", connect_timeout=0.5, max_attempts=1)
    with pytest.raises(GraphTransportError):
        closed.get("/users/x")


def test_streaming_download_arrives_in_bounded_chunks(server):
    size = 8 * 1024 * 1024 + 123
    meeting_id, _ = seed_meeting(server, 0)
    rec = server.add_recording(meeting_id, "org-id", size, NOW)
    client = make_client(server)
    from urllib.parse import quote

    content = client.stream(f"/users/org@example.lg.jp/onlineMeetings/{quote(meeting_id, safe='')}/recordings/"
                            f"{quote(rec['id'], safe='')}/content", chunk_size=256 * 1024)
    assert content.size == size and content.content_type == "video/mp4"
    digest = hashlib.sha256()
    biggest = 0
    for chunk in content:
        biggest = max(biggest, len(chunk))
        digest.update(chunk)
    assert biggest <= 256 * 1024
    assert content.bytes_read == size
    assert digest.hexdigest() == mp4_sha256(size)


def test_requests_ignore_proxy_settings_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("NO_PROXY", "")
    client = make_client(server)
    assert client.http.trust_env is False
    with pytest.raises(GraphNotFound):
        client.get("/users/x/events/y")  # reached the server, not the bogus proxy
