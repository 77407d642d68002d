"""Authorization matrix: every route in app.url_map, called as each role with object IDs that
belong to another user or another municipality, compared with the table below.

Outcomes: "ok" (2xx, or a redirect other than to sign-in — e.g. back to a form with a
message), "L" (sent to sign-in), or the 4xx status: "403"/"404" (refused), "400"/"409"/"412"
(an access-checked request refused by validation or a business rule: POSTs send an empty
form). A 5xx is always a failure. A route missing from the table fails the test.

Roles (columns): anonymous, learner of A, trainer (not the owner of the objects),
municipal admin of A, municipal admin of B, platform admin. A = 千代田区 (131016),
B = 八王子市 (132012). The objects: a course owned by another trainer and open to B only,
its session, an
enrollment / staff member / completion / assignment / mail of municipality B, an archive
of that course with a file, an upload session of the other trainer.

Run with AUTHZ_PRINT=1 to print the observed table (to review a new route's row).
"""

from __future__ import annotations

import os
import re
import uuid
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from lms.common.jobs import worker_heartbeat
from lms.common.timeutil import utcnow
from tests.factories import make_course, make_session, make_staff, make_user, sign_in

ROLES = ("anonymous", "learner", "trainer", "admin_a", "admin_b", "platform")
A, B = "131016", "132012"

