"""Viva Learning: courses, 指名研修 and completions reach the tenant's Viva Learning (the local
Graph server) once per change; a reconciliation repairs drift; the platform admin's pages."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from lms.common.timeutil import fiscal_year_of, today_tokyo
from lms.completion import services as completion_services
from lms.courses import services as course_services
from lms.courses.models import DRAFT
from lms.extensions import db as _db
from lms.teams.models import GraphOperation
from lms.teams.viva import services as viva
from lms.teams.viva.models import VivaActivity, VivaContent, VivaTenant
from tests.factories import tenant_for

CODE = "131016"
FY = fiscal_year_of(today_tokyo())


@pytest.fixture
def tenant(graph_app, graph_server, db):
    """千代田区's tenant registered as a learning provider and switched on."""
    registration_id = graph_server.register_learning_provider()
    tenant_id = tenant_for(CODE)
    db.session.add(VivaTenant(tenant_id=tenant_id, enabled=True, registration_id=registration_id))
    db.session.commit()
    return {"tenant_id": tenant_id, "registration_id": registration_id}


def contents(server, tenant):
    return server.viva_contents[tenant["registration_id"]]


def activities(server, tenant):
    return list(server.viva_activities[tenant["registration_id"]].values())


def writes(server, what: str) -> list:
    """Requests that change something in Viva Learning (not the look-ups)."""
    return [r for r in server.requests if what in r.path and r.method in ("PATCH", "POST", "DELETE")]


def published(make_course, make_session, platform, **kw):
    course = make_course(status=DRAFT, published_at=None, **kw)
    make_session(course)
    course_services.publish_course(platform, course)
    _db.session.commit()
    return course


def test_a_published_course_is_sent_once_per_change(tenant, graph_server, db, make_course, make_session, make_user):
    platform = make_user("platform_admin")
    course = published(make_course, make_session, platform, title="文書事務の基礎")
    items = contents(graph_server, tenant)
    item = items[f"manabi-course-{course.id}"]
    assert item["title"] == "文書事務の基礎" and item["isActive"] is True
    assert item["languageTag"] == "ja-jp" and item["duration"] == "PT1H30M"
    assert item["contentWebUrl"].endswith(f"/courses/{course.id}")
    assert item["thumbnailWebUrl"].endswith("/teams/viva/thumbnail.png")
    assert len(writes(graph_server, "learningContents")) == 1

    # The same state again (another run of the course, an edit of nothing Viva shows): nothing sent.
    viva.queue_changes([tenant["tenant_id"]], courses=[course.id])
    db.session.commit()
    course_services.update_course(platform, course, course_services.CourseInput(
        title="文書事務の基礎", summary=course.summary, description_md=course.description_md, target_audience="新任"))
    db.session.commit()
    assert len(writes(graph_server, "learningContents")) == 1

    course_services.update_course(platform, course, course_services.CourseInput(
        title="文書事務の基礎（改訂）", summary=course.summary, description_md=course.description_md))
    db.session.commit()
    assert len(writes(graph_server, "learningContents")) == 2
    assert items[f"manabi-course-{course.id}"]["title"] == "文書事務の基礎（改訂）"
    mirror = db.session.scalar(select(VivaContent).where(VivaContent.course_id == course.id))
    assert mirror.content_id == item["id"]


def test_a_withdrawn_course_is_marked_inactive(tenant, graph_server, db, make_course, make_session, make_user):
    platform = make_user("platform_admin")
    course = published(make_course, make_session, platform)
    other = published(make_course, make_session, platform, eligible=["132012"])  # not for this tenant
    course_services.unpublish_course(platform, course)
    db.session.commit()
    assert contents(graph_server, tenant)[f"manabi-course-{course.id}"]["isActive"] is False
    course_services.cancel_course(platform, course)
    db.session.commit()
    assert len(writes(graph_server, "learningContents")) == 2  # published, withdrawn: nothing more
    assert f"manabi-course-{other.id}" not in contents(graph_server, tenant)


def test_a_switched_off_tenant_gets_nothing(tenant, graph_server, db, make_course, make_session, make_user):
    row = db.session.scalar(select(VivaTenant))
    row.enabled = False
    db.session.commit()
    platform = make_user("platform_admin")
    published(make_course, make_session, platform)
    assert graph_server.calls(contains="employeeExperience") == []
    assert db.session.scalar(select(GraphOperation)) is None


