"""Attendance reports imported after the session: matched by object id, then e-mail, never by name."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from lms.attendance.models import Attendance, AttendanceRecord
from lms.audit.models import AuditLog
from lms.common.signals import attendance_changed, session_created
from lms.common.timeutil import as_utc
from lms.teams.models import GraphOperation
from tests.teams.graph_server import TENANT_ID

rec = None  # set per test from the server


@pytest.fixture
def scene(graph_app, graph_server, db, login_as, make_course, make_session, make_user, make_staff, confirm):
    """A 90-minute Teams session that ended an hour ago, with four confirmed enrollees and a meeting."""
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    session = make_session(course, starts_in=-timedelta(minutes=150), minutes=90, join_url="")
    by_oid = make_user("learner", "131016", name="青木 一郎")
    by_mail = make_user("learner", "131024", name="井上 花子")
    lookalike = make_user("learner", "131032", name="佐藤 健")
    never = make_user("learner", "131041", name="田中 美咲")
    confirm(session, by_oid.staff_member, by_mail.staff_member, lookalike.staff_member, never.staff_member,
            signal=False)
    session_created.send(session, actor=trainer, changes={})
    db.session.commit()
    assert session.graph_online_meeting_id
    start, end = as_utc(session.starts_at), as_utc(session.ends_at)
    server = graph_server
    records = [
        # joined 10 minutes early, stayed to the end, left and rejoined: merged and clipped to 90 min
        server.attendance_record(object_id=by_oid.object_id, tenant_id=by_oid.tenant_id, name="Aoki Ichiro (青木)",
                                 email=None, intervals=[(start - timedelta(minutes=10), start + timedelta(minutes=50)),
                                                        (start + timedelta(minutes=45), end + timedelta(minutes=5))]),
        # an external-looking identity: no object id we know, e-mail in capitals: 60 of 90 minutes = 66 %
        server.attendance_record(object_id="9b0c2f1e-0000-4000-8000-000000000001", tenant_id=by_mail.tenant_id,
                                 name="Inoue", email=by_mail.email.upper(),
                                 intervals=[(start, start + timedelta(minutes=60))]),
        # same display name as an enrollee, but neither id nor e-mail: must stay unmatched
        server.attendance_record(object_id="5e3f0000-0000-4000-8000-000000000002", tenant_id="other-tenant",
                                 name=lookalike.display_name, email="sato.ken@gmail.example",
                                 intervals=[(start, end)]),
        # the organizer
        server.attendance_record(object_id=trainer.object_id, tenant_id=TENANT_ID, name=trainer.display_name,
                                 email=trainer.email, intervals=[(start, end)], role="Organizer"),
    ]
    server.add_attendance_report(session.graph_online_meeting_id, start, end, records)
    return {"session": session, "trainer": trainer, "by_oid": by_oid, "by_mail": by_mail, "lookalike": lookalike,
            "never": never}


def _rows(db, session):
    return {a.staff_member_id: a for a in db.session.scalars(select(Attendance).where(Attendance.session_id == session.id))}


def test_import_matches_by_object_id_then_email_never_by_name_and_applies_the_75_percent_rule(
        scene, client, db, graph_server):
    session = scene["session"]
    changed = []

    def listener(sender, **kw):
        changed.append((kw["staff_member_id"], kw["session_id"]))

    attendance_changed.connect(listener)
    try:
        response = client.post(f"/teams/sessions/{session.id}/import/attendance")
    finally:
        attendance_changed.disconnect(listener)
    assert response.status_code == 302
    op = db.session.scalar(select(GraphOperation).where(GraphOperation.kind == "import_attendance"))
    assert op.status == "done", op.last_error
    assert op.details["records"] == 4 and op.details["added"] == 4

    records = {r.display_name: r for r in db.session.scalars(select(AttendanceRecord))}
    assert records["Aoki Ichiro (青木)"].matched_by == "oid"
    assert records["Aoki Ichiro (青木)"].staff_member_id == scene["by_oid"].staff_member.id
    assert records["Inoue"].matched_by == "email"
    assert records["Inoue"].staff_member_id == scene["by_mail"].staff_member.id
    assert records[scene["lookalike"].display_name].staff_member_id is None  # never by display name
    assert records[scene["lookalike"].display_name].raw["identity"]["tenantId"] == "other-tenant"

    rows = _rows(db, session)
    aoki = rows[scene["by_oid"].staff_member.id]
    assert (aoki.attended_seconds, aoki.attended_pct, aoki.attended) == (90 * 60, 100, True)
    assert len(aoki.intervals) == 1  # overlapping intervals merged, clipped to the schedule
    inoue = rows[scene["by_mail"].staff_member.id]
    assert (inoue.attended_seconds, inoue.attended_pct, inoue.attended) == (60 * 60, 66, False)
    assert rows[scene["never"].staff_member.id].attended is False
    assert rows[scene["lookalike"].staff_member.id].attended_seconds == 0
    assert scene["trainer"].id not in {r.staff_member_id for r in rows.values()}
    assert sorted(changed) == sorted((s, session.id) for s in rows)
    db.session.refresh(session)
    assert session.attendance_imported_at is not None

    page = client.get(f"/teams/sessions/{session.id}").get_data(as_text=True)
    assert "職員と照合できなかった記録が 1 件あります" in page
    assert "66%" in page and "出席" in page and "欠席" in page


def test_running_the_import_again_changes_nothing(scene, client, db, graph_server):
    session = scene["session"]
    client.post(f"/teams/sessions/{session.id}/import/attendance")
    before = {(a.staff_member_id, a.attended_seconds, a.attended_pct, a.attended, as_utc(a.updated_at))
              for a in db.session.scalars(select(Attendance))}
    fired = []
    attendance_changed.connect(fired.append)
    try:
        client.post(f"/teams/sessions/{session.id}/import/attendance")
    finally:
        attendance_changed.disconnect(fired.append)
    ops = db.session.scalars(select(GraphOperation).where(GraphOperation.kind == "import_attendance")).all()
    assert [o.status for o in ops] == ["done", "done"]
    assert ops[1].details["added"] == 0
    assert db.session.scalar(select(func.count()).select_from(AttendanceRecord)) == 4
    after = {(a.staff_member_id, a.attended_seconds, a.attended_pct, a.attended, as_utc(a.updated_at))
             for a in db.session.scalars(select(Attendance))}
    assert after == before and fired == []


def test_trainer_matches_an_unmatched_record_and_corrects_attendance_with_a_reason(scene, client, db):
    session = scene["session"]
    client.post(f"/teams/sessions/{session.id}/import/attendance")
    record = db.session.scalar(select(AttendanceRecord).where(AttendanceRecord.display_name == scene["lookalike"].display_name))
    target = scene["lookalike"].staff_member
    response = client.post(f"/attendance/records/{record.id}/match", data={"staff_member_id": str(target.id)})
    assert response.status_code == 302
    db.session.refresh(record)
    assert (record.staff_member_id, record.matched_by, record.matched_by_user_id) == (target.id, "manual", scene["trainer"].id)
    row = _rows(db, session)[target.id]
    assert row.attended is True and row.attended_pct == 100
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "attendance.match"))
    assert entry.details["new_staff_member_id"] == target.id

    # a re-import keeps the manual match
    client.post(f"/teams/sessions/{session.id}/import/attendance")
    db.session.refresh(record)
    assert record.staff_member_id == target.id

    inoue = scene["by_mail"].staff_member
    response = client.post(f"/teams/sessions/{session.id}",
                           data={"staff_member_id": str(inoue.id), "attended": "1", "reason": ""})
    # No reason, no change: the page again, the error in its summary and beside the field, the
    # choices kept (it was a flash after a redirect, with the form emptied).
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert '<div class="error-summary" role="alert" tabindex="-1">' in page
    assert '<a href="#reason">修正の理由</a>: 修正の理由を入力してください。' in page
    assert re.search(r'<textarea[^>]*aria-invalid="true"[^>]*id="reason"|<textarea[^>]*id="reason"[^>]*aria-invalid', page)
    assert f'<option selected value="{inoue.id}">' in page or f'value="{inoue.id}" selected' in page
    assert _rows(db, session)[inoue.id].attended is False
    response = client.post(f"/teams/sessions/{session.id}", data={
        "staff_member_id": str(inoue.id), "attended": "1", "reason": "通信障害で一時退出（Teams のログで確認）"})
    assert response.status_code == 302
    row = _rows(db, session)[inoue.id]
    assert (row.attended, row.source, row.corrected_by_id) == (True, "manual", scene["trainer"].id)
    entry = db.session.scalar(select(AuditLog).where(AuditLog.action == "attendance.correct"))
    assert entry.details["reason"].startswith("通信障害") and entry.details["before"]["attended"] is False
    # and the import does not overwrite a trainer's correction
    client.post(f"/teams/sessions/{session.id}/import/attendance")
    assert _rows(db, session)[inoue.id].attended is True


def test_a_failed_page_fails_the_import_with_nothing_half_applied_and_retry_works(
        scene, client, db, graph_server, app, login_as, make_user):
    session = scene["session"]
    start = as_utc(session.starts_at)
    many = [graph_server.attendance_record(object_id=f"00000000-0000-4000-8000-{i:012d}", tenant_id="t",
                                           name=f"guest {i}", email=None, intervals=[(start, start + timedelta(minutes=5))])
            for i in range(250)]
    graph_server.add_attendance_report(session.graph_online_meeting_id, start, as_utc(session.ends_at), many)
    graph_server.fail("attendanceRecords", 500, times=1, **{"$skiptoken": "100"})
    client.post(f"/teams/sessions/{session.id}/import/attendance")
    op = db.session.scalar(select(GraphOperation).where(GraphOperation.kind == "import_attendance"))
    assert op.status == "failed" and "HTTP 500" in op.last_error
    assert op.details["retryable"] is True and op.details["next_attempt_at"]
    assert db.session.scalar(select(func.count()).select_from(AttendanceRecord)) == 0
    assert db.session.scalar(select(func.count()).select_from(Attendance)) == 0
    db.session.refresh(session)
    assert session.attendance_imported_at is None

    admin_client = app.test_client()
    login_as(user=make_user("platform_admin"), on=admin_client)
    assert admin_client.post(f"/teams/operations/{op.id}/retry").status_code == 302
    db.session.refresh(op)
    assert op.status == "done" and op.details["records"] == 254
    assert db.session.scalar(select(func.count()).select_from(AttendanceRecord)) == 254


def test_throttling_during_the_import_is_waited_out(scene, client, db, graph_server):
    session = scene["session"]
    graph_server.fail("attendanceRecords", 429, times=2, retry_after="1")
    client.post(f"/teams/sessions/{session.id}/import/attendance")
    op = db.session.scalar(select(GraphOperation).where(GraphOperation.kind == "import_attendance"))
    assert op.status == "done"
    assert op.graph_calls == 4  # reports, then records: 429, 429, 200
    assert len(graph_server.calls("GET", "attendanceRecords")) == 3


def test_periodic_task_and_cli_import_ended_sessions(scene, db, runner, graph_server):
    from lms.teams.services import queue_due_imports

    session = scene["session"]
    result = runner.invoke(args=["lms", "graph-import-attendance", "--session", str(session.id)])
    assert result.exit_code == 0, result.output
    assert '"status": "done"' in result.output
    assert db.session.scalar(select(func.count()).select_from(AttendanceRecord)) == 4
    # already imported: the periodic task leaves it alone
    queued = queue_due_imports()
    assert session.id not in queued["attendance"]


def test_only_the_course_owner_and_platform_admins_see_the_session_page(scene, app, login_as, make_user):
    session = scene["session"]
    for role in ("trainer", "learner", "municipal_admin"):
        other = app.test_client()
        login_as(role, on=other)
        # Answered as for a session that does not exist.
        assert other.get(f"/teams/sessions/{session.id}").status_code == 404
        assert other.get("/teams/sessions/2147483647").status_code == 404
        assert other.post(f"/teams/sessions/{session.id}/import/attendance").status_code == 404
        assert other.post(f"/teams/sessions/{session.id}", data={}).status_code == 404
    admin = app.test_client()
    login_as("platform_admin", on=admin)
    assert admin.get(f"/teams/sessions/{session.id}").status_code == 200


def test_imports_of_a_session_not_ended_or_cancelled_are_refused_at_once(graph_app, graph_server, client, db,
                                                                          login_as, make_course, make_session):
    from lms.courses.models import CANCELLED
    from lms.teams import operations as ops
    from lms.teams.services import execute_operation

    trainer = login_as("trainer")
    session = make_session(make_course(owner_id=trainer.id), starts_in=timedelta(days=2), join_url="")
    session_created.send(session, actor=trainer, changes={})
    db.session.commit()
    before = db.session.scalar(select(func.count()).select_from(GraphOperation))
    page = client.get(f"/teams/sessions/{session.id}").get_data(as_text=True)
    assert "研修回が終了してから出席を取り込みます。" in page and "研修回が終了してから録画を取り込みます。" in page
    assert f"/teams/sessions/{session.id}/import/attendance" not in page
    answer = client.post(f"/teams/sessions/{session.id}/import/attendance", follow_redirects=True)
    assert "研修回が終了してから出席を取り込みます。" in answer.get_data(as_text=True)
    assert "取り込みを受け付けました" not in answer.get_data(as_text=True)
    answer = client.post(f"/teams/sessions/{session.id}/import/recordings", follow_redirects=True)
    assert "研修回が終了してから録画を取り込みます。" in answer.get_data(as_text=True)
    assert db.session.scalar(select(func.count()).select_from(GraphOperation)) == before

    # one queued before the session was cancelled fails for good: waiting changes nothing
    op = ops.queue_operation(session.id, ops.IMPORT_ATTENDANCE)
    session.status = CANCELLED
    db.session.commit()
    done = execute_operation(op.id)
    assert done.status == "failed" and done.details["retryable"] is False and done.next_attempt is None


def test_a_staff_member_without_a_place_is_shown_with_municipality_as_not_enrolled(scene, client, db, graph_server,
                                                                                   make_user):
    session = scene["session"]
    walk_in = make_user("learner", "132012", name="鈴木 太郎")  # 八王子市, no place in this session
    start, end = as_utc(session.starts_at), as_utc(session.ends_at)
    graph_server.add_attendance_report(session.graph_online_meeting_id, start, end, [graph_server.attendance_record(
        object_id=None, tenant_id=None, name="鈴木 太郎", email=walk_in.email, intervals=[(start, end)])])
    client.post(f"/teams/sessions/{session.id}/import/attendance")
    html = client.get(f"/teams/sessions/{session.id}").get_data(as_text=True)
    assert "鈴木 太郎（八王子市）" in html
    assert "受講確定者ではありません（飛び入り）" in html
    assert "受講確定者ではない職員の記録が 1 件あります" in html  # not the organiser
