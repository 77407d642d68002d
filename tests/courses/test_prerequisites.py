"""受講要件: a course may require others to be completed first — set by its trainer, enforced
on every way into a place (own request, nomination, approval, swap), named and linked in the
refusal (both databases)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lms.audit.models import AuditLog
from lms.common.errors import InvalidInput
from lms.common.timeutil import fiscal_year_of, utcnow
from lms.completion.services import complete_manually, revoke_completion
from lms.courses import services as course_services
from lms.courses.models import CANCELLED
from lms.enrollment import services
from lms.enrollment.rules import MissingPrerequisite
from lms.extensions import db
from tests import factories

JSON = {"Accept": "application/json"}


@pytest.fixture(autouse=True)
def _summaries_follow(summaries_follow):
    yield


@pytest.fixture
def series(db):
    """新規採用職員研修 → 2年目研修, owned by a trainer; a session of the second."""
    trainer = factories.make_user("trainer")
    first = factories.make_course(title="新規採用職員研修", owner=trainer)
    second = factories.make_course(title="2年目研修", owner=trainer)
    session = factories.make_session(second, starts_in=timedelta(days=10))
    course_services.set_prerequisites(trainer, second, [first.id], None)
    db.session.commit()
    return trainer, first, second, session


def _fy() -> int:
    return fiscal_year_of(utcnow() + timedelta(days=10))


def test_a_learner_without_the_required_course_is_refused_with_its_name(series):
    trainer, first, second, session = series
    learner = factories.make_user()
    with pytest.raises(MissingPrerequisite) as refused:
        services.enroll_self(session.id, learner)
    assert "「新規採用職員研修」" in refused.value.message and refused.value.courses == [(first.id, "新規採用職員研修")]
    db.session.rollback()

    complete_manually(learner.staff_member.id, first.id, _fy() - 2, trainer, "集合研修で修了（紙の記録）")
    db.session.commit()
    assert services.enroll_self(session.id, learner).status == "confirmed"


def test_within_fiscal_years_and_revoked_completions(series):
    trainer, first, second, session = series
    course_services.set_prerequisites(trainer, second, [first.id], 2)
    db.session.commit()
    old, recent, revoked = factories.make_user(), factories.make_user(), factories.make_user()
    complete_manually(old.staff_member.id, first.id, _fy() - 2, trainer, "3年前の修了")
    complete_manually(recent.staff_member.id, first.id, _fy() - 1, trainer, "前年度の修了")
    gone = complete_manually(revoked.staff_member.id, first.id, _fy(), trainer, "今年度の修了")
    db.session.commit()
    revoke_completion(gone.id, trainer, "記録の誤り")
    db.session.commit()
    with pytest.raises(MissingPrerequisite) as refused:
        services.enroll_self(session.id, old)
    assert f"{_fy() - 1}年度以降の修了" in refused.value.message
    db.session.rollback()
    with pytest.raises(MissingPrerequisite):
        services.enroll_self(session.id, revoked)
    db.session.rollback()
    assert services.enroll_self(session.id, recent).status == "confirmed"


def test_nomination_approval_and_swap_ask_the_same(series):
    trainer, first, second, session = series
    admin = factories.make_user("municipal_admin")
    without = factories.make_staff()
    with pytest.raises(MissingPrerequisite):
        services.nominate(session.id, without.id, admin)
    db.session.rollback()
    holder = factories.make_staff()
    complete_manually(holder.id, first.id, _fy(), trainer, "修了")
    db.session.commit()
    result = services.nominate(session.id, holder.id, admin)
    db.session.commit()
    with pytest.raises(MissingPrerequisite):
        services.swap_nominee(result.enrollment.id, without.id, admin)
    db.session.rollback()


def test_the_trainer_sets_requirements_with_clear_refusals(series):
    trainer, first, second, session = series
    third = factories.make_course(title="主任研修", owner=trainer)
    with pytest.raises(InvalidInput, match="循環"):
        course_services.set_prerequisites(trainer, first, [second.id], None)  # 2年目 already needs 新規採用
    db.session.rollback()
    with pytest.raises(InvalidInput, match="研修そのもの"):
        course_services.set_prerequisites(trainer, third, [third.id], None)
    db.session.rollback()
    cancelled = factories.make_course(title="中止した研修", status=CANCELLED)
    with pytest.raises(InvalidInput, match="選べない研修"):
        course_services.set_prerequisites(trainer, third, [cancelled.id], None)
    db.session.rollback()
    assert course_services.set_prerequisites(trainer, third, [second.id, first.id], 3) is True
    assert course_services.set_prerequisites(trainer, third, [second.id, first.id], 3) is False
    db.session.commit()
    entry = db.session.scalars(select(AuditLog).where(AuditLog.action == "course.prerequisites")
                               .order_by(AuditLog.id.desc())).first()
    assert entry.details == {"required": ["2年目研修", "新規採用職員研修"], "within_fiscal_years": 3}
    assert course_services.set_prerequisites(trainer, third, [], None) is True
    db.session.commit()
    db.session.refresh(third)
    assert third.has_prerequisites is False and third.prerequisites == []


def test_pages_the_trainer_sets_and_the_learner_reads(series, client, login_as, app):
    trainer, first, second, session = series
    login_as(user=trainer)
    page = client.get(f"/manage/courses/{second.id}/prerequisites")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and f'value="{first.id}" id="r-{first.id}" checked' in body
    bad = client.post(f"/manage/courses/{second.id}/prerequisites",
                      data={"required_ids": [str(first.id)], "within_fiscal_years": "99",
                            "csrf_token": _csrf(client, f"/manage/courses/{second.id}/prerequisites")})
    assert bad.status_code == 200 and "1から20までの数で入力してください。" in bad.get_data(as_text=True)
    saved = client.post(f"/manage/courses/{second.id}/prerequisites",
                        data={"required_ids": [str(first.id)], "within_fiscal_years": "3",
                              "csrf_token": _csrf(client, f"/manage/courses/{second.id}/prerequisites")})
    assert saved.status_code == 302
    manage = client.get(f"/manage/courses/{second.id}").get_data(as_text=True)
    assert "新規採用職員研修" in manage and "直近 3 年度以内の修了" in manage

    other_trainer = factories.make_user("trainer")
    login_as(user=other_trainer)
    assert client.get(f"/manage/courses/{second.id}/prerequisites").status_code == 404

    learner = login_as("learner")
    detail = client.get(f"/courses/{second.id}").get_data(as_text=True)
    assert "受講要件" in detail and f'href="/courses/{first.id}"' in detail
    refused = client.post(f"/sessions/{session.id}/enroll", headers=JSON,
                          data={"csrf_token": _csrf(client, f"/courses/{second.id}")})
    assert refused.status_code == 409 and refused.json["missing_courses"] == [{"id": first.id, "title": "新規採用職員研修"}]
    page = client.post(f"/sessions/{session.id}/enroll", data={"csrf_token": _csrf(client, f"/courses/{second.id}")})
    after = client.get(page.headers["Location"]).get_data(as_text=True)
    assert f'<a href="/courses/{first.id}">新規採用職員研修</a>' in after
    assert learner.staff_member is not None


def _csrf(client, path: str) -> str:
    import re
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', client.get(path).get_data(as_text=True))
    return match.group(1) if match else ""