def test_a_mandatory_assignment_becomes_a_learning_assignment(tenant, graph_server, db, make_course, make_session,
                                                             make_user):
    admin = make_user("municipal_admin", CODE)
    platform = make_user("platform_admin")
    learners = [make_user("learner", CODE) for _ in range(2)]
    elsewhere = make_user("learner", "132012")
    course = published(make_course, make_session, platform)
    due = date(FY + 1, 2, 28)
    assignment = completion_services.save_mandatory_assignment(
        admin, course_id=course.id, fiscal_year=FY, municipality_id=admin.municipality_id, due_on=due)
    db.session.commit()
    found = {a["learnerUserId"]: a for a in activities(graph_server, tenant)}
    # Every staff member of 千代田区 (the admins are on the roster too), nobody else.
    assert set(found) == {u.object_id for u in learners} | {admin.object_id, platform.object_id}
    activity = found[learners[0].object_id]
    assert activity["@odata.type"] == "#microsoft.graph.learningAssignment"
    assert activity["assignmentType"] == "required" and activity["status"] == "notStarted"
    assert activity["assignerUserId"] == admin.object_id
    assert activity["dueDateTime"] == {"dateTime": f"{due.isoformat()}T23:59:59", "timeZone": "Tokyo Standard Time"}
    assert activity["assignedDateTime"].startswith(str(today_tokyo().year)[:2])
    assert activity["learningContentId"] == contents(graph_server, tenant)[f"manabi-course-{course.id}"]["id"]
    assert elsewhere.object_id not in found
    assert len(graph_server.calls("POST", "learningCourseActivities")) == 4

    # The same assignment saved again unchanged: nothing more; its due date moved: one PATCH each.
    completion_services.save_mandatory_assignment(
        admin, course_id=course.id, fiscal_year=FY, municipality_id=admin.municipality_id, due_on=due,
        assignment_id=assignment.id)
    db.session.commit()
    assert len(writes(graph_server, "learningCourseActivities")) == 4
    completion_services.save_mandatory_assignment(
        admin, course_id=course.id, fiscal_year=FY, municipality_id=admin.municipality_id,
        due_on=due - timedelta(days=30), assignment_id=assignment.id)
    db.session.commit()
    assert len(graph_server.calls("PATCH", "learningCourseActivities")) == 4
    assert {a["dueDateTime"]["dateTime"][:10] for a in activities(graph_server, tenant)} == \
        {(due - timedelta(days=30)).isoformat()}

    completion_services.delete_mandatory_assignment(admin, assignment.id)
    db.session.commit()
    assert activities(graph_server, tenant) == []
    assert db.session.scalar(select(VivaActivity)) is None


def test_a_completion_is_reported_once(tenant, graph_server, db, make_course, make_session, make_user, confirm):
    platform = make_user("platform_admin")
    learner = make_user("learner", CODE)
    course = published(make_course, make_session, platform)
    session = course.sessions[0]
    confirm(session, learner.staff_member, signal=False)
    (activity,) = activities(graph_server, tenant)
    assert activity["@odata.type"] == "#microsoft.graph.learningSelfInitiatedCourse"
    assert activity["status"] == "inProgress" and activity["completedDateTime"] is None
    fiscal_year = fiscal_year_of(session.starts_at)
    completion = completion_services.complete_manually(learner.staff_member.id, course.id, fiscal_year, platform,
                                                       "講師の判断")
    db.session.commit()
    (activity,) = activities(graph_server, tenant)
    assert activity["status"] == "completed" and activity["completionPercentage"] == 100
    assert activity["completedDateTime"].endswith("Z")
    assert len(graph_server.calls("PATCH", "learningCourseActivities")) == 1
    # Told again (the same completion): nothing is sent.
    viva.queue_changes([tenant["tenant_id"]], learners=[(learner.staff_member.id, course.id, fiscal_year)])
    db.session.commit()
    assert len(graph_server.calls("PATCH", "learningCourseActivities")) == 1
    completion_services.revoke_completion(completion.id, platform, "記録の誤り")
    db.session.commit()
    (activity,) = activities(graph_server, tenant)
    assert activity["status"] == "inProgress" and activity["completedDateTime"] is None
    assert len(graph_server.calls("POST", "learningCourseActivities")) == 1