# endpoint METHOD: outcomes for (anonymous, learner, trainer, admin_a, admin_b, platform)
EXPECTED = {
    "main.home GET": "ok ok ok ok ok ok",
    "admin.index GET": "L 403 403 403 403 ok",
    "admin.audit GET": "L 403 403 403 403 ok",
    "admin.audit_export POST": "L 403 403 403 403 ok",
    "admin.outbox GET": "L 403 403 ok ok ok",
    "admin.outbox_detail GET": "L 403 403 403 ok ok",
    "admin.outbox_retry POST": "L 403 403 403 ok ok",
    "archives.index GET": "L ok ok ok ok ok",
    "archives.view GET": "L 403 ok 403 ok ok",
    "archives.file GET": "L 403 ok 403 ok ok",
    "archives.file_link GET": "L 403 ok 403 ok ok",
    "archives.media GET": "403 403 403 403 403 403",
    "archives.progress POST": "L 403 400 403 400 400",
    "archives.manage GET": "L 403 ok 403 403 ok",
    "archives.detail GET": "L 403 403 403 403 ok",
    "archives.edit GET": "L 403 403 403 403 ok",
    "archives.edit POST": "L 403 403 403 403 ok",
    "archives.publish POST": "L 403 403 403 403 ok",
    "archives.tus_create POST": "L 403 412 403 403 412",
    "archives.withdraw POST": "L 403 403 403 403 ok",
    "archives.withdraw GET": "L 403 403 403 403 ok",
    "archives.create GET": "L 403 ok 403 403 ok",
    "archives.create POST": "L 403 ok 403 403 ok",
    "archives.search GET": "L ok ok ok ok ok",
    "archives.tus_options OPTIONS": "L ok ok ok ok ok",
    "archives.tus_resource DELETE": "L 403 412 403 403 412",
    "archives.tus_resource PATCH": "L 403 412 403 403 412",
    "attendance.check_in GET": "L 404 404 404 404 404",
    "attendance.match_record POST": "L 403 403 403 403 ok",
    "attendance.correct POST": "L 403 403 403 403 ok",
    "attendance.qr GET": "L 403 403 403 403 ok",
    "attendance.rotate_qr POST": "L 403 403 403 403 ok",
    "attendance.rotate_qr GET": "L 403 403 403 403 ok",
    "attendance.qr_poster GET": "L 403 403 403 403 ok",
    # Printed lists: a municipal admin sees their own municipality's participants of a session
    # that concerns it (B); A's admin finds no such session.
    "attendance.sign_in_sheet GET": "L 403 403 404 ok ok",
    "attendance.participants GET": "L 403 403 404 ok ok",
    "attendance.roll_call GET": "L 403 403 403 403 ok",
    "attendance.roll_call POST": "L 403 403 403 403 ok",
    "auth.callback GET": "404 404 404 404 404 404",
    "auth.demo GET": "ok ok ok ok ok ok",
    "auth.demo POST": "ok ok ok ok ok ok",
    "auth.login_page GET": "ok ok ok ok ok ok",
    "auth.start GET": "404 404 404 404 404 404",
    "auth.logout POST": "ok ok ok ok ok ok",
    "admin.tenants GET": "L 403 403 403 403 ok",
    "admin.remove_tenant GET": "L 403 403 403 403 ok",
    "admin.synonyms GET": "L 403 403 403 403 ok",
    "admin.delete_synonym GET": "L 403 403 403 403 ok",
    "admin.tenants POST": "L 403 403 403 403 400",
    # The page moved to /admin/tenants: a permanent redirect for everyone.
    "auth.tenants GET": "ok ok ok ok ok ok",
    "completion.verify_certificate GET": "ok ok ok ok ok ok",
    "completion.revoke POST": "L 403 403 403 403 ok",
    "completion.assignment_edit GET": "L 403 403 403 ok ok",
    "completion.assignment_edit POST": "L 403 403 403 ok ok",
    "completion.missing GET": "L 403 403 403 ok ok",
    "completion.assignment_new GET": "L 403 403 ok ok ok",
    "completion.assignment_new POST": "L 403 403 ok ok ok",
    "completion.certificate GET": "L 404 404 403 ok ok",
    "completion.comparison GET": "L 403 403 403 403 ok",
    "completion.course_completions GET": "L 403 403 403 403 ok",
    "completion.course_completions POST": "L 403 403 403 403 ok",
    "completion.certificates_zip GET": "L 403 403 ok ok ok",
    "completion.dashboard GET": "L 403 403 ok ok ok",
    "completion.export GET": "L 403 403 ok ok ok",
    "completion.history GET": "L ok ok ok ok ok",
    "completion.records GET": "L 403 403 ok ok ok",
    "courses.catalogue GET": "L ok ok ok ok ok",
    "courses.course_detail GET": "L ok ok ok ok ok",
    # admin_b cancels the B learner's enrollment; the platform admin then finds it cancelled.
    "enrollment.cancel POST": "L 403 403 403 ok 409",
    "main.healthz GET": "ok ok ok ok ok ok",
    "main.hello GET": "ok ok ok ok ok ok",
    "main.readyz GET": "ok ok ok ok ok ok",
    "main.set_language POST": "ok ok ok ok ok ok",
    "courses.manage GET": "L 403 ok 403 403 ok",
    "courses.manage_course GET": "L 403 403 403 403 ok",
    "courses.cancel_course GET": "L 403 403 403 403 ok",
    "courses.cancel_course POST": "L 403 403 403 403 ok",
    "courses.edit_course GET": "L 403 403 403 403 ok",
    "courses.edit_course POST": "L 403 403 403 403 ok",
    "courses.publish_course POST": "L 403 403 403 403 ok",
    "courses.new_session GET": "L 403 403 403 403 ok",
    "courses.new_session POST": "L 403 403 403 403 ok",
    "courses.unpublish_course POST": "L 403 403 403 403 ok",
    "courses.new_course GET": "L 403 ok 403 403 ok",
    "courses.new_course POST": "L 403 ok 403 403 ok",
    "courses.cancel_session GET": "L 403 403 403 403 ok",
    "courses.cancel_session POST": "L 403 403 403 403 ok",
    "courses.edit_session GET": "L 403 403 403 403 ok",
    "courses.edit_session POST": "L 403 403 403 403 ok",
    "enrollment.my_page GET": "L ok ok ok ok ok",
    "enrollment.admin_home GET": "L 403 403 ok ok ok",
    "enrollment.approve POST": "L 403 403 403 ok ok",
    "enrollment.reject POST": "L 403 403 403 ok ok",
    "enrollment.swap POST": "L 403 403 403 ok ok",
    "enrollment.nominate_csv GET": "L 403 403 ok ok ok",
    "enrollment.nominate_csv POST": "L 403 403 ok ok ok",
    "enrollment.session_page GET": "L 403 403 404 ok ok",
    "enrollment.nominate POST": "L 403 403 400 400 400",
    "roster.index GET": "L 403 403 ok ok ok",
    "roster.detail GET": "L 403 403 403 ok ok",
    "roster.edit GET": "L 403 403 403 ok ok",
    "roster.edit POST": "L 403 403 403 ok ok",
    "roster.leave POST": "L 403 403 403 ok ok",
    "roster.transfer POST": "L 403 403 403 ok ok",
    "roster.export_csv GET": "L 403 403 ok ok ok",
    "roster.import_csv GET": "L 403 403 ok ok ok",
    "roster.import_csv POST": "L 403 403 ok ok ok",
    "roster.new GET": "L 403 403 ok ok ok",
    "roster.new POST": "L 403 403 ok ok ok",
    "teams.sync_roster POST": "L 403 403 ok ok ok",
    "notifications.session_calendar GET": "L 403 403 403 ok ok",
    # Nobody signed in here is a B learner with a roster entry eligible for the course: refused by rule.
    "enrollment.enroll POST": "L 409 409 409 409 409",
    "static GET": "ok ok ok ok ok ok",
    "site.accessibility GET": "ok ok ok ok ok ok",
    "site.privacy GET": "ok ok ok ok ok ok",
    "site.edit GET": "L 403 403 403 403 ok",
    "site.edit POST": "L 403 403 403 403 400",
    "teams.graph_notifications POST": "400 400 400 400 400 400",
    "teams.retry_operation POST": "L 403 403 403 403 ok",
    "teams.session_detail GET": "L 403 403 403 403 ok",
    "teams.import_now POST": "L 403 403 403 403 ok",
    "teams.sync_meeting POST": "L 403 403 403 403 ok",
    "teams.status GET": "L 403 403 403 403 ok",
    "archives.remove_file POST": "L 403 403 403 403 ok",
    "archives.remove_file GET": "L 403 403 403 403 ok",
    "admin.remove_tenant POST": "L 403 403 403 403 ok",
    "admin.delete_synonym POST": "L 403 403 403 403 ok",
    # An empty group is refused with the form's message.
    "admin.synonyms POST": "L 403 403 403 403 400",
    # admin_b deletes the assignment first; the platform admin then finds it gone.
    "completion.assignment_delete POST": "L 403 403 403 ok 404",
}


