"""Each role's home page: what it shows, and that a training office sees only its own
municipality's items — in Japanese and in English."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from lms.archives.models import Archive
from lms.audit.services import record_action
from lms.enrollment.models import CONFIRMED, PENDING, Enrollment
from lms.notifications.models import FAILED, OutboxMail
from tests.factories import make_course, make_session, make_staff, make_user

LANGS = {"ja": "ja", "en": "en"}


def home(client, lang: str) -> str:
    response = client.get("/", headers={"Accept-Language": lang})
    assert response.status_code == 200
    return response.get_data(as_text=True)


def enroll(session, member, status: str) -> Enrollment:
    from lms.extensions import db

    enrollment = Enrollment(session_id=session.id, staff_member_id=member.id, municipality_id=member.municipality_id,
                            status=status, arrival_seq=1)
    db.session.add(enrollment)
    db.session.commit()
    return enrollment


@pytest.mark.parametrize("lang", LANGS)
def test_trainer_home_lists_upcoming_roll_calls_and_archives(db, client, login_as, lang):
    trainer = login_as("trainer", name="Trainer One")
    other = make_user("trainer", name="Trainer Two")
    course = make_course(title="Spreadsheet basics", owner_id=trainer.id)
    upcoming = make_session(course, title="Upcoming round")
    past = make_session(course, title="Past round", starts_in=-timedelta(days=3))
    enroll(past, make_staff(), CONFIRMED)
    db.session.add(Archive(course_id=course.id, title="Recording waiting", status="draft", created_by_id=trainer.id))
    theirs = make_course(title="Someone else's course", owner_id=other.id)
    make_session(theirs, title="Not mine round")
    db.session.commit()

    page = home(client, lang)
    assert 'id="trainer-home"' in page
    assert "Upcoming round" in page and f"/manage/courses/{course.id}" in page
    assert f"/attendance/sessions/{past.id}/roll-call" in page
    assert "Recording waiting" in page
    assert "Not mine round" not in page and "Someone else" not in page
    assert ("出欠が未入力の回" in page) == (lang == "ja")
    assert ("Sessions without a roll call" in page) == (lang == "en")
    assert upcoming.starts_at > past.starts_at


@pytest.mark.parametrize("lang", LANGS)
def test_municipal_home_counts_only_its_municipality(db, client, login_as, lang):
    login_as("municipal_admin", "131016", name="Office Admin")
    course = make_course(title="Records management", requires_approval=True)
    mine = make_session(course, title="Quota round", quotas={"131016": 3})
    theirs = make_session(course, title="Other office round", quotas={"131024": 4})
    enroll(mine, make_staff("131016"), PENDING)
    enroll(mine, make_staff("131016"), PENDING)
    enroll(theirs, make_staff("131024"), PENDING)

    page = home(client, lang)
    assert 'id="municipal-home"' in page
    expected = "承認待ちの申込: 2件" if lang == "ja" else "Enrollments awaiting approval: 2"
    assert expected in page
    assert "Quota round" in page
    assert "Other office round" not in page
    assert "/completion/dashboard" in page
    assert 'id="trainer-home"' not in page and 'id="platform-home"' not in page
    # No course is mandatory this year: said so, not "0 staff have not completed" (found by QA).
    from lms.completion.models import MandatoryAssignment
    from lms.completion.reports import current_fiscal_year
    from lms.extensions import db as database

    none_yet = "年度の必修研修の指定はまだありません" if lang == "ja" else "No mandatory courses designated for FY"
    missing = "年度の必修研修を修了していない職員: 延べ" if lang == "ja" else "not completed a mandatory course"
    assert none_yet in page and missing not in page
    database.session.add(MandatoryAssignment(course_id=course.id, fiscal_year=current_fiscal_year(), municipality_id=None,
                                             due_on=date.today() + timedelta(days=30)))
    database.session.commit()
    page = home(client, lang)
    assert none_yet not in page and missing in page


@pytest.mark.parametrize("lang", LANGS)
def test_platform_home_shows_failures_denials_and_courses_without_sessions(db, client, login_as, lang):
    admin = login_as("platform_admin", name="Platform Admin")
    make_course(title="Course with no rounds", status="draft", published_at=None)
    db.session.add(OutboxMail(dedupe_key="home-failed-1", kind="confirmed", to_address="a@example.lg.jp",
                              subject="s", body_text="b", status=FAILED))
    intruder = make_user("learner", name="Curious Learner")
    record_action(intruder, "access.denied", "course", "42", None)
    db.session.commit()

    page = home(client, lang)
    assert 'id="platform-home"' in page
    assert "Course with no rounds" in page
    expected = "送信に失敗したメール: 1件" if lang == "ja" else "Mails that failed to send: 1"
    assert expected in page
    assert "Curious Learner" in page
    assert admin.display_name in page


@pytest.mark.parametrize("lang", LANGS)
def test_learner_home_has_no_role_panels(db, client, login_as, lang):
    login_as("learner", name="Plain Learner")
    page = home(client, lang)
    assert "Plain Learner" in page
    assert "home-panel" not in page