def test_throttling_is_waited_out_as_graph_asks(tenant, graph_app, graph_server, db, make_course, make_session,
                                               make_user):
    waited: list[float] = []
    graph_app.extensions["graph_sleep"] = waited.append
    graph_server.fail("learningContents", 429, times=1, retry_after="2")
    platform = make_user("platform_admin")
    course = published(make_course, make_session, platform)
    assert waited == [2.0]
    assert f"manabi-course-{course.id}" in contents(graph_server, tenant)
    assert len(graph_server.calls("PATCH", "learningContents")) == 2  # refused once, then accepted


def test_throttling_beyond_the_budget_reschedules_the_run(tenant, graph_app, graph_server, db, make_course,
                                                         make_session, make_user):
    graph_app.config["GRAPH_MAX_WAIT"] = 5
    graph_app.extensions["graph_sleep"] = lambda _s: None
    graph_server.fail("learningContents", 429, times=1, retry_after="600")
    platform = make_user("platform_admin")
    course = published(make_course, make_session, platform)
    op = db.session.scalar(select(GraphOperation).where(GraphOperation.kind == viva.VIVA_SYNC))
    assert op.status == "failed" and op.details["throttled"] and op.details["retry_after"] == 600
    assert op.next_attempt is not None and (op.next_attempt - op.finished_at).total_seconds() >= 600
    row = db.session.scalar(select(VivaTenant))
    assert row.status == "failed" and "429" in row.last_error
    from lms.teams.services import execute_operation

    execute_operation(op.id)  # (the scheduled retry)
    assert contents(graph_server, tenant)[f"manabi-course-{course.id}"]["isActive"] is True
    assert db.session.scalar(select(VivaTenant)).status == "ok"


def test_reconciliation_repairs_drift(tenant, graph_server, db, make_course, make_session, make_user, confirm):
    admin = make_user("municipal_admin", CODE)
    platform = make_user("platform_admin")
    learner = make_user("learner", CODE)
    course = published(make_course, make_session, platform, title="情報セキュリティ研修")
    withdrawn = published(make_course, make_session, platform)
    completion_services.save_mandatory_assignment(
        admin, course_id=course.id, fiscal_year=FY, municipality_id=admin.municipality_id, due_on=date(FY + 1, 3, 1))
    db.session.commit()
    confirm(withdrawn.sessions[0], learner.staff_member, signal=False)
    registration = tenant["registration_id"]
    items = contents(graph_server, tenant)
    assigned = items[f"manabi-course-{course.id}"]["id"]
    # Drift: a content deleted, a content altered, a withdrawn course still active there (its
    # withdrawal was lost), an activity deleted, another one altered.
    del items[f"manabi-course-{course.id}"]
    db.session.execute(VivaContent.__table__.update().where(VivaContent.course_id == withdrawn.id)
                       .values(is_active=False))
    withdrawn.status = DRAFT
    db.session.commit()
    by_learner = {a["learnerUserId"]: a for a in activities(graph_server, tenant) if a["learningContentId"] == assigned}
    lost = by_learner[admin.object_id]
    del graph_server.viva_activities[registration][lost["id"]]
    by_learner[learner.object_id]["status"] = "completed"
    # A learner whose activity was never sent (no event reached Manabi): the reconciliation adds it.
    late = make_user("learner", CODE)
    before = len(graph_server.requests)

    op = viva.queue_reconcile(tenant["tenant_id"])
    db.session.commit()
    db.session.refresh(op)
    assert op.status == "done", op.last_error
    assert any(r.method == "GET" and r.path.endswith("/learningContents") for r in graph_server.requests[before:])
    assert items[f"manabi-course-{course.id}"]["title"] == "情報セキュリティ研修"
    assert items[f"manabi-course-{withdrawn.id}"]["isActive"] is False
    assigned = items[f"manabi-course-{course.id}"]["id"]
    by_learner = {a["learnerUserId"]: a for a in activities(graph_server, tenant) if a["learningContentId"] == assigned}
    assert by_learner[admin.object_id]["@odata.type"] == "#microsoft.graph.learningAssignment"
    assert by_learner[learner.object_id]["status"] == "notStarted"  # assigned, not started
    assert by_learner[late.object_id]["assignmentType"] == "required"
    # A second reconciliation finds nothing to repair: only reads.
    before = len(graph_server.requests)
    viva.queue_reconcile(tenant["tenant_id"])
    db.session.commit()
    assert [r for r in graph_server.requests[before:] if r.method != "GET"] == []