@pytest.fixture
def app_config(app_config):
    # A crash is recorded as an outcome (5xx) instead of stopping the walk.
    return {**app_config, "PROPAGATE_EXCEPTIONS": False, "LMS_LOG_REQUESTS": False}


def _demo(code, key):
    from lms.auth.models import User
    from lms.demo import demo_uuid
    from lms.extensions import db

    return db.session.scalar(select(User).where(User.object_id == demo_uuid("user", code, key)))


@pytest.fixture
def world(app, db):
    from lms.archives.models import Archive, UploadSession
    from lms.attendance.models import AttendanceRecord
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
    for row in (completion, assignment, mail, record, operation, upload):
        if row is not None:
            db.session.add(row)
    db.session.commit()
    params = {
        "course_id": course.id, "session_id": session.id, "enrollment_id": enrollment.id,
        "archive_id": archive.id, "file_id": archive_file.id, "name": archive_file.filename,
        "completion_id": completion.id, "assignment_id": assignment.id, "mail_id": mail.id,
        "member_id": member_b.id, "mapping_id": mapping.id if mapping else 1, "record_id": record.id,
        "operation_id": operation.id, "upload_id": upload.id if upload else uuid.uuid4().hex,
        "serial": completion.certificate_serial, "kind": "attendance", "table": "courses", "fmt": "csv",
        "filename": "css/app.css", "slug": "privacy",
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


def _url(rule, params) -> str:
    def fill(match):
        name = match.group(2)
        assert name in params, f"no sample object for <{name}> in {rule.rule}: add one to the world fixture"
        return str(params[name])

    return re.sub(r"<(?:([^:<>]+):)?([^<>]+)>", fill, rule.rule)


REMOVING = ("delete", "remove")


def _walk_order(rule):
    """Routes that remove their object run last, so that the others still find it."""
    return (any(word in rule.endpoint for word in REMOVING), rule.rule)


def _outcome(response) -> str:
    status = response.status_code
    if status in (301, 302, 303, 307, 308) and "/auth/login" in response.headers.get("Location", ""):
        return "L"
    if status == 401:
        return "L"
    if status in (400, 403, 404, 405, 409, 412, 413, 422):
        return str(status)
    if status >= 500:
        return f"5xx({status})"
    return "ok"


def test_every_route_answers_each_role_as_the_table_says(app, world):
    params, users = world
    worker_heartbeat()  # /readyz: a worker is alive
    observed: dict[str, str] = {}
    for rule in sorted(app.url_map.iter_rules(), key=_walk_order):
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}) or ["OPTIONS"]:
            key = f"{rule.endpoint} {method}"
            row = []
            for role in ROLES:
                client = app.test_client()
                if users[role] is not None:
                    sign_in(client, users[role])
                headers = {"Accept": "application/json"} if method != "GET" else {}
                response = client.open(_url(rule, params), method=method, headers=headers, buffered=True)
                row.append(_outcome(response))
            observed[key] = " ".join(row)
    if os.environ.get("AUTHZ_PRINT"):
        for key, row in observed.items():
            print(f'    "{key}": "{row}",')
    failures = [f"{key}: observed {row!r}, no entry in EXPECTED" for key, row in observed.items() if key not in EXPECTED]
    failures += [f"{key}: expected {EXPECTED[key]!r}, observed {row!r}" for key, row in observed.items()
                 if key in EXPECTED and EXPECTED[key] != row]
    failures += [f"{key}: 5xx" for key, row in observed.items() if "5xx" in row]
    stale = set(EXPECTED) - set(observed)
    assert not failures, "\n".join(failures)
    assert not stale, f"table rows for routes that no longer exist: {sorted(stale)}"
    print(f"authorization matrix: {len(observed)} routes x {len(ROLES)} roles = {len(observed) * len(ROLES)} calls")
