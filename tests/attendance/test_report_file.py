"""Teams attendance without Graph: the attendance report file Teams lets the organiser
download (UTF-16, tab separated, Japanese or English), read, matched, previewed, confirmed."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from lms.attendance import report_upload, services
from lms.attendance.models import Attendance, AttendanceRecord, AttendanceUpload
from lms.attendance.teams_file import ReportError, parse_duration, parse_report, parse_time
from lms.audit.models import AuditLog
from lms.common.signals import attendance_changed, enrollment_status_changed
from lms.enrollment.models import CONFIRMED, Enrollment

# The session of these tests: 2026-12-01 14:00–15:30 Japan time (05:00–06:30 UTC).
START = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def utf16(text: str) -> bytes:
    """As Teams writes the file: UTF-16 little endian with a byte order mark, CRLF."""
    return ("\ufeff" + text.replace("\n", "\r\n")).encode("utf-16-le")


def english_report(people: list[tuple[str, str, str, str, str]], activities: list[tuple[str, str, str, str, str]] = ()):
    """people: (name, first join, last leave, duration, email); activities: (name, join, leave, duration, email)."""
    lines = ["1. Summary", "Meeting title\t防災研修 第1回", f"Attended participants\t{len(people)}",
             "Start time\t12/1/26, 1:58:10 PM", "End time\t12/1/26, 3:31:00 PM", "Meeting duration\t1h 32m 50s",
             "Average attendance time\t1h 5m 3s", "", "2. Participants",
             "Name\tFirst Join\tLast Leave\tIn-Meeting Duration\tEmail\tParticipant ID (UPN)\tRole"]
    for name, first, last, duration, email in people:
        lines.append(f"{name}\t{first}\t{last}\t{duration}\t{email}\t{email}\tAttendee")
    if activities:
        lines += ["", "3. In-Meeting Activities", "Name\tJoin Time\tLeave Time\tDuration\tEmail\tRole"]
        for name, joined, left, duration, email in activities:
            lines.append(f"{name}\t{joined}\t{left}\t{duration}\t{email}\tAttendee")
    return utf16("\n".join(lines) + "\n")


def japanese_report(people: list[tuple[str, str, str, str, str]]) -> bytes:
    lines = ["1. 概要", "会議のタイトル\t防災研修 第1回", f"出席者数\t{len(people)}",
             "開始時刻\t2026/12/1 13:58:10", "終了時刻\t2026/12/1 15:31:00", "会議の長さ\t1 時間 32 分 50 秒",
             "平均出席時間\t1 時間 5 分 3 秒", "", "2. 参加者",
             "名前\t最初の参加\t最後の退出\t会議中の時間\tメール アドレス\t参加者 ID (UPN)\t役割"]
    for name, first, last, duration, email in people:
        lines.append(f"{name}\t{first}\t{last}\t{duration}\t{email}\t{email}\t出席者")
    return utf16("\n".join(lines) + "\n")


# ---------------------------------------------------------------- the reader


def test_reads_the_english_sections_and_prefers_join_by_join_activities():
    data = english_report(
        [("Sato Hanako", "12/1/26, 1:59:00 PM", "12/1/26, 3:30:00 PM", "1h 10m", "sato@example.lg.jp"),
         ("Guest", "12/1/26, 2:10:00 PM", "12/1/26, 2:40:30 PM", "30m 30s", "")],
        [("Sato Hanako", "12/1/26, 1:59:00 PM", "12/1/26, 2:30:00 PM", "31m", "sato@example.lg.jp"),
         ("Sato Hanako", "12/1/26, 2:50:00 PM", "12/1/26, 3:30:00 PM", "40m", "sato@example.lg.jp")])
    report = parse_report(data)
    assert report.layout == "sections" and report.title == "防災研修 第1回"
    assert report.starts_at == datetime(2026, 12, 1, 4, 58, 10, tzinfo=UTC)
    sato, guest = report.people
    assert (sato.name, sato.email, sato.upn) == ("Sato Hanako", "sato@example.lg.jp", "sato@example.lg.jp")
    assert sato.intervals == [(datetime(2026, 12, 1, 4, 59, tzinfo=UTC), datetime(2026, 12, 1, 5, 30, tzinfo=UTC)),
                              (datetime(2026, 12, 1, 5, 50, tzinfo=UTC), datetime(2026, 12, 1, 6, 30, tzinfo=UTC))]
    assert sato.seconds == 71 * 60
    # No activities for the guest: one span from the first join, as long as the duration stated.
    assert guest.seconds == 30 * 60 + 30
    assert guest.intervals == [(datetime(2026, 12, 1, 5, 10, tzinfo=UTC), datetime(2026, 12, 1, 5, 40, 30, tzinfo=UTC))]


def test_reads_the_japanese_report_and_its_durations():
    data = japanese_report([("山田　太郎", "2026/12/1 14:00:05", "2026/12/1 15:30:00", "1 時間 29 分 55 秒", "")])
    (person,) = parse_report(data).people
    assert person.name == "山田　太郎" and person.seconds == 5395
    assert person.intervals == [(datetime(2026, 12, 1, 5, 0, 5, tzinfo=UTC), datetime(2026, 12, 1, 6, 30, tzinfo=UTC))]


def test_a_duration_longer_than_any_meeting_is_not_counted():
    """A file edited to say 999999999 hours: the span from the first join to the last leave
    (was: an OverflowError, a 500 page)."""
    data = japanese_report([("山田　太郎", "2026/12/1 14:00:05", "2026/12/1 15:30:00", "999999999 時間", "")])
    (person,) = parse_report(data).people
    assert person.seconds == 0
    assert person.intervals == [(datetime(2026, 12, 1, 5, 0, 5, tzinfo=UTC), datetime(2026, 12, 1, 6, 30, tzinfo=UTC))]


def test_times_that_cannot_be_read_are_flagged_not_silently_zero():
    """Found by QA: an edited file whose join and leave times could not be read gave 0 minutes
    and said nothing; the person is flagged (the preview says so), in every layout, and only
    for the times that count (section 3's when there are join-by-join activities)."""
    data = english_report(
        [("Sato Hanako", "いつか", "12/1/26, 3:30:00 PM", "", "sato@example.lg.jp"),
         ("Ito Ken", "12/1/26, 2:00:00 PM", "12/1/26, 2:45:00 PM", "45m", "ito@example.lg.jp"),
         ("Mori Aya", "昨日", "", "", "mori@example.lg.jp"),
         ("Kato Jun", "", "", "", "kato@example.lg.jp")],  # (nothing written: nothing unreadable)
        [("Mori Aya", "12/1/26, 2:00:00 PM", "12/1/26, 2:30:00 PM", "30m", "mori@example.lg.jp")])
    people = {p.name: p for p in parse_report(data).people}
    assert people["Sato Hanako"].unreadable_times and people["Sato Hanako"].intervals == []
    assert not people["Ito Ken"].unreadable_times and not people["Kato Jun"].unreadable_times
    assert not people["Mori Aya"].unreadable_times and people["Mori Aya"].intervals  # (read from the activities)
    flat = utf16("Full Name\tUser Action\tTimestamp\n"
                 "Sato Hanako\tJoined\t12/1/2026, 2:00:00 PM\n"
                 "Sato Hanako\tLeft\t12/1/2026, 2:45:00 PM\n"
                 "Ito Ken\tJoined\t12/1/2026, 25:05:00 PM\n")
    people = {p.name: p for p in parse_report(flat).people}
    assert people["Ito Ken"].unreadable_times and people["Ito Ken"].seconds == 0
    assert not people["Sato Hanako"].unreadable_times and people["Sato Hanako"].seconds == 45 * 60


def test_reads_a_report_saved_again_by_excel_in_shift_jis():
    """Opened in Excel and saved as CSV on a Japanese Windows: CP932, commas, no BOM."""
    text = japanese_report([("山田 太郎", "2026/12/1 14:00:00", "2026/12/1 15:00:00", "1 時間", "yamada@example.lg.jp")])
    report = parse_report(text.decode("utf-16").replace("\t", ",").encode("cp932"))
    assert [p.name for p in report.people] == ["山田 太郎"]


def test_reads_the_older_flat_layout_in_both_languages():
    english = utf16("Full Name\tUser Action\tTimestamp\n"
                    "Sato Hanako\tJoined\t12/1/2026, 2:00:00 PM\n"
                    "Sato Hanako\tLeft\t12/1/2026, 2:45:00 PM\n"
                    "Sato Hanako\tJoined\t12/1/2026, 3:00:00 PM\n"
                    "Ito Ken\tJoined\t12/1/2026, 2:05:00 PM\n"
                    "Sato Hanako\tLeft\t12/1/2026, 3:20:00 PM\n")
    report = parse_report(english)
    assert report.layout == "flat"
    people = {p.name: p for p in report.people}
    assert people["Sato Hanako"].seconds == 65 * 60
    # Still in the meeting when the list was saved: until the last time in the file.
    assert people["Ito Ken"].intervals == [(datetime(2026, 12, 1, 5, 5, tzinfo=UTC), datetime(2026, 12, 1, 6, 20, tzinfo=UTC))]
    japanese = ("\ufeffフル ネーム,ユーザーのアクション,タイムスタンプ\r\n山田 太郎,参加済み,2026/12/1 14:00:00\r\n"
                "山田 太郎,退出済み,2026/12/1 15:00:00\r\n").encode()  # UTF-8 with BOM, commas
    (person,) = parse_report(japanese).people
    assert person.seconds == 3600


@pytest.mark.parametrize(("text", "seconds"), [
    ("1h 2m 3s", 3723), ("45m 10s", 2710), ("1 時間 2 分 3 秒", 3723), ("1時間2分", 3720), ("58 秒", 58),
    ("1:02:03", 3723), ("", 0), ("unknown", 0),
    # longer than any meeting: unreadable (a time that large would not even make a date)
    ("999999999 時間", 0), ("99999999999999 h", 0), ("99999999:00:00", 0), ("745 時間", 0), ("720 時間", 720 * 3600)])
def test_durations_as_teams_writes_them(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["12/1/26, 2:00:05 PM", "2026/12/1 14:00:05", "2026/12/01 14:00:05",
                                  "12/1/2026, 2:00:05 PM", "2026-12-01 14:00:05", "2026/12/1 午後 2:00:05"])
def test_times_as_teams_writes_them_read_as_japan_time(text):
    assert parse_time(text) == datetime(2026, 12, 1, 5, 0, 5, tzinfo=UTC)


@pytest.mark.parametrize("text", ["0001/01/01 0:00:00", "9999-12-31 23:59:59",
                                  "0001-01-01T00:00:00+14:00", "1/1/1, 12:00:00 AM"])
def test_times_no_meeting_can_have_are_not_times(text):
    """Year 1 or 9999 (a hand-edited file) cannot be moved to UTC: read as no time, not a 500."""
    assert parse_time(text) is None


@pytest.mark.parametrize(("data", "message"), [
    (b"", "ファイルが空です"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xd8\xff", "Teams の出席者レポートではない"),
    (b"\x81\x20\xe3\x81 neither UTF-8 nor Shift_JIS", "文字コードを読み取れません"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00", "Teams の出席者レポートではない"),
    ("氏名,所属\n山田,総務課\n".encode(), "出席者が見つかりません"),
    (utf16("2. Participants\nfoo\tbar\nx\ty\n"), "見出しを読み取れません"),
    # a field over the csv module's limit (128 KiB): the line is named, not a 500
    (("氏名,参加時刻\n山田," + "x" * 140_000 + "\n").encode(), "2 行目を読み取れませんでした"),
])
def test_files_that_are_not_reports_are_refused_with_a_message(data, message):
    with pytest.raises(ReportError) as caught:
        parse_report(data)
    assert message in caught.value.message


# ---------------------------------------------------------------- upload, preview, confirm


@pytest.fixture
def teams(db, login_as, make_course, make_session, make_user):
    trainer = login_as("trainer")
    session = make_session(make_course(owner_id=trainer.id), starts_at=START, ends_at=START + timedelta(minutes=90))
    learners = [make_user("learner", code, name=name) for code, name in
                (("131016", "佐藤 花子"), ("131024", "山田 太郎"), ("131032", "鈴木 一郎"), ("131032", "鈴木 一郎"))]
    for learner in learners:
        enrollment = Enrollment(session_id=session.id, staff_member_id=learner.staff_member.id,
                                municipality_id=learner.municipality_id, status=CONFIRMED)
        db.session.add(enrollment)
        session.confirmed_count += 1
        db.session.flush()
        enrollment_status_changed.send(enrollment, old_status=None, new_status=CONFIRMED, actor=None,
                                       notice="confirmed", position=None)
    db.session.commit()
    return {"trainer": trainer, "session": session, "learners": learners}


def _upload(client, session, data: bytes, name: str = "meetingAttendanceReport.csv"):
    import io

    return client.post(f"/attendance/sessions/{session.id}/report",
                       data={"file": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def _rows(db, session):
    return {a.staff_member_id: a for a in db.session.scalars(select(Attendance).where(Attendance.session_id == session.id))}


def test_upload_preview_confirm_records_attendance_once(teams, client, db):
    session, (sato, yamada, suzuki1, suzuki2) = teams["session"], teams["learners"]
    data = japanese_report([
        ("Sato Hanako", "2026/12/1 13:55:00", "2026/12/1 15:35:00", "1 時間 40 分", sato.email.upper()),  # by e-mail
        ("山田　太郎", "2026/12/1 14:00:00", "2026/12/1 14:30:00", "30 分", "taro@gmail.example"),  # by name
        ("鈴木 一郎", "2026/12/1 14:00:00", "2026/12/1 15:30:00", "1 時間 30 分", ""),  # two 鈴木 一郎: unmatched
        ("=HYPERLINK(\"http://evil.example\",\"x\")<script>", "2026/12/1 14:00:00", "2026/12/1 14:10:00", "10 分", ""),
    ])
    response = _upload(client, session, data)
    assert response.status_code == 302
    upload = db.session.scalar(select(AttendanceUpload))
    assert response.headers["Location"].endswith(f"/attendance/sessions/{session.id}/report/{upload.id}")
    assert _rows(db, session) == {} and db.session.scalar(select(func.count()).select_from(AttendanceRecord)) == 0
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "&lt;script&gt;" in html and "<script>" not in html.split("<main", 1)[1].split("</main>", 1)[0]
    assert html.count("未照合") == 2
    assert re.search(r"<td>90</td>\s*<td>100%</td>", html)  # Sato: clipped to the scheduled 90 minutes
    assert re.search(r"<td>30</td>\s*<td>33%</td>", html)  # Yamada: 30 of 90 minutes, under 75 %
    assert "時刻を読み取れません" not in html and "読み取れませんでした" not in html
    fired = []

    def heard(sender, **kw):
        fired.append(kw["staff_member_id"])

    attendance_changed.connect(heard, weak=False)
    try:
        # Row 2 (鈴木 一郎) is the second 鈴木; row 3 (the formula) is left out.
        response = client.post(f"/attendance/sessions/{session.id}/report/{upload.id}",
                               data={"row-2": str(suzuki2.staff_member.id), "row-3": "0"})
    finally:
        attendance_changed.disconnect(heard)
    assert response.status_code == 302
    follow = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "出席者レポートから 3 名の出欠を記録しました（取り込まなかった行: 1）" in follow
    rows = _rows(db, session)
    assert (rows[sato.staff_member.id].attended, rows[sato.staff_member.id].attended_pct) == (True, 100)
    assert (rows[yamada.staff_member.id].attended, rows[yamada.staff_member.id].attended_pct) == (False, 33)
    assert rows[suzuki2.staff_member.id].attended is True
    assert rows[suzuki1.staff_member.id].attended is False  # enrolled, not in the report: absent
    assert {r.source for r in rows.values()} == {"teams"}
    assert sorted(fired) == sorted(u.staff_member.id for u in teams["learners"])
    records = db.session.scalars(select(AttendanceRecord).order_by(AttendanceRecord.record_id)).all()
    assert [(r.matched_by, r.staff_member_id) for r in records] == [
        ("email", sato.staff_member.id), ("name", yamada.staff_member.id), ("manual", suzuki2.staff_member.id)]
    entries = db.session.scalars(select(AuditLog).where(AuditLog.action == "attendance.report_upload")).all()
    assert len(entries) == 1 and entries[0].details["ignored"] == 1
    assert db.session.scalar(select(func.count()).select_from(AttendanceUpload)) == 0
    # The same file again: refused at once, before any preview; nothing changes.
    response = _upload(client, session, data)
    assert "この会議の出席者レポートはすでに取り込まれています" in response.get_data(as_text=True)
    assert db.session.scalar(select(AttendanceUpload)) is None
    assert db.session.scalar(select(func.count()).select_from(AttendanceRecord)) == 3


def test_the_english_download_of_a_meeting_already_imported_in_japanese_is_refused(teams, client, db):
    session, sato = teams["session"], teams["learners"][0]
    email = sato.email
    response = _upload(client, session, japanese_report(
        [("佐藤 花子", "2026/12/1 13:58:10", "2026/12/1 15:30:00", "1 時間 31 分 50 秒", email)]))
    assert client.post(response.headers["Location"], data={}).status_code == 302
    response = _upload(client, session, english_report(
        [("佐藤 花子", "12/1/26, 1:58:10 PM", "12/1/26, 3:30:00 PM", "1h 31m 50s", email)]))
    assert "この会議の出席者レポートはすでに取り込まれています" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(AttendanceRecord)) == 1


def test_a_staff_member_without_a_place_is_a_walk_in_recorded_but_not_counted(teams, client, db, make_user):
    """A row whose address names a staff member with no confirmed place (as the Graph import
    matches them): shown as 飛び入り with their municipality, never offered to be matched to an
    enrollee in their place, recorded and not counted."""
    session, sato = teams["session"], teams["learners"][0]
    guest = make_user("learner", "131024", name="飛入 三郎")
    response = _upload(client, session, japanese_report([
        ("佐藤 花子", "2026/12/1 14:00:00", "2026/12/1 15:30:00", "1 時間 30 分", sato.email),
        ("飛入 三郎", "2026/12/1 14:00:00", "2026/12/1 15:30:00", "1 時間 30 分", guest.email)]))
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "受講確定者ではありません（飛び入り）" in html and "未照合" not in html and 'name="row-1"' not in html
    assert guest.staff_member.municipality.name in html
    follow = client.get(client.post(response.headers["Location"], data={}).headers["Location"]).get_data(as_text=True)
    assert "出席者レポートから 1 名の出欠を記録しました" in follow
    records = {r.staff_member_id: r for r in db.session.scalars(select(AttendanceRecord))}
    assert set(records) == {sato.staff_member.id, guest.staff_member.id}
    assert guest.staff_member.id not in _rows(db, session)  # recorded, not counted
    page = client.get(f"/teams/sessions/{session.id}").get_data(as_text=True)
    assert "受講確定者ではありません（飛び入り）" in page


def test_confirm_refuses_a_staff_member_of_another_session_and_writes_nothing(teams, client, db, make_user,
                                                                            make_session, make_course):
    session = teams["session"]
    other = make_session(make_course(owner_id=teams["trainer"].id), starts_at=START, ends_at=START + timedelta(hours=1))
    stranger = make_user("learner", "131016")
    enrollment = Enrollment(session_id=other.id, staff_member_id=stranger.staff_member.id,
                            municipality_id=stranger.municipality_id, status=CONFIRMED)
    db.session.add(enrollment)
    db.session.flush()
    enrollment_status_changed.send(enrollment, old_status=None, new_status=CONFIRMED, actor=None, notice=None,
                                   position=None)
    db.session.commit()
    _upload(client, session, english_report([("Someone", "12/1/26, 2:00:00 PM", "12/1/26, 3:00:00 PM", "1h", "")]))
    upload = db.session.scalar(select(AttendanceUpload))
    for value in (str(stranger.staff_member.id), "abc", "99999999999999999999"):
        response = client.post(f"/attendance/sessions/{session.id}/report/{upload.id}", data={"row-0": value},
                               follow_redirects=True)
        assert response.status_code == 200
        assert "この研修回の受講確定者から選んでください" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(AttendanceRecord)) == 0
    assert _rows(db, session) == {}


def test_bad_files_get_a_message_and_nothing_is_kept(teams, client, db, app, monkeypatch):
    session = teams["session"]
    assert app.config["LMS_ATTENDANCE_REPORT_MAX_BYTES"] == 5 * 1024 * 1024
    with pytest.raises(ReportError, match="大きすぎます"):
        report_upload.upload_report(session, b"a" * (5 * 1024 * 1024 + 1), "big.csv", teams["trainer"])
    monkeypatch.setitem(app.config, "LMS_ATTENDANCE_REPORT_MAX_BYTES", 4096)  # small enough for the test client
    for data, message in ((b"\x81\x20\xe3\x81 neither UTF-8 nor Shift_JIS", "文字コードを読み取れません"),
                          (b"\x00\x01\x02binary\xff\xfe\x00", "Teams の出席者レポートではない"),
                          (b"\x7fELF\x02\x01\x01\x00\x00\x00", "Teams の出席者レポートではない"),
                          (b"", "ファイルが空です"),
                          (b"a" * (app.config["LMS_ATTENDANCE_REPORT_MAX_BYTES"] + 10), "ファイルが大きすぎます")):
        response = _upload(client, session, data)
        assert response.status_code == 200, message
        assert message in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(AttendanceUpload)) == 0


def test_a_report_of_another_days_meeting_is_refused(teams, client, db):
    """The summary's start time names the meeting: another day's (a series' next day, last
    month's session) is refused with both times; one opened a little early is this session's."""
    session = teams["session"]  # 2026-12-01 14:00 Japan time
    person = [("佐藤 花子", "12/15/26, 1:58:10 PM", "12/15/26, 3:30:00 PM", "1h 31m 50s", "")]
    other_day = english_report(person).decode("utf-16-le").replace("12/1/26", "12/15/26").encode("utf-16-le")
    response = _upload(client, session, other_day)
    text = response.get_data(as_text=True)
    assert response.status_code == 200 and "研修回（2026年12月1日" in text and "の会議ではありません" in text
    assert "2026年12月15日" in text
    assert db.session.scalar(select(func.count()).select_from(AttendanceUpload)) == 0
    same_day = english_report([("佐藤 花子", "12/1/26, 1:58:10 PM", "12/1/26, 3:30:00 PM", "1h 31m 50s", "")])
    assert _upload(client, session, same_day).status_code == 302


def test_a_preview_is_the_uploaders_own(teams, client, db, login_as):
    session = teams["session"]
    _upload(client, session, english_report([("Someone", "12/1/26, 2:00:00 PM", "12/1/26, 3:00:00 PM", "1h", "")]))
    upload = db.session.scalar(select(AttendanceUpload))
    login_as("platform_admin")  # may manage the session, but the upload is the trainer's
    assert client.get(f"/attendance/sessions/{session.id}/report/{upload.id}").status_code == 404
    assert client.post(f"/attendance/sessions/{session.id}/report/{upload.id}", data={}).status_code == 404
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "access.denied",
                                                    AuditLog.target_type == "attendance_upload")) is not None


