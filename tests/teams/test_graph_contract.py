"""Keep the local Graph server and the client honest against Microsoft's own v1.0 schema."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from lms.common.signals import session_created
from lms.common.timeutil import as_utc, utcnow
from tests.conftest import ROOT
from tests.teams.conftest import ORGANIZER

METADATA = Path(ROOT).parent / "shared/graph/msgraph-v1.0-metadata.xml"


@pytest.fixture(scope="module")
def schema():
    if not METADATA.exists():
        pytest.skip(f"Graph schema not found at {METADATA} (outside the repository; see shared/graph/README.md)")
    from tests.teams.graph_schema import GraphSchema

    return GraphSchema(METADATA)


def test_the_checker_follows_odata_type_and_base_types(schema):
    record = {"id": "x", "emailAddress": "a@b", "totalAttendanceInSeconds": 1, "role": "Attendee",
              "identity": {"@odata.type": "#microsoft.graph.communicationsUserIdentity", "id": "o", "displayName": "n",
                           "tenantId": "t"},
              "attendanceIntervals": [{"joinDateTime": "2025-05-01T09:00:00Z", "leaveDateTime": "2025-05-01T10:00:00Z", "durationInSeconds": 1}]}
    assert schema.check(record, "attendanceRecord") == []
    plain = {**record, "identity": {k: v for k, v in record["identity"].items() if k != "@odata.type"}}
    assert schema.check(plain, "attendanceRecord") == ["$.identity.tenantId: no such property on microsoft.graph.identity"]
    assert schema.check({"joinUrl": "x"}, "event") == ["$.joinUrl: no such property on microsoft.graph.event"]
    assert schema.check({"id": "x"}, "event") == []  # inherited from entity


def test_everything_the_server_returns_and_the_client_sends_exists_in_graph(
        schema, graph_app, graph_server, live_server, db, make_course, make_session, make_user, confirm):
    from lms.teams.graph import client_from_app
    from lms.teams.mail import send_via_graph
    from lms.teams.services import (
        cancel_meeting_with,
        catch_up_recordings_with,
        import_attendance_with,
        import_recordings_with,
        sync_meeting_with,
    )
    from lms.teams.subscriptions import renew_subscriptions, subscribe_with

    client = client_from_app()
    session = make_session(make_course(title="契約テスト研修"), starts_in=-timedelta(hours=3), minutes=60, join_url="",
                           location="オンライン")
    learner = make_user("learner")
    confirm(session, learner.staff_member, signal=False)
    session_created.send(session, actor=None, changes={})
    db.session.commit()
    sync_meeting_with(client, session)  # PATCH with the full event
    start, end = as_utc(session.starts_at), as_utc(session.ends_at)
    graph_server.add_attendance_report(session.graph_online_meeting_id, start, end, [
        graph_server.attendance_record(object_id=learner.object_id, tenant_id=learner.tenant_id, name="x",
                                       email=learner.email, intervals=[(start, end)])])
    import_attendance_with(client, session)
    rec = graph_server.add_recording(session.graph_online_meeting_id, "oid", 2048, end)
    graph_server.add_transcript(session.graph_online_meeting_id, "oid", rec, "WEBVTT\n\n00:00.000 --> 00:01.000\nはい\n")
    import_recordings_with(client, session)
    catch_up_recordings_with(client, ORGANIZER, utcnow() - timedelta(days=1), utcnow())
    graph_app.config["GRAPH_NOTIFICATION_URL"] = live_server.url + "/teams/graph/notifications"
    sub = subscribe_with(client, ORGANIZER)
    sub.expires_at = utcnow() + timedelta(hours=1)
    db.session.commit()
    assert renew_subscriptions(client) == 1
    message = EmailMessage()
    message["Subject"] = "s"
    message["To"] = "a@example.lg.jp"
    message.set_content("x")
    message.add_attachment(b"BEGIN:VCALENDAR", maintype="text", subtype="calendar", filename="invite.ics")
    send_via_graph(message, client)
    session.status = "cancelled"
    cancel_meeting_with(client, session)
    db.session.rollback()

    problems: list[str] = []
    kinds_seen = set()
    for path, graph_type, body in graph_server.responses:
        kinds_seen.add(graph_type.removeprefix("Collection(").rstrip(")"))
        if graph_type.startswith("Collection("):
            problems += schema.check(body["value"], graph_type, f"{path} value")
        else:
            problems += schema.check(body, graph_type, path)
    sent_kinds = set()
    for request in graph_server.requests:
        if request.body is None:
            continue
        sent_kinds.add(request.graph_type)
        if request.graph_type.startswith("action:"):
            problems += schema.check_action(request.body, request.graph_type.split(":", 1)[1], f"{request.method} {request.path}")
        else:
            assert request.graph_type, f"untyped request body: {request.method} {request.path}"
            problems += schema.check(request.body, request.graph_type, f"{request.method} {request.path}")
    assert problems == []
    assert {"event", "onlineMeeting", "meetingAttendanceReport", "attendanceRecord", "callRecording", "callTranscript",
            "subscription"} <= kinds_seen
    assert {"event", "subscription", "action:sendMail", "action:cancel"} <= sent_kinds


def test_teams_notices_speak_graphs_schema(schema, graph_app, graph_server, db, make_user, make_course, make_session):
    """The app found in the catalogue, installed for a person, and an activity notice sent: every
    body sent and every answer checked against the CSDL, with the keys Graph requires."""
    from sqlalchemy import select

    from lms.enrollment import services as enrollment_services
    from lms.municipalities.models import TenantMapping
    from lms.notifications.services import deliver_due_mail
    from lms.teams import app_package

    graph_app.config["ENTRA_CLIENT_ID"] = "3c6b1f0e-5d2a-4c8e-9b7f-2a1d0e4c6b8a"
    graph_server.publish_app(app_package.manifest())
    make_user("municipal_admin")
    learner = make_user("learner")
    for mapping in db.session.scalars(select(TenantMapping)):
        mapping.consented_at = utcnow()
    db.session.commit()
    session = make_session(make_course(title="契約テスト研修", requires_approval=True), delivery="onsite", join_url="")
    enrollment_services.enroll(session.id, learner.staff_member.id, learner)
    db.session.commit()
    deliver_due_mail()
    assert len(graph_server.activity_notices) == 1

    problems: list[str] = []
    for path, graph_type, body in graph_server.responses:
        if graph_type.startswith("Collection("):
            problems += schema.check(body["value"], graph_type, f"{path} value")
    sent = [r for r in graph_server.requests if "/teamwork/" in r.path and r.body is not None]
    assert {r.graph_type for r in sent} == {"userScopeTeamsAppInstallation", "action:sendActivityNotification"}
    for request in sent:
        where = f"{request.method} {request.path}"
        if request.graph_type.startswith("action:"):
            problems += schema.check_action(request.body, request.graph_type.split(":", 1)[1], where)
        else:
            problems += schema.check(request.body, request.graph_type, where)
    notice = next(r.body for r in sent if r.graph_type.startswith("action:"))
    assert {"topic", "activityType", "previewText", "templateParameters"} <= set(notice)
    assert {"source", "value", "webUrl"} <= set(notice["topic"])
    assert problems == []
    kinds = {t for _p, t, _b in graph_server.responses}
    assert {"Collection(teamsApp)", "Collection(userScopeTeamsAppInstallation)"} <= kinds


def test_viva_learning_requests_and_responses_exist_in_graph(schema, graph_app, graph_server, db, make_course,
                                                            make_session, make_user, confirm):
    """Viva Learning: learningContent upserts and lists, learningAssignment and
    learningSelfInitiatedCourse creations, updates and look-ups, against Microsoft's schema."""
    from datetime import date

    from lms.common.timeutil import fiscal_year_of, today_tokyo
    from lms.completion import services as completion_services
    from lms.courses import services as course_services
    from lms.teams.viva import services as viva
    from lms.teams.viva.models import VivaTenant
    from tests.factories import tenant_for

    registration_id = graph_server.register_learning_provider()
    tenant_id = tenant_for("131016")
    db.session.add(VivaTenant(tenant_id=tenant_id, enabled=True, registration_id=registration_id))
    db.session.commit()
    platform = make_user("platform_admin")
    learner = make_user("learner")
    assigned = make_course(title="契約テスト（指名研修）", status="draft", published_at=None)
    chosen = make_course(title="契約テスト（自己申込）", status="draft", published_at=None)
    for course in (assigned, chosen):
        make_session(course, starts_in=timedelta(days=3))
        course_services.publish_course(platform, course)
    db.session.commit()
    fiscal_year = fiscal_year_of(today_tokyo())
    completion_services.save_mandatory_assignment(platform, course_id=assigned.id, fiscal_year=fiscal_year,
                                                  municipality_id=learner.municipality_id,
                                                  due_on=date(fiscal_year + 1, 3, 1))
    db.session.commit()
    confirm(chosen.sessions[0], learner.staff_member, signal=False)
    completion_services.complete_manually(learner.staff_member.id, chosen.id,
                                          fiscal_year_of(chosen.sessions[0].starts_at), platform, "契約テスト")
    db.session.commit()
    # Drift, so that the reconciliation looks up, recreates and patches.
    activities = graph_server.viva_activities[registration_id]
    first = next(iter(activities))
    del activities[first]
    next(iter(activities.values()))["status"] = "inProgress"
    viva.queue_reconcile(tenant_id)
    db.session.commit()

    problems: list[str] = []
    kinds_seen = set()
    for path, graph_type, body in graph_server.responses:
        if "/employeeExperience/" not in path:
            continue
        kinds_seen.add(graph_type.removeprefix("Collection(").rstrip(")"))
        if graph_type.startswith("Collection("):
            problems += schema.check(body["value"], graph_type, f"{path} value")
        else:
            kinds_seen.add(str(body.get("@odata.type", "")).rsplit(".", 1)[-1])
            problems += schema.check(body, graph_type, path)
    sent_kinds = set()
    methods = set()
    for request in graph_server.requests:
        if "/employeeExperience/" not in request.path:
            continue
        methods.add(request.method)
        if request.body is None:
            continue
        sent_kinds.add(request.graph_type)
        assert request.graph_type, f"untyped request body: {request.method} {request.path}"
        problems += schema.check(request.body, request.graph_type, f"{request.method} {request.path}")
        assert request.status < 400, (request.method, request.path, request.status)
    assert problems == []
    assert {"learningContent", "learningCourseActivity", "learningAssignment", "learningSelfInitiatedCourse"} <= kinds_seen
    assert {"learningContent", "learningAssignment", "learningSelfInitiatedCourse"} <= sent_kinds
    assert {"GET", "PATCH", "POST"} <= methods
