"""A trainer schedules a Teams session: the Outlook event with a Teams meeting follows the session."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from lms.common.timeutil import to_tokyo, utcnow
from lms.courses.models import TrainingSession
from lms.teams.models import GraphOperation
from tests.teams.conftest import ORGANIZER


def _schedule(client, course, starts, *, delivery="teams", location="", join_url=""):
    start_local = to_tokyo(starts)
    end_local = start_local + timedelta(minutes=90)
    return client.post(f"/manage/courses/{course.id}/sessions/new", data={
        "title": "第1回", "starts_at": f"{start_local:%Y-%m-%dT%H:%M}", "ends_at": f"{end_local:%Y-%m-%dT%H:%M}",
        "delivery": delivery, "location": location, "join_url": join_url, "capacity": "30", "save": "保存",
    })


def _only_session(db, course) -> TrainingSession:
    return db.session.scalars(select(TrainingSession).where(TrainingSession.course_id == course.id)).one()


def test_scheduling_a_teams_session_creates_the_event_and_stores_the_join_link(graph_app, graph_server, client, db,
                                                                               login_as, make_course):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id, title="Teams 活用研修（基礎）", summary="Teams の基本操作")
    starts = (utcnow() + timedelta(days=10)).replace(second=0, microsecond=0)
    response = _schedule(client, course, starts)
    assert response.status_code == 302, response.get_data(as_text=True)

    posts = graph_server.calls("POST", "/events")
    assert len(posts) == 1
    sent = posts[0]
    assert sent.path == f"/users/{ORGANIZER}/events"
    body = sent.body
    assert body["isOnlineMeeting"] is True
    assert body["onlineMeetingProvider"] == "teamsForBusiness"
    assert body["start"] == {"dateTime": f"{to_tokyo(starts):%Y-%m-%dT%H:%M:%S}", "timeZone": "Tokyo Standard Time"}
    assert body["end"]["timeZone"] == "Tokyo Standard Time"
    assert body["subject"] == "Teams 活用研修（基礎） 第1回"
    assert body["attendees"] == []
    assert body["transactionId"]

    session = _only_session(db, course)
    event = graph_server.events[session.graph_event_id]
    assert session.graph_transaction_id == body["transactionId"]
    assert session.graph_ical_uid == event["iCalUId"]
    assert session.join_url == event["onlineMeeting"]["joinUrl"]
    assert session.graph_organizer == ORGANIZER
    assert session.graph_sync_status == "created"
    lookup = graph_server.calls("GET", "/onlineMeetings")
    assert lookup[0].query["$filter"] == f"JoinWebUrl eq '{session.join_url}'"
    assert session.graph_online_meeting_id == graph_server.meeting_for_event(session.graph_event_id)["id"]
    op = db.session.scalars(select(GraphOperation).where(GraphOperation.session_id == session.id)).one()
    assert (op.kind, op.status, op.graph_calls) == ("create_event", "done", 2)

    page = client.get(f"/teams/sessions/{session.id}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200
    assert session.join_url.replace("&", "&amp;") in html
    assert "作成済み" in html


def test_confirmed_enrollments_become_attendees_and_edits_and_cancellation_follow(
        graph_app, graph_server, client, db, login_as, make_course, make_session, make_user):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id, organizer_mailbox="kenshu-teams@metro.example.lg.jp")
    starts = (utcnow() + timedelta(days=10)).replace(second=0, microsecond=0)
    _schedule(client, course, starts)
    session = _only_session(db, course)
    assert session.graph_organizer == "kenshu-teams@metro.example.lg.jp"  # the course's mailbox wins

    from lms.enrollment.services import enroll

    learners = [make_user("learner", code) for code in ("131016", "131024")]
    for learner in learners:
        enroll(session.id, learner.staff_member.id, learner)
        db.session.commit()
    patches = graph_server.calls("PATCH", "/events/")
    assert len(patches) == 2
    assert patches[-1].body == {"attendees": [
        {"emailAddress": {"address": learner.staff_member.email, "name": learner.staff_member.full_name},
         "type": "required"} for learner in learners]}
    event = graph_server.events[session.graph_event_id]
    assert {a["emailAddress"]["address"] for a in event["attendees"]} == {u.email for u in learners}

    # the trainer moves the session by an hour: the event follows
    new_start = to_tokyo(starts + timedelta(hours=1))
    response = client.post(f"/manage/sessions/{session.id}/edit", data={
        "title": "第1回", "starts_at": f"{new_start:%Y-%m-%dT%H:%M}",
        "ends_at": f"{new_start + timedelta(minutes=90):%Y-%m-%dT%H:%M}", "delivery": "teams", "location": "",
        "join_url": session.join_url, "capacity": "30", "save": "保存"})
    assert response.status_code == 302, response.get_data(as_text=True)
    last = graph_server.calls("PATCH", "/events/")[-1].body
    assert last["start"]["dateTime"] == f"{new_start:%Y-%m-%dT%H:%M:%S}"
    assert len(last["attendees"]) == 2
    assert len(graph_server.calls("POST", "/events")) == 1  # never a second event

    response = client.post(f"/manage/sessions/{session.id}/cancel", data={"reason": "講師急病のため", "submit": "中止する"})
    assert response.status_code == 302
    cancels = graph_server.calls("POST", "/cancel")
    assert len(cancels) == 1 and cancels[0].body["comment"]
    assert graph_server.events[session.graph_event_id]["isCancelled"] is True
    db.session.refresh(session)
    assert session.graph_sync_status == "cancelled"


def test_a_failed_create_is_recorded_with_its_reason_and_the_retry_button_works(
        graph_app, graph_server, client, app, db, login_as, make_course, make_user):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    graph_server.fail("/events", 403, times=1, method="POST")
    _schedule(client, course, utcnow() + timedelta(days=3))
    session = _only_session(db, course)
    op = db.session.scalars(select(GraphOperation).where(GraphOperation.session_id == session.id)).one()
    assert op.status == "failed" and "HTTP 403" in op.last_error and "Forbidden" in op.last_error
    assert op.details["retryable"] is False
    assert session.graph_sync_status == "failed" and session.graph_event_id == ""

    admin = make_user("platform_admin")
    admin_client = app.test_client()
    login_as(user=admin, on=admin_client)
    page = admin_client.get("/teams/status?status=failed")
    assert page.status_code == 200 and "HTTP 403" in page.get_data(as_text=True)
    assert client.post(f"/teams/operations/{op.id}/retry").status_code == 403  # trainers cannot
    response = admin_client.post(f"/teams/operations/{op.id}/retry")
    assert response.status_code == 302
    db.session.refresh(op)
    db.session.refresh(session)
    assert op.status == "done" and op.attempts == 2
    assert session.graph_event_id and session.join_url.startswith("https://teams.microsoft.com/")
    from lms.audit.models import AuditLog

    assert db.session.scalar(select(AuditLog).where(AuditLog.action == "teams.retry")).actor_id == admin.id


def test_an_unreachable_queue_loses_nothing_the_periodic_task_runs_it(graph_app, graph_server, db, make_course,
                                                                       make_session, monkeypatch):
    from lms.common.signals import session_created
    from lms.teams import tasks

    def broken(operation_id):
        raise ConnectionError("redis down")

    monkeypatch.setattr(tasks, "run_graph_operation", broken)
    session = make_session(make_course(), commit=False, join_url="")
    session_created.send(session, actor=None, changes={})
    db.session.commit()
    op = db.session.scalars(select(GraphOperation)).one()
    assert op.status == "queued" and not graph_server.calls("POST", "/events")

    monkeypatch.undo()
    db.session.execute(update(GraphOperation).values(created_at=utcnow() - timedelta(minutes=5)))
    db.session.commit()
    tasks.graph_pick_up_operations.call_local()
    db.session.expire_all()
    assert db.session.get(GraphOperation, op.id).status == "done"
    assert len(graph_server.calls("POST", "/events")) == 1


def test_a_rolled_back_change_queues_nothing(graph_app, graph_server, db, make_course, make_session):
    from lms.common.signals import session_created

    session = make_session(make_course(), commit=False)
    session_created.send(session, actor=None, changes={})
    db.session.rollback()
    db.session.commit()
    assert db.session.scalars(select(GraphOperation)).all() == []
    assert graph_server.call_count == 0


def test_onsite_sessions_get_no_meeting(graph_app, graph_server, client, db, login_as, make_course):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    _schedule(client, course, utcnow() + timedelta(days=3), delivery="onsite", location="都庁第一本庁舎 5階")
    assert graph_server.call_count == 0
    assert db.session.scalars(select(GraphOperation)).all() == []


def test_a_queued_attendee_sync_is_superseded_by_a_newer_one(graph_app, graph_server, db, make_course, make_session,
                                                              monkeypatch, make_user, confirm):
    """Two enrollments in quick succession: the older queued sync gives way, the newer one PATCHes once."""
    from lms.common.signals import session_created
    from lms.teams import tasks
    from lms.teams.services import execute_operation

    session = make_session(make_course(), join_url="")
    session_created.send(session, actor=None, changes={})
    db.session.commit()
    monkeypatch.setattr(tasks, "run_graph_operation", lambda operation_id: None)  # the worker is busy
    first, second = make_user("learner"), make_user("learner")
    confirm(session, first.staff_member)
    confirm(session, second.staff_member)
    older, newer = db.session.scalars(select(GraphOperation).where(GraphOperation.kind == "sync_attendees")
                                      .order_by(GraphOperation.id)).all()
    assert older.status == newer.status == "queued"
    execute_operation(older.id)
    db.session.refresh(older)
    assert older.status == "done" and older.details["superseded_by"] == newer.id and older.graph_calls == 0
    execute_operation(newer.id)
    patches = graph_server.calls("PATCH", "/events/")
    assert len(patches) == 1 and len(patches[0].body["attendees"]) == 2


def test_a_typed_join_link_is_kept_and_no_meeting_is_made_for_it(graph_app, graph_server, client, db, login_as,
                                                                   make_course, make_user, confirm):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    typed = "https://teams.microsoft.com/l/meetup-join/own-meeting"
    response = _schedule(client, course, utcnow() + timedelta(days=3), join_url=typed)
    assert response.status_code == 302, response.get_data(as_text=True)
    session = _only_session(db, course)
    confirm(session, make_user("learner").staff_member)
    db.session.refresh(session)
    assert session.join_url == typed and session.graph_event_id == ""
    assert graph_server.calls("POST", "/events") == []
    assert db.session.scalars(select(GraphOperation)).all() == []


def test_a_new_link_from_graph_is_told_to_the_enrollees(graph_app, graph_server, db, make_course, make_session,
                                                        make_user, confirm):
    from lms.common.signals import session_created
    from lms.notifications.models import OutboxMail

    session = make_session(make_course(), join_url="")
    learner = make_user("learner")
    confirm(session, learner.staff_member, signal=False)
    revision = session.revision
    session_created.send(session, actor=None, changes={})
    db.session.commit()
    db.session.refresh(session)
    assert session.join_url and session.revision == revision + 1
    mails = db.session.scalars(select(OutboxMail).where(OutboxMail.staff_member_id == learner.staff_member.id,
                                                        OutboxMail.dedupe_key.contains(f"rev{session.revision}"))).all()
    assert len(mails) == 1 and session.join_url in mails[0].body_text and session.join_url in mails[0].ics.replace("\r\n ", "")


def test_a_meeting_deleted_in_outlook_is_made_again_and_its_new_link_told(graph_app, graph_server, client, db,
                                                                          login_as, make_course, make_session,
                                                                          make_user, confirm):
    from lms.common.signals import session_created
    from lms.notifications.models import OutboxMail

    trainer = login_as("trainer")
    session = make_session(make_course(owner_id=trainer.id), join_url="")
    session_created.send(session, actor=None, changes={})
    db.session.commit()
    learner = make_user("learner")
    confirm(session, learner.staff_member, signal=False)
    old_event, old_link = session.graph_event_id, session.join_url
    graph_server.events.pop(old_event)  # the organiser deleted it in Outlook

    assert client.post(f"/teams/sessions/{session.id}/sync").status_code == 302
    db.session.refresh(session)
    assert len(graph_server.calls("POST", "/events")) == 2
    assert session.graph_event_id not in ("", old_event) and session.graph_sync_status == "created"
    assert session.join_url and session.join_url != old_link
    assert session.graph_online_meeting_id == graph_server.meeting_for_event(session.graph_event_id)["id"]
    mail = db.session.scalars(select(OutboxMail).where(OutboxMail.staff_member_id == learner.staff_member.id,
                                                       OutboxMail.dedupe_key.contains(f"rev{session.revision}"))).one()
    assert session.join_url[:40] in mail.body_text


def test_a_graph_failure_is_told_to_the_trainer_in_words_with_the_detail_apart(graph_app, graph_server, client, db,
                                                                               login_as, make_course):
    trainer = login_as("trainer")
    course = make_course(owner_id=trainer.id)
    graph_server.fail("/events", 403, times=1, method="POST")
    _schedule(client, course, utcnow() + timedelta(days=3))
    session = _only_session(db, course)
    html = client.get(f"/teams/sessions/{session.id}").get_data(as_text=True)
    assert "アプリケーション アクセス ポリシー" in html
    assert "HTTP 403" not in html.split("<details>")[0]  # the technical detail only in its details element
    assert "技術的な詳細" in html

    # a failure that is retried by itself says so, not 失敗
    course2 = make_course(owner_id=trainer.id)
    graph_server.fail("/events", 500, times=None, method="POST")
    _schedule(client, course2, utcnow() + timedelta(days=3))
    retried = _only_session(db, course2)
    op = db.session.scalars(select(GraphOperation).where(GraphOperation.session_id == retried.id)).one()
    assert op.next_attempt is not None, op.details
    assert retried.graph_sync_status == "retrying"
    html = client.get(f"/teams/sessions/{retried.id}").get_data(as_text=True)
    assert "再試行待ち" in html and "badge-rejected" not in html