def test_upload_before_the_session_started_is_refused(teams, client, db, make_session, make_course):
    later = make_session(make_course(owner_id=teams["trainer"].id), starts_in=timedelta(days=2))
    page = client.get(f"/attendance/sessions/{later.id}/report").get_data(as_text=True)
    assert "この研修回はまだ始まっていません。出欠は開始後に入力できます。" in page
    response = _upload(client, later, english_report([("A", "12/1/26, 2:00:00 PM", "12/1/26, 3:00:00 PM", "1h", "")]))
    assert "まだ始まっていません" in response.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(AttendanceUpload)) == 0


def test_attendance_from_intervals_is_the_one_rule(teams):
    session = teams["session"]
    values = services.attendance_from_intervals(session, [(START - timedelta(minutes=10), START + timedelta(minutes=68))])
    assert (values["attended_seconds"], values["attended_pct"], values["attended"]) == (68 * 60, 75, True)


def test_the_preview_says_which_rows_had_times_it_could_not_read(teams, client, db):
    session, (sato, *_others) = teams["session"], teams["learners"]
    data = japanese_report([("Sato Hanako", "2026/12/1 午後", "2026/12/1 15:35:00", "", sato.email),
                            ("山田　太郎", "2026/12/1 14:00:00", "2026/12/1 14:30:00", "30 分", "")])
    response = _upload(client, session, data)
    assert response.status_code == 302
    html = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "1 行で、参加・退出の時刻の一部を読み取れませんでした" in html
    assert html.count("時刻を読み取れません</span>") == 1
    assert re.search(r"<td>0<br><span class=\"badge badge-waitlisted\">時刻を読み取れません</span></td>", html)
