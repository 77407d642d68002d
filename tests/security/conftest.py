from __future__ import annotations

import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select, text

from lms.audit.guard import APPEND_ONLY_DDL, DROP_APPEND_ONLY_DDL
from lms.common.timeutil import utcnow
from tests.factories import make_course, make_session, make_staff, make_user

A, B = "131016", "132012"  # 千代田区, 八王子市


@pytest.fixture
def audit_trigger(db):
    """The PostgreSQL append-only trigger of the audit log (as the migration creates it)."""
    if db.engine.dialect.name != "postgresql":
        pytest.skip("database triggers guard the audit log on PostgreSQL; SQLite relies on the ORM guard")
    with db.engine.begin() as conn:
        conn.execute(text(APPEND_ONLY_DDL))
    yield
    db.session.rollback()  # the test's open transaction would hold a lock DROP TRIGGER waits for
    with db.engine.begin() as conn:
        conn.execute(text(DROP_APPEND_ONLY_DDL))


@pytest.fixture
def make_app(app):
    """Another app instance on the same database (another worker); its engine is disposed after."""
    from lms import create_app
    from lms.extensions import db

    made = []

    def _make(config):
        other = create_app(config)
        made.append(other)
        return other

    yield _make
    for other in made:
        with other.app_context():
            db.session.remove()
            db.engine.dispose()


def _demo(code, key):
    from lms.auth.models import User
    from lms.demo import demo_uuid
    from lms.extensions import db

    return db.session.scalar(select(User).where(User.object_id == demo_uuid("user", code, key)))


