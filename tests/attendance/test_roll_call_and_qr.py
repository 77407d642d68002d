"""Onsite attendance: the trainer's roll call and the learners' QR check-in."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import select

from lms.attendance import services
from lms.attendance.models import Attendance
from lms.audit.models import AuditLog
from lms.common.signals import attendance_changed, enrollment_status_changed
from lms.common.timeutil import utcnow
from lms.enrollment.models import CONFIRMED, Enrollment


@pytest.fixture
def onsite(db, login_as, make_course, make_session, make_user):
    trainer = login_as("trainer")
    session = make_session(make_course(owner_id=trainer.id), starts_in=-timedelta(minutes=10), minutes=120,
                           delivery="hybrid", location="都庁第一本庁舎 32階 研修室", join_url="")
    learners = [make_user("learner", code) for code in ("131016", "131024", "131032")]
    for learner in learners:  # seated directly (the session has started)
        _seat(db, session, learner, notice="confirmed")
    db.session.commit()
    return {"trainer": trainer, "session": session, "learners": learners}


def _seat(db, session, learner, notice=None) -> Enrollment:
    """A confirmed place for ``learner``, published as the enrollment area does."""
    enrollment = Enrollment(session_id=session.id, staff_member_id=learner.staff_member.id,
                            municipality_id=learner.municipality_id, status=CONFIRMED)
    db.session.add(enrollment)
    session.confirmed_count += 1
    db.session.flush()
    enrollment_status_changed.send(enrollment, old_status=None, new_status=CONFIRMED, actor=None, notice=notice,
                                   position=None)
    return enrollment


def _rows(db, session):
    return {a.staff_member_id: a for a in db.session.scalars(select(Attendance).where(Attendance.session_id == session.id))}


def test_roll_call_marks_present_and_absent_and_is_audited(onsite, client, db):
    session, learners = onsite["session"], onsite["learners"]
    page = client.get(f"/attendance/sessions/{session.id}/roll-call")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    for learner in learners:
        assert learner.staff_member.full_name in html
        assert f'id="present-{learner.staff_member.id}"' in html
    fired = []
    attendance_changed.connect(fired.append)
    try:
        response = client.post(f"/attendance/sessions/{session.id}/roll-call",
                               data={"present": [str(learners[0].staff_member.id), str(learners[1].staff_member.id)]})
    finally:
        attendance_changed.disconnect(fired.append)
    assert response.status_code == 302
    rows = _rows(db, session)
    assert [rows[u.staff_member.id].attended for u in learners] == [True, True, False]
    assert {r.source for r in rows.values()} == {"roll_call"}
    assert rows[learners[0].staff_member.id].attended_pct == 100
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "attendance.roll_call"))
    assert entry.details["absent"] == [learners[2].staff_member.id]
    # the latecomer arrives: only their row changes
    client.post(f"/attendance/sessions/{session.id}/roll-call",
                data={"present": [str(u.staff_member.id) for u in learners]})
    assert all(a.attended for a in _rows(db, session).values())


def test_roll_call_refuses_strangers_sessions_not_started_and_teams_sessions_without_a_reason(
        onsite, client, db, make_user, make_session, make_course):
    session = onsite["session"]
    stranger = make_user("learner")
    response = client.post(f"/attendance/sessions/{session.id}/roll-call", data={"present": [str(stranger.staff_member.id)]})
    assert response.status_code == 200 and "受講確定者でない職員が含まれています" in response.get_data(as_text=True)
    assert _rows(db, session) == {}
    # A value that is no id is refused too, never read as "nobody present".
    learner = onsite["learners"][0]
    for crafted in (["abc"], [str(learner.staff_member.id), "1e3"], ["-1"]):
        response = client.post(f"/attendance/sessions/{session.id}/roll-call", data={"present": crafted})
        assert response.status_code == 200 and "受講確定者でない職員が含まれています" in response.get_data(as_text=True)
        assert _rows(db, session) == {}
    teams_only = make_session(make_course(owner_id=onsite["trainer"].id), starts_in=-timedelta(minutes=5))
    response = client.post(f"/attendance/sessions/{teams_only.id}/roll-call", data={})
    assert "理由を入力してください" in response.get_data(as_text=True)
    later = make_session(make_course(owner_id=onsite["trainer"].id), starts_in=timedelta(days=1), delivery="onsite",
                         location="会場")
    response = client.post(f"/attendance/sessions/{later.id}/roll-call", data={})
    assert "開始 30 分前から" in response.get_data(as_text=True)


def test_roll_call_of_a_session_not_started_says_so_before_anyone_ticks(onsite, client, db, make_session, make_course):
    later = make_session(make_course(owner_id=onsite["trainer"].id), starts_in=timedelta(days=1), delivery="onsite",
                         location="会場")
    learner = onsite["learners"][0]
    _seat(db, later, learner)
    db.session.commit()
    html = client.get(f"/attendance/sessions/{later.id}/roll-call").get_data(as_text=True)
    # (one statement of when it opens: 30 minutes before the start, not "after the start")
    assert "出欠は研修回の開始 30 分前から入力できます" in html and "開始後に入力できます" not in html
    assert re.search(r"<fieldset disabled", html) and f'id="present-{learner.staff_member.id}"' in html
    started = client.get(f"/attendance/sessions/{onsite['session'].id}/roll-call").get_data(as_text=True)
    assert "開始 30 分前から入力できます" not in started and "<fieldset disabled" not in started


def test_no_correction_by_hand_before_the_session_or_for_a_cancelled_one(onsite, client, db, make_session, make_course):
    """A correction is attendance recorded as much as a roll call: none for a session not yet
    held (it granted completion, and a certificate dated the day to come), none once cancelled."""
    from lms.completion.models import Completion

    later = make_session(make_course(owner_id=onsite["trainer"].id), starts_in=timedelta(days=10), delivery="onsite",
                         location="会場")
    learner = onsite["learners"][0]
    _seat(db, later, learner)
    db.session.commit()
    page = client.get(f"/teams/sessions/{later.id}").get_data(as_text=True)
    assert f'action="/teams/sessions/{later.id}"' not in page and "開始 30 分前から" in page
    response = client.post(f"/teams/sessions/{later.id}", data={
        "staff_member_id": str(learner.staff_member.id), "attended": "1", "attended_pct": "100", "reason": "事前に確認"},
        follow_redirects=True)
    assert "出欠は研修回の開始 30 分前から記録できます。" in response.get_data(as_text=True)
    db.session.rollback()
    assert _rows(db, later) == {}
    assert db.session.scalar(select(Completion).where(Completion.staff_member_id == learner.staff_member.id)) is None
    later.status = "cancelled"
    later.starts_at = utcnow() - timedelta(hours=3)
    later.ends_at = utcnow() - timedelta(hours=1)
    db.session.commit()
    response = client.post(f"/teams/sessions/{later.id}", data={
        "staff_member_id": str(learner.staff_member.id), "attended": "1", "reason": "事後に確認"}, follow_redirects=True)
    assert "中止された研修回です。" in response.get_data(as_text=True)
    db.session.rollback()
    assert _rows(db, later) == {}
    # Nor a reception QR code or poster for it (a learner scanning it was told no session was found).
    for page_url in (f"/attendance/sessions/{later.id}/qr", f"/attendance/sessions/{later.id}/qr/poster"):
        response = client.get(page_url, follow_redirects=True)
        assert "中止された研修回です。" in response.get_data(as_text=True) and "<svg" not in response.get_data(as_text=True)
    # The session under way takes corrections as before.
    session = onsite["session"]
    assert f'action="/teams/sessions/{session.id}"' in client.get(f"/teams/sessions/{session.id}").get_data(
        as_text=True)


def test_everyone_present_with_one_reason_for_a_teams_session(onsite, client, db, make_session, make_course):
    session = make_session(make_course(owner_id=onsite["trainer"].id), starts_in=-timedelta(hours=3), minutes=90)
    learners = onsite["learners"]
    for learner in learners:
        enrollment = Enrollment(session_id=session.id, staff_member_id=learner.staff_member.id,
                                municipality_id=learner.municipality_id, status=CONFIRMED)
        db.session.add(enrollment)
        db.session.flush()
        enrollment_status_changed.send(enrollment, old_status=None, new_status=CONFIRMED, actor=None, notice=None,
                                       position=None)
    db.session.commit()
    page = client.get(f"/attendance/sessions/{session.id}/roll-call").get_data(as_text=True)
    assert "全員出席にする" in page and 'data-check-all="present"' in page
    response = client.post(f"/attendance/sessions/{session.id}/roll-call",
                           data={"all": "1", "reason": "Graph 未接続のため、画面の参加者一覧で確認"})
    assert response.status_code == 302
    rows = _rows(db, session)
    assert [rows[u.staff_member.id].attended for u in learners] == [True, True, True]
    assert {r.correction_reason for r in rows.values()} == {"Graph 未接続のため、画面の参加者一覧で確認"}
    assert {r.corrected_by_id for r in rows.values()} == {onsite["trainer"].id}
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "attendance.roll_call",
                                                     AuditLog.target_id == str(session.id)))
    assert entry.details["reason"] == "Graph 未接続のため、画面の参加者一覧で確認"
    assert sorted(entry.details["present"]) == sorted(u.staff_member.id for u in learners)
    # One person was not there after all: the same page, one tick fewer, one reason.
    client.post(f"/attendance/sessions/{session.id}/roll-call",
                data={"present": [str(learners[0].staff_member.id), str(learners[1].staff_member.id)],
                      "reason": "本人から欠席の連絡"})
    rows = _rows(db, session)
    assert rows[learners[2].staff_member.id].attended is False
    assert rows[learners[2].staff_member.id].correction_reason == "本人から欠席の連絡"


def _checkin_url(client, session) -> str:
    html = client.get(f"/attendance/sessions/{session.id}/qr").get_data(as_text=True)
    assert "<svg" in html and 'class="qr-code"' in html and "js/checkin-qr.js" in html
    url = unescape(re.search(r"<code>([^<]+)</code>", html).group(1))
    return url.split("://", 1)[1].split("/", 1)[1]


def test_qr_check_in_for_a_signed_in_confirmed_learner(onsite, client, app, db, login_as):
    session, learners = onsite["session"], onsite["learners"]
    path = "/" + _checkin_url(client, session)
    assert path.startswith(f"/attendance/check-in/{session.id}?code=")

    anonymous = app.test_client()
    response = anonymous.get(path)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]

    learner_client = app.test_client()
    login_as(user=learners[0], on=learner_client)
    response = learner_client.get(path)
    assert response.status_code == 200 and "受付が完了しました" in response.get_data(as_text=True)
    row = _rows(db, session)[learners[0].staff_member.id]
    assert (row.source, row.attended, row.checked_in_at is not None) == ("qr", True, True)
    first = row.checked_in_at
    assert learner_client.get(path).status_code == 200  # scanning twice is harmless
    db.session.refresh(row)
    assert row.checked_in_at == first

    # Not the learner's to manage: answered as for a session that does not exist.
    assert learner_client.get(f"/attendance/sessions/{session.id}/qr").status_code == 404

    outsider = app.test_client()
    login_as("learner", on=outsider)
    response = outsider.get(path)
    assert response.status_code == 403 and "受講が確定していない" in response.get_data(as_text=True)


def test_old_or_rotated_codes_and_times_outside_the_window_are_refused(onsite, client, app, db, login_as):
    session, learners = onsite["session"], onsite["learners"]
    path = "/" + _checkin_url(client, session)
    db.session.refresh(session)
    stale = services.checkin_code(session, utcnow() - timedelta(minutes=10))
    learner_client = app.test_client()
    login_as(user=learners[1], on=learner_client)
    response = learner_client.get(f"/attendance/check-in/{session.id}?code={stale}")
    assert response.status_code == 403 and "有効期限が切れています" in response.get_data(as_text=True)
    assert learner_client.get(f"/attendance/check-in/{session.id}?code=").status_code == 403

    confirm = client.get(f"/attendance/sessions/{session.id}/qr/rotate").get_data(as_text=True)
    assert "使えなくなります" in confirm and "作り直す" in confirm  # asked on a page, not by window.confirm
    assert client.post(f"/attendance/sessions/{session.id}/qr/rotate").status_code == 302
    assert learner_client.get(path).status_code == 403  # the code shown before rotation no longer works
    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "attendance.rotate_checkin"))

    db.session.refresh(session)
    with pytest.raises(Exception) as info:
        services.check_in(session.id, services.checkin_code(session, session.ends_at + timedelta(minutes=5)),
                          learners[1], at=session.ends_at + timedelta(minutes=5))
    assert "受付時間外" in info.value.message
    assert learners[1].staff_member.id not in _rows(db, session)


def test_qr_check_in_does_not_override_a_trainers_correction(onsite, db):
    session, learners = onsite["session"], onsite["learners"]
    services.correct_attendance(session, learners[2].staff_member.id, False, "途中退席（本人申告）", onsite["trainer"])
    services.ensure_checkin_secret(session)
    db.session.commit()
    services.check_in(session.id, services.checkin_code(session), learners[2])
    db.session.commit()
    row = _rows(db, session)[learners[2].staff_member.id]
    assert row.attended is False and row.checked_in_at is not None and row.source == "manual"


def test_hybrid_roll_call_and_teams_report_combine(onsite, db):
    """In a hybrid session, present in the room or online (by the 75 % rule) counts as attended."""
    from lms.attendance.models import AttendanceRecord
    from lms.common.timeutil import as_utc

    session, learners = onsite["session"], onsite["learners"]
    in_room, online, neither = (u.staff_member.id for u in learners)
    services.record_roll_call(session, {in_room}, onsite["trainer"])
    db.session.commit()
    start, end = as_utc(session.starts_at), as_utc(session.ends_at)
    report = [
        (online, "online-record", [(start, end)]),
        (neither, "short-record", [(start, start + timedelta(minutes=10))]),
    ]
    for staff_id, record_id, spans in report:
        db.session.add(AttendanceRecord(session_id=session.id, report_id="r1", record_id=record_id,
                                        staff_member_id=staff_id, matched_by="oid",
                                        intervals=[[a.isoformat(), b.isoformat()] for a, b in spans]))
    db.session.flush()
    services.recompute_attendance(session)
    db.session.commit()
    rows = _rows(db, session)
    assert (rows[in_room].attended, rows[in_room].source) == (True, "roll_call")
    assert (rows[online].attended, rows[online].source, rows[online].attended_pct) == (True, "teams", 100)
    assert (rows[neither].attended, rows[neither].source) == (False, "roll_call")
    # taking the roll again does not mark the online attendee absent
    services.record_roll_call(session, {in_room}, onsite["trainer"])
    db.session.commit()
    assert _rows(db, session)[online].attended is True


def test_the_qr_page_opened_in_several_tabs_at_once_makes_one_secret(onsite, app, db, live_server):
    """No check-in secret yet, and the QR page opened at the same instant in four tabs (two
    trainers, a projector): one secret is made (under the session's lock), so the code every
    tab shows is accepted — before, the losing tabs showed codes refused as expired."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from tests import factories

    session = onsite["session"]
    assert not session.checkin_token
    cookie = f"{app.config['SESSION_COOKIE_NAME']}={factories.session_cookie(app, onsite['trainer'])}"
    url = f"{live_server.url}/attendance/sessions/{session.id}/qr"
    start = threading.Barrier(4)

    def open_page(_n):
        start.wait(10)
        html = requests.get(url, headers={"Cookie": cookie}, timeout=60).text
        return unescape(re.search(r"<code>([^<]+)</code>", html).group(1)).rsplit("code=", 1)[1]

    with ThreadPoolExecutor(4) as pool:
        codes = set(pool.map(open_page, range(4)))
    db.session.rollback()
    db.session.refresh(session)
    now = utcnow()
    valid = {services.checkin_code(session, now, offset) for offset in (0, -1)}
    assert codes <= valid


def test_presence_recorded_before_the_end_completes_once_the_session_is_over(onsite, client, db, make_session,
                                                                              make_course):
    """Found by QA: a roll call at reception, 15 minutes before the start, completed the course
    at once, with a 修了証, for training not yet given. Presence is recorded then; the completion
    follows the end of the session (the worker's round after it), dated at the end."""
    from lms.common.timeutil import as_utc
    from lms.completion.models import COMPLETED, Completion
    from lms.completion.services import completions_due_as_sessions_end
    from lms.completion.tasks import complete_ended_sessions

    course = make_course(owner_id=onsite["trainer"].id, completion_mode="attendance")
    soon = make_session(course, starts_in=timedelta(minutes=15), minutes=60, delivery="onsite", location="会場")
    learner = onsite["learners"][0]
    _seat(db, soon, learner)
    db.session.commit()
    assert client.post(f"/attendance/sessions/{soon.id}/roll-call",
                       data={"present": [str(learner.staff_member.id)]}).status_code == 302
    assert _rows(db, soon)[learner.staff_member.id].attended
    completed = select(Completion).where(Completion.staff_member_id == learner.staff_member.id,
                                         Completion.course_id == course.id, Completion.status == COMPLETED)
    assert db.session.scalar(completed) is None
    assert completions_due_as_sessions_end() == [] and complete_ended_sessions() == 0
    # The session is held and ends (its times moved back as the clock would move on).
    db.session.refresh(soon)
    soon.starts_at, soon.ends_at = utcnow() - timedelta(minutes=70), utcnow() - timedelta(minutes=10)
    db.session.commit()
    assert [(s, c) for s, c, _y in completions_due_as_sessions_end()] == [(learner.staff_member.id, course.id)]
    assert complete_ended_sessions() == 1
    done = db.session.scalar(completed)
    assert done is not None and as_utc(done.completed_at) == as_utc(soon.ends_at)
    assert completions_due_as_sessions_end() == [] and complete_ended_sessions() == 0  # (once)
