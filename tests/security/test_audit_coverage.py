"""Administrative actions and exports of personal data, done through the web, each leave exactly
one audit entry naming the actor, with the request ID and the address (areas test the details
of their own entries; this proves the trail end to end, one action of each kind)."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from lms.audit.models import AuditLog
from tests.factories import sign_in


@pytest.fixture
def demo(app, db):
    from lms.demo import load_demo

    load_demo()
    db.session.commit()


def _user(code, key):
    from lms.auth.models import User
    from lms.demo import demo_uuid
    from lms.extensions import db

    return db.session.scalar(select(User).where(User.object_id == demo_uuid("user", code, key)))


def _entries(db, action):
    db.session.rollback()
    return db.session.scalars(select(AuditLog).where(AuditLog.action == action).order_by(AuditLog.id)).all()


def _one_more(db, action, do, actor):
    before = len(_entries(db, action))
    response = do()
    assert response.status_code < 400, (action, response.status_code, response.get_data(as_text=True)[:300])
    entries = _entries(db, action)
    assert len(entries) == before + 1, f"{action}: {len(entries) - before} entries"
    entry = entries[-1]
    assert entry.actor_id == actor.id
    assert len(entry.request_id) >= 8 and entry.request_id == response.headers["X-Request-ID"]
    assert entry.ip_address == "127.0.0.1"
    return entry


def test_personal_data_exports_are_audited(app, db, demo):
    from lms.courses.models import Course

    admin = _user("131016", "admin")
    client = app.test_client()
    sign_in(client, admin)
    entry = _one_more(db, "roster.export", lambda: client.get("/roster/export.csv", buffered=True), admin)
    assert entry.municipality_id == admin.municipality_id
    entry = _one_more(db, "export.completion",
                      lambda: client.get("/completion/export/courses.csv", buffered=True), admin)
    assert entry.municipality_id == admin.municipality_id
    course = db.session.scalars(select(Course).order_by(Course.id)).first()
    _one_more(db, "export.completion",
              lambda: client.get(f"/completion/courses/{course.id}/certificates.zip", buffered=True), admin)

    platform = _user("130001", "platform")
    other = app.test_client()
    sign_in(other, platform)
    _one_more(db, "export.audit", lambda: other.post("/admin/audit/export", buffered=True), platform)


def test_approval_by_a_municipal_admin_is_audited(app, db, demo):
    from lms.enrollment.models import PENDING, Enrollment

    admin = _user("131016", "admin")
    pending = db.session.scalar(select(Enrollment).where(Enrollment.status == PENDING,
                                                         Enrollment.municipality_id == admin.municipality_id))
    if pending is None:
        pytest.skip("the demo data set has no pending enrollment in 千代田区")
    client = app.test_client()
    sign_in(client, admin)
    entry = _one_more(db, "enrollment.approve",
                      lambda: client.post(f"/municipal/enrollments/{pending.id}/approve"), admin)
    assert entry.target_id == str(pending.id)
    assert entry.municipality_id == admin.municipality_id


def test_course_publication_is_audited(app, db, demo):
    from lms.courses.models import Course
    from tests.factories import make_course, make_session

    platform = _user("130001", "platform")
    draft = make_course(title="公開前の研修", status="draft", published_at=None)
    make_session(draft)
    client = app.test_client()
    sign_in(client, platform)
    entry = _one_more(db, "course.publish", lambda: client.post(f"/manage/courses/{draft.id}/publish"), platform)
    assert entry.target_id == str(draft.id)
    db.session.rollback()
    assert db.session.get(Course, draft.id).status != "draft"


def test_failed_and_refused_actions_write_nothing_but_denials(app, db, demo):
    """A refused cross-municipality access leaves an access.denied entry, and no action entry."""
    from lms.roster.models import StaffMember

    admin = _user("131016", "admin")
    other_staff = db.session.scalar(select(StaffMember).where(StaffMember.municipality_id != admin.municipality_id))
    client = app.test_client()
    sign_in(client, admin)
    before = db.session.scalar(select(func.count()).select_from(AuditLog))
    response = client.get(f"/roster/{other_staff.id}")
    assert response.status_code in (403, 404)
    db.session.rollback()
    new = db.session.scalars(select(AuditLog).where(AuditLog.id > 0).order_by(AuditLog.id.desc())
                             .limit(db.session.scalar(select(func.count()).select_from(AuditLog)) - before)).all()
    assert all(e.action == "access.denied" for e in new), [e.action for e in new]
