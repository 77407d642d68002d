"""#17's way through, in real Chromium: a learner requests a three-day course (連続講座); the
所属長 is away and their stand-in approves; the training office approves; the place is
confirmed for all three days; the learner attends two of three days and is not completed at
the course's 3/4, takes the make-up day (補講), attends it and is completed; a learner without
a prerequisite sees why and where to go. Pages on the way pass axe (WCAG 2.1 AA)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lms.common.timeutil import today_tokyo
from lms.courses import services as courses
from lms.courses.models import CoursePrerequisite, TrainingSession
from lms.enrollment.models import CONFIRMED, Enrollment
from tests import factories
from tests.browser import AXE, sign_in_browser
from tests.browser import axe_violations as _axe

pytestmark = pytest.mark.browser


def _as(app, context, base_url: str, user) -> None:
    context.clear_cookies()
    sign_in_browser(app, context, base_url, user)


def _held(db, sessions) -> None:
    """The days go by: the sessions are moved 40 days into the past (as if held)."""
    db.session.rollback()
    for session in sessions:
        row = db.session.get(TrainingSession, session.id)
        row.starts_at -= timedelta(days=40)
        row.ends_at -= timedelta(days=40)
        row.enroll_closes_at = row.cancel_deadline = None
    db.session.commit()


def _roll_call(page, base, session_id, present: list[str]) -> None:
    page.goto(f"{base}/attendance/sessions/{session_id}/roll-call")
    for name in present:
        page.get_by_label(name).check()
    page.get_by_role("button", name="出欠を保存").click()
    expect(page.locator(".flash")).to_be_visible()


@pytest.mark.browser_context_args(bypass_csp=True)
def test_a_three_day_course_from_request_to_completion(live_server, page, db):
    if not AXE.exists():
        pytest.skip("axe-core is not installed in tests/node (npm install)")
    trainer = factories.make_user("trainer", name="研修所 講師")
    course = factories.make_course(title="新任職員研修（3日間）", supervisor_approval=True, requires_approval=True,
                                   owner_id=trainer.id, completion_mode="attendance")
    first = factories.make_session(course, capacity=20, title="第1日", delivery="onsite", location="研修室A",
                                   starts_in=timedelta(days=20))
    for n in (1, 2):
        courses.create_session(trainer, course, courses.SessionInput(
            starts_at=first.starts_at + timedelta(days=n), ends_at=first.ends_at + timedelta(days=n),
            title=f"第{n + 1}日", delivery="onsite", location="研修室A", capacity=20), part_of=first)
    basics = factories.make_course(title="新規採用職員研修（基礎）")
    second_year = factories.make_course(title="2年目研修", has_prerequisites=True)
    factories.make_session(second_year, capacity=20)
    db.session.add(CoursePrerequisite(course_id=second_year.id, required_course_id=basics.id))
    learner = factories.make_user("learner", name="新任 太郎")
    head = factories.make_user("learner", name="総務課長 佐藤")
    head.staff_member.department_head = True
    stand_in = factories.make_user("learner", name="総務課 課長補佐 鈴木")
    office = factories.make_user("municipal_admin", name="研修担当 高橋")
    db.session.commit()
    days = list(db.session.scalars(select(TrainingSession).where(TrainingSession.series_id == first.id)
                                   .order_by(TrainingSession.starts_at)))
    assert len(days) == 3
    base, app, context = live_server.url, live_server.app, page.context

    # The learner requests the series on its first day (the other days say where to apply).
    _as(app, context, base, learner)
    page.goto(f"{base}/courses/{course.id}")
    expect(page.get_by_text("連続講座の一部です（最初の回に申し込むと、この回の受講も決まります）。").first).to_be_visible()
    page.get_by_role("button", name="申し込む（承認制）").click()
    expect(page.locator(".flash")).to_be_visible()

    # The 所属長 is away: they name a stand-in, who approves.
    _as(app, context, base, head)
    page.goto(f"{base}/approvals")
    page.get_by_label("代理の職員番号").fill(stand_in.staff_member.employee_number)
    page.get_by_label("開始日").fill(today_tokyo().isoformat())
    page.get_by_label("終了日").fill((today_tokyo() + timedelta(days=7)).isoformat())
    page.get_by_role("button", name="代理を指名する").click()
    expect(page.locator(".flash")).to_be_visible()
    _as(app, context, base, stand_in)
    page.goto(f"{base}/approvals")
    assert _axe(page) == []
    page.get_by_role("row", name="新任 太郎").get_by_role("button", name="承認する", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("研修担当の承認に進みます")

    # The training office approves: the place is confirmed, for every day.
    _as(app, context, base, office)
    page.goto(f"{base}/municipal")
    page.get_by_role("button", name="承認する", exact=True).first.click()
    expect(page.locator(".flash")).to_contain_text("承認しました")
    db.session.rollback()
    places = db.session.scalars(select(Enrollment).where(Enrollment.staff_member_id == learner.staff_member.id)).all()
    assert sorted(e.session_id for e in places if e.status == CONFIRMED) == [d.id for d in days]
    page.goto(f"{base}/municipal/sessions/{first.id}")
    expect(page.get_by_role("heading", name="連続講座の出席（日程ごと）")).to_be_visible()
    assert _axe(page) == []

    # The trainer adds a make-up day for day 3 (a week after it).
    _as(app, context, base, trainer)
    page.goto(f"{base}/manage/sessions/{days[2].id}/makeup/new")
    expect(page.get_by_role("heading", level=1)).to_have_text("補講を追加")
    assert _axe(page) == []
    page.get_by_role("button", name="保存").click()
    expect(page.locator(".flash")).to_contain_text("補講を追加しました")
    db.session.rollback()
    makeup = db.session.scalar(select(TrainingSession).where(TrainingSession.makeup_for_id == days[2].id))

    # Days 1 and 2 attended, day 3 missed: 2 of 3 is under 3/4.
    _held(db, days)
    _as(app, context, base, trainer)
    _roll_call(page, base, days[0].id, ["新任 太郎"])
    _roll_call(page, base, days[1].id, ["新任 太郎"])
    _roll_call(page, base, days[2].id, [])
    _as(app, context, base, learner)
    page.goto(f"{base}/me")
    expect(page.get_by_text("連続講座：3 日程のうち 2 日程に出席（修了には 3 日程以上の出席が必要）").first).to_be_visible()
    expect(page.get_by_text("欠席").first).to_be_visible()
    assert _axe(page) == []
    page.goto(f"{base}/completion/history")
    row = page.get_by_role("row", name="新任職員研修（3日間）")
    expect(row).to_contain_text("修了要件を満たしていません")
    expect(row.locator(".badge-confirmed")).to_have_count(0)

    # The make-up day: requested without approval again, attended, and the course is completed.
    page.goto(f"{base}/courses/{course.id}")
    page.get_by_role("button", name="補講に申し込む").click()
    expect(page.locator(".flash")).to_be_visible()
    _held(db, [makeup])
    _as(app, context, base, trainer)
    _roll_call(page, base, makeup.id, ["新任 太郎"])
    _as(app, context, base, learner)
    page.goto(f"{base}/completion/history")
    expect(page.get_by_role("row", name="新任職員研修（3日間）").locator(".badge-confirmed")).to_have_text("修了")
    page.goto(f"{base}/me")
    expect(page.get_by_text("補講で出席").first).to_be_visible()

    # Without the prerequisite: why, and a link to the course to take first.
    page.goto(f"{base}/courses/{second_year.id}")
    page.get_by_role("button", name="申し込む").click()
    flash = page.locator(".flash")
    expect(flash).to_contain_text("先に次の研修を修了している必要があります")
    flash.get_by_role("link", name="新規採用職員研修（基礎）").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("新規採用職員研修（基礎）")