def test_the_nightly_task_queues_each_enabled_tenant(tenant, graph_server, db):
    from lms.teams.viva.tasks import viva_nightly_reconciliation

    viva_nightly_reconciliation.call_local()
    ops = db.session.scalars(select(GraphOperation).where(GraphOperation.kind == viva.VIVA_RECONCILE)).all()
    assert [op.details["tenant_id"] for op in ops] == [tenant["tenant_id"]]
    assert ops[0].status == "done"
    assert db.session.scalar(select(VivaTenant)).last_reconciled_at is not None


# ---------------------------------------------------------------- pages


def _mapping_id(tenant_id):
    from lms.municipalities.models import TenantMapping

    return _db.session.scalar(select(TenantMapping.id).where(TenantMapping.tenant_id == tenant_id))


def test_the_platform_admin_switches_a_tenant_on_and_off(graph_app, graph_server, db, client, login_as, make_course):
    course = make_course()
    admin = login_as("platform_admin")
    tenant_id = tenant_for(CODE)
    mapping_id = _mapping_id(tenant_id)
    db.session.commit()
    page = client.get("/teams/viva/")
    assert page.status_code == 200 and "千代田区" in page.get_data(as_text=True)
    page = client.get(f"/teams/viva/tenants/{mapping_id}")
    assert page.status_code == 200 and tenant_id in page.get_data(as_text=True)
    refused = client.post(f"/teams/viva/tenants/{mapping_id}", data={"registration_id": "", "enabled": "y"})
    assert "登録 ID を入力してください" in refused.get_data(as_text=True)
    registration_id = graph_server.register_learning_provider()
    saved = client.post(f"/teams/viva/tenants/{mapping_id}", data={"registration_id": registration_id, "enabled": "y"})
    assert saved.status_code == 302
    row = db.session.scalar(select(VivaTenant))
    assert row.enabled and row.registration_id == registration_id and row.updated_by_id == admin.id
    # Switching on loads what is there (the first reconciliation).
    assert f"manabi-course-{course.id}" in graph_server.viva_contents[registration_id]
    confirm_page = client.get(f"/teams/viva/tenants/{mapping_id}/disable")
    assert confirm_page.status_code == 200 and "停止する" in confirm_page.get_data(as_text=True)
    assert client.post(f"/teams/viva/tenants/{mapping_id}/disable").status_code == 302
    db.session.expire_all()
    assert db.session.scalar(select(VivaTenant)).enabled is False
    from lms.audit.models import AuditLog

    actions = set(db.session.scalars(select(AuditLog.action).where(AuditLog.action.like("teams.viva%"))))
    assert actions == {"teams.viva_settings", "teams.viva_disable"}


@pytest.mark.parametrize("role", ["municipal_admin", "learner", "trainer"])
def test_only_platform_admins_see_the_pages(graph_app, db, client, login_as, role):
    mapping_id = _mapping_id(tenant_for(CODE))
    db.session.commit()
    login_as(role, CODE)
    for path in ("/teams/viva/", f"/teams/viva/tenants/{mapping_id}", f"/teams/viva/tenants/{mapping_id}/disable"):
        assert client.get(path).status_code == 403, path
    assert client.post(f"/teams/viva/tenants/{mapping_id}/reconcile").status_code == 403


def test_hostile_ids_are_not_found(graph_app, db, client, login_as):
    login_as("platform_admin")
    for path in ("/teams/viva/tenants/999999", "/teams/viva/tenants/0", "/teams/viva/tenants/99999999999999999999",
                 "/teams/viva/tenants/-1", "/teams/viva/tenants/1%27%20OR%201=1", "/teams/viva/tenants/..%2F..%2Fadmin"):
        assert client.get(path).status_code == 404, path


def test_a_registration_id_cannot_reach_another_path(graph_app, db, client, login_as):
    login_as("platform_admin")
    mapping_id = _mapping_id(tenant_for(CODE))
    db.session.commit()
    for value in ("../../users", "abc?x=1", "a'b", "x" * 101):
        page = client.post(f"/teams/viva/tenants/{mapping_id}", data={"registration_id": value, "enabled": "y"})
        assert page.status_code == 200, value
    assert db.session.scalar(select(VivaTenant)) is None


def test_the_thumbnail_is_public(client):
    response = client.get("/teams/viva/thumbnail.png")
    assert response.status_code == 200 and response.mimetype == "image/png"
    assert response.data.startswith(b"\x89PNG")
