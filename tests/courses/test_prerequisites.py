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
from lms.courses.models import CANCELLED, DRAFT
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


def test_another_trainer_s_draft_is_neither_shown_nor_taken(series, client, login_as):
    trainer, first, second, session = series
    admin = factories.make_user("platform_admin")
    hidden = factories.make_course(title="管理者の下書き研修", owner=admin, status=DRAFT)
    own_draft = factories.make_course(title="自分の下書き研修", owner=trainer, status=DRAFT)
    db.session.commit()
    login_as(user=trainer)
    path = f"/manage/courses/{second.id}/prerequisites"
    body = client.get(path).get_data(as_text=True)
    assert "管理者の下書き研修" not in body and "自分の下書き研修" in body and "新規採用職員研修" in body
    posted = client.post(path, data={"required_ids": [str(first.id), str(hidden.id)], "csrf_token": _csrf(client, path)})
    assert posted.status_code == 200 and "管理者の下書き研修" not in posted.get_data(as_text=True)
    with pytest.raises(InvalidInput, match="選べない研修"):  # (the service refuses it too, whatever the form lists)
        course_services.set_prerequisites(trainer, second, [first.id, hidden.id], None)
    db.session.rollback()
    assert [p.required_course_id for p in db.session.get(type(second), second.id).prerequisites] == [first.id]
    # the platform administrator sees every draft, and a requirement once set stays listed for the trainer
    assert course_services.set_prerequisites(admin, second, [first.id, hidden.id, own_draft.id], None) is True
    db.session.commit()
    body = client.get(path).get_data(as_text=True)
    assert "管理者の下書き研修" in body
    assert course_services.set_prerequisites(trainer, second, [hidden.id, first.id], None) is True  # (kept, re-saved)


def _csrf(client, path: str) -> str:
    import re
    match = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', client.get(path).get_data(as_text=True))
    return match.group(1) if match else ""


# ---------------------------------------------------------------- 研修体系 (training paths)


def test_a_path_is_kept_by_the_platform_admin_and_shown_with_the_learner_s_progress(series, client, login_as):
    trainer, first, second, session = series
    third = factories.make_course(title="主任研修", owner=trainer)
    admin = login_as("platform_admin")
    form = {"name": "若手職員育成コース", "description": "採用から主任まで",
            "steps-0": str(first.id), "steps-1": "0", "steps-2": str(second.id), "steps-3": str(third.id)}
    for i in range(4, 10):
        form[f"steps-{i}"] = "0"
    one = client.post("/manage/paths/new", data={**form, "steps-2": "0", "steps-3": "0"})
    assert one.status_code == 200 and "研修を2つ以上" in one.get_data(as_text=True)
    twice = client.post("/manage/paths/new", data={**form, "steps-2": str(first.id)})
    assert twice.status_code == 200 and "同じ研修が2回" in twice.get_data(as_text=True)
    assert "若手職員育成コース" in twice.get_data(as_text=True)  # the typed name stays
    saved = client.post("/manage/paths/new", data=form)
    assert saved.status_code == 302
    listing = client.get("/manage/paths").get_data(as_text=True)
    assert "新規採用職員研修</a> → <a" in listing and "主任研修" in listing
    dup = client.post("/manage/paths/new", data=form)
    assert "同じ名前の研修体系" in dup.get_data(as_text=True)

    learner = login_as("learner")
    complete_manually(learner.staff_member.id, first.id, _fy(), trainer, "修了")
    db.session.commit()
    history = client.get("/completion/history").get_data(as_text=True)
    assert "若手職員育成コース" in history and "1 / 3 段階を修了" in history
    assert f'次は <a href="/courses/{second.id}">2年目研修</a>' in history
    detail = client.get(f"/courses/{second.id}").get_data(as_text=True)
    assert '<strong aria-current="step">2年目研修</strong>' in detail

    # Only platform admins keep paths; deleting asks on a page first.
    login_as(user=trainer)
    assert client.get("/manage/paths").status_code == 403
    login_as(user=admin)
    from lms.courses.models import TrainingPath
    path_id = db.session.scalar(select(TrainingPath.id))
    confirm = client.get(f"/manage/paths/{path_id}/delete").get_data(as_text=True)
    assert "新規採用職員研修 → 2年目研修 → 主任研修" in confirm
    assert client.post(f"/manage/paths/{path_id}/delete").status_code == 302
    db.session.rollback()
    assert db.session.scalar(select(TrainingPath.id)) is None
    actions = set(db.session.scalars(select(AuditLog.action).where(AuditLog.action.like("path.%"))))
    assert actions == {"path.create", "path.delete"}