@pytest.fixture
def world(app, db):
    """Objects of another user or another municipality (see test_authz_matrix), the route
    parameters that name them, and the demo users of each role."""
    from lms.archives.models import Archive, UploadSession
    from lms.attendance.models import AttendanceRecord, AttendanceUpload
    from lms.completion.models import Completion, MandatoryAssignment
    from lms.courses.models import SearchSynonym
    from lms.demo import load_demo
    from lms.enrollment.models import CONFIRMED, Enrollment
    from lms.municipalities.models import TenantMapping
    from lms.notifications.models import OutboxMail
    from lms.teams.models import GraphOperation
    from tests.archives.conftest import add_file, video_bytes
    from tests.factories import municipality

    load_demo()
    db.session.commit()
    owner = make_user("trainer", "130001", name="別の 講師")
    course = make_course(title="他者の研修", owner_id=owner.id, eligible=[B])
    session = make_session(course, capacity=10)
    member_b = make_staff(B, full_name="八王子 職員")
    learner_b = _demo(B, "learner0")
    staff_b = learner_b.staff_member
    enrollment = Enrollment(session_id=session.id, staff_member_id=staff_b.id, municipality_id=staff_b.municipality_id,
                            status=CONFIRMED, confirmed_at=utcnow())
    db.session.add(enrollment)
    session.confirmed_count = 1
    archive = Archive(course_id=course.id, title="他者の録画", description="", status="published",
                      audience="eligible", created_by_id=owner.id, published_at=utcnow())
    db.session.add(archive)
    db.session.commit()
    archive_file = add_file(archive, video_bytes("webm"), "video.webm")
    completion = Completion(staff_member_id=staff_b.id, course_id=course.id, municipality_id=municipality(B).id,
                            fiscal_year=2026, method="manual", completed_at=utcnow(),
                            certificate_serial=f"T-{uuid.uuid4().hex[:12]}")
    assignment = MandatoryAssignment(course_id=course.id, fiscal_year=2026, municipality_id=municipality(B).id,
                                     due_on=date.today() + timedelta(days=30))
    mail = OutboxMail(dedupe_key=f"authz-{uuid.uuid4().hex}", kind="test", to_address=staff_b.email,
                      subject="件名", body_text="本文", staff_member_id=staff_b.id, municipality_id=municipality(B).id)
    record = AttendanceRecord(session_id=session.id, report_id="r1", record_id="x1", email="someone@example.jp")
    operation = GraphOperation(session_id=session.id, kind="create_event", status="failed")
    mapping = db.session.scalar(select(TenantMapping).where(TenantMapping.municipality_id == municipality(B).id))
    upload = UploadSession(id=str(uuid.uuid4()), archive_id=archive.id, kind="video", filename="x.webm",
                           declared_length=10, created_by_id=owner.id, storage_key=f"uploads/{uuid.uuid4().hex}",
                           expires_at=utcnow() + timedelta(days=1)) if hasattr(UploadSession, "created_by_id") else None
    # The other trainer's uploaded Teams attendance report, awaiting confirmation.
    report = AttendanceUpload(session_id=session.id, uploaded_by_id=owner.id, filename="report.csv", digest="0" * 64,
                              rows=[])
    from lms.api.models import ApiClient

    api_client = ApiClient(application_id=str(uuid.uuid4()), name="八王子市 人事給与", municipality_id=municipality(B).id)
    for row in (completion, assignment, mail, record, operation, upload, report, api_client):
        if row is not None:
            db.session.add(row)
    db.session.commit()
    from lms.common.timeutil import fiscal_year_of
    from lms.planning import services as planning
    from lms.planning.models import PlanAllocation

    platform = _demo("130001", "platform")
    plan = planning.plan_of_year(fiscal_year_of(session.starts_at)) or planning.create_plan(
        platform, fiscal_year_of(session.starts_at))  # the demo publishes the year's plan
    planning.publish_plan(platform, plan, utcnow() + timedelta(days=7))
    planning.answer_survey(platform, plan, municipality(B).id, {session.course_id: planning.Answer(2)})
    planning.run_allocation(platform, plan, [session.id])
    from lms.planning import fees as plan_fees

    plan_fees.set_fees(platform, plan, {course.id: 2000}, charge_late_cancellation=True, charge_no_show=True)
    statement = plan_fees.issue_statement(platform, plan, municipality(B).id)
    from lms.planning.models import SeatExchange

    exchange = SeatExchange(plan_id=plan.id, session_id=session.id, kind="ask", municipality_id=municipality(B).id,
                            seats=1, reason="異動者が多い")
    db.session.add(exchange)
    from lms.courses.models import Course, TrainingPath, TrainingPathStep

    other_course = Course(title="研修体系の次の研修", status="published", owner=session.course.owner)
    path = TrainingPath(name="若手職員育成コース", steps=[TrainingPathStep(course=course, position=1),
                                                        TrainingPathStep(course=other_course, position=2)])
    db.session.add(path)
    db.session.commit()
    from lms.api.webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage

    # A webhook endpoint of municipality B, with a delivery that was given up.
    endpoint = WebhookEndpoint(municipality_id=municipality(B).id, url="https://hr.example.lg.jp/hooks",
                               event_types="enrollment.decided", secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    message = WebhookMessage(msg_id=f"msg_{uuid.uuid4().hex}", event_type="enrollment.decided",
                             municipality_id=municipality(B).id, payload="{}")
    db.session.add_all([endpoint, message])
    db.session.flush()
    delivery = WebhookDelivery(message_id=message.id, endpoint_id=endpoint.id, status="failed", attempts=12)
    db.session.add(delivery)
    db.session.commit()
    from datetime import date as day

    from lms.enrollment.models import ApprovalDelegation

    # Another municipality's 所属長 away for a week, standing in someone else.
    member_b.department_head = True
    delegation = ApprovalDelegation(delegator_id=member_b.id, delegate_id=staff_b.id, starts_on=day(2026, 12, 7),
                                    ends_on=day(2026, 12, 11))
    db.session.add(delegation)
    db.session.commit()
    from lms.activities.models import Activity, ActivityQuestion, ActivitySubmission

    # A published report activity of the course, with a report of municipality B's learner.
    activity = Activity(course_id=course.id, kind="report", title="受講報告", published=True,
                        questions=[ActivityQuestion(kind="longtext", prompt="学んだこと", position=1)])
    db.session.add(activity)
    db.session.flush()
    submission = ActivitySubmission(activity_id=activity.id, staff_member_id=enrollment.staff_member_id,
                                    municipality_id=enrollment.municipality_id, session_id=enrollment.session_id,
                                    status="submitted", answers={str(activity.questions[0].id): "学んだ。"},
                                    submitted_at=utcnow())
    db.session.add(submission)
    db.session.flush()
    from lms.activities.models import ActivityFile, BankQuestion
    from lms.archives.storage import get_storage

    # The report's attachment (a stored PDF) and a question in the course's bank.
    key = f"activity-files/{activity.id}/{uuid.uuid4().hex}"
    get_storage().write_object(key, [b"%PDF-1.7\n%%EOF\n"], "application/pdf")
    attached = ActivityFile(submission_id=submission.id, question_id=activity.questions[0].id, storage_key=key,
                            filename="報告.pdf", content_type="application/pdf", size=15, sha256="0" * 64)
    bank_item = BankQuestion(course_id=course.id, kind="single", prompt="問", choices=["正", "誤"], correct=[0])
    db.session.add_all([attached, bank_item])
    db.session.commit()
    params = {
        "attachment_id": attached.id, "item_id": bank_item.id,
        "activity_id": activity.id, "question_id": activity.questions[0].id, "submission_id": submission.id,
        "endpoint_id": endpoint.id, "delivery_id": delivery.id, "job_id": 1, "delegation_id": delegation.id,
        "path_id": path.id,
        "plan_id": plan.id,
        "statement_id": statement.id,
        "exchange_id": exchange.id,
        "municipality_id": municipality(B).id,
        "allocation_id": db.session.scalar(select(PlanAllocation.id).where(PlanAllocation.plan_id == plan.id)),
        "course_id": course.id, "session_id": session.id, "enrollment_id": enrollment.id,
        "archive_id": archive.id, "file_id": archive_file.id, "name": archive_file.filename,
        "completion_id": completion.id, "assignment_id": assignment.id, "mail_id": mail.id,
        "member_id": member_b.id, "user_id": learner_b.id, "mapping_id": mapping.id if mapping else 1, "record_id": record.id,
        "report_id": report.id,
        "operation_id": operation.id, "upload_id": upload.id if upload else uuid.uuid4().hex,
        "serial": completion.certificate_serial, "kind": "attendance", "table": "courses", "fmt": "csv",
        "filename": "css/app.css", "slug": "privacy",
        "client_id": api_client.id, "employee_number": member_b.employee_number,
        "group_id": db.session.scalar(select(SearchSynonym.id).limit(1)),
        # A signed media link's path without its signature: refused to everyone.
        "media_path": f"{archive_file.storage_key}/{archive_file.id}.webm",
    }
    users = {
        "anonymous": None,
        "learner": _demo(A, "learner0"),
        "trainer": _demo("130001", "trainer"),
        "admin_a": _demo(A, "admin"),
        "admin_b": _demo(B, "admin"),
        "platform": _demo("130001", "platform"),
    }
    return params, users
