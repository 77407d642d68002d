"""A button pressed twice at once (a double click, two tabs): the state change is made and
audited once. Each service locks the row and reads it again first (``lock_fresh``), so the
second copy finds the first one's result."""

from __future__ import annotations

from sqlalchemy import func, select

from lms.activities import services as activities
from lms.activities.models import SURVEY, TEXT, ActivityQuestion
from lms.api.models import ApiClient
from lms.archives.models import Archive
from lms.audit.models import AuditLog
from lms.common.timeutil import utcnow
from lms.courses.models import CANCELLED, Course
from lms.extensions import db
from tests import factories
from tests.at_once import post_at_once


def _audited(action: str, target_id: int) -> int:
    db.session.rollback()  # (a fresh read: SQLite's reader keeps the snapshot it began with)
    return db.session.scalar(select(func.count()).select_from(AuditLog).where(
        AuditLog.action == action, AuditLog.target_id == str(target_id)))


def _cookie(app, user) -> str:
    return f"{app.config['SESSION_COOKIE_NAME']}={factories.session_cookie(app, user)}"


def _pressed_three_times(app, live_server, user, path: str) -> None:
    """``path``'s button pressed three times at the same instant by ``user``: each copy is
    answered with a redirect (the first acted, the others found it done)."""
    cookie = _cookie(app, user)
    db.session.commit()
    answers = post_at_once(f"{live_server.url}{path}", cookie, {})
    assert {status for status, _ in answers} == {302}


def test_a_course_cancelled_three_times_at_once_is_cancelled_and_audited_once(app, live_server):
    trainer = factories.make_user("trainer")
    course = factories.make_course(owner_id=trainer.id)
    course_id, cookie = course.id, _cookie(app, trainer)
    db.session.commit()
    answers = post_at_once(f"{live_server.url}/manage/courses/{course_id}/cancel", cookie, {"reason": "講師の都合"})
    assert {status for status, _ in answers} == {302}
    assert _audited("course.cancel", course_id) == 1
    assert db.session.get(Course, course_id).status == CANCELLED


def test_an_api_client_revoked_three_times_at_once_is_audited_once(app, live_server):
    admin = factories.make_user("platform_admin", "130001")
    client = ApiClient(application_id="6f1d2c3b-0000-4000-8000-000000000001", name="人事システム連携",
                       municipality_id=None, created_by_id=admin.id)
    db.session.add(client)
    db.session.commit()
    client_id = client.id
    _pressed_three_times(app, live_server, admin, f"/admin/api-clients/{client_id}/revoke")
    assert _audited("api_client.revoke", client_id) == 1
    assert db.session.get(ApiClient, client_id).revoked_at is not None


def test_an_archive_withdrawn_three_times_at_once_is_audited_once(app, live_server):
    trainer = factories.make_user("trainer")
    course = factories.make_course(owner_id=trainer.id)
    archive = Archive(course_id=course.id, title="第1回 録画", description="", status="published", audience="eligible",
                      created_by_id=trainer.id, published_at=utcnow())
    db.session.add(archive)
    db.session.commit()
    archive_id = archive.id
    _pressed_three_times(app, live_server, trainer, f"/archives/manage/{archive_id}/withdraw")
    assert _audited("archive.withdraw", archive_id) == 1


def test_a_question_deleted_three_times_at_once_is_deleted_and_audited_once(app, live_server):
    trainer = factories.make_user("trainer")
    course = factories.make_course(owner_id=trainer.id)
    survey = activities.create_activity(trainer, course, activities.ActivityInput(kind=SURVEY, title="研修アンケート"))
    kept = activities.add_question(trainer, survey, activities.QuestionInput(kind=TEXT, prompt="感想"))
    gone = activities.add_question(trainer, survey, activities.QuestionInput(kind=TEXT, prompt="要望"))
    db.session.commit()
    survey_id, kept_id, gone_id, cookie = survey.id, kept.id, gone.id, _cookie(app, trainer)
    db.session.commit()
    answers = post_at_once(f"{live_server.url}/manage/activity-questions/{gone_id}/delete", cookie, {})
    # The first deletes it; a copy that arrives after meets a question that is gone (404).
    assert {status for status, _ in answers} <= {302, 404} and any(status == 302 for status, _ in answers)
    assert _audited("activity.question_delete", survey_id) == 1
    assert db.session.scalars(select(ActivityQuestion.id).where(ActivityQuestion.activity_id == survey_id)).all() \
        == [kept_id]
