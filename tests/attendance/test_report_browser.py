"""In Chromium at 1280 px: a trainer uploads a Teams attendance report, resolves an unmatched
row and confirms; the preview page passes axe (WCAG 2.1 AA)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lms.attendance.models import Attendance
from lms.common.signals import enrollment_status_changed
from lms.enrollment.models import CONFIRMED, Enrollment
from tests import factories
from tests.attendance.test_report_file import japanese_report
from tests.browser import AXE
from tests.browser import axe_violations as _axe

pytestmark = pytest.mark.browser

START = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)  # 14:00 Japan time


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}


@pytest.mark.browser_context_args(bypass_csp=True, viewport={"width": 1280, "height": 900})
def test_upload_resolve_and_confirm_in_the_browser(live_server, page, db):
    if not AXE.exists():
        pytest.skip("axe-core is not installed in tests/node (npm install)")
    trainer = factories.make_user("trainer", "130001", name="講師 出席")
    session = factories.make_session(factories.make_course(title="防災の基礎（出席レポート）", owner_id=trainer.id),
                                     starts_at=START, ends_at=START + timedelta(minutes=90))
    learners = [factories.make_user("learner", code, name=name)
                for code, name in (("131016", "佐藤 花子"), ("131024", "渡辺 健"))]
    for learner in learners:
        enrollment = Enrollment(session_id=session.id, staff_member_id=learner.staff_member.id,
                                municipality_id=learner.municipality_id, status=CONFIRMED)
        db.session.add(enrollment)
        session.confirmed_count += 1
        db.session.flush()
        enrollment_status_changed.send(enrollment, old_status=None, new_status=CONFIRMED, actor=None, notice=None,
                                       position=None)
    db.session.commit()
    report = japanese_report([
        ("佐藤 花子", "2026/12/1 14:00:00", "2026/12/1 15:30:00", "1 時間 30 分", learners[0].email),
        ("ワタナベ ケン（自宅PC）", "2026/12/1 14:02:00", "2026/12/1 15:28:00", "1 時間 26 分", "ken@home.example"),
    ])
    page.context.add_cookies([{"name": live_server.app.config["SESSION_COOKIE_NAME"],
                               "value": factories.session_cookie(live_server.app, trainer), "url": live_server.url}])

    page.goto(f"{live_server.url}/teams/sessions/{session.id}")
    page.get_by_role("link", name="Teams の出席者レポートを取り込む").click()
    assert _axe(page) == []
    page.get_by_label("出席者レポートのファイル（.csv）").set_input_files(
        files=[{"name": "会議の出席者レポート.csv", "mimeType": "text/csv", "buffer": report}])
    page.get_by_role("button", name="読み込む").click()
    expect(page.get_by_role("heading", name="出席者レポートの確認")).to_be_visible()
    assert _axe(page) == []
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # no sideways scrolling
    expect(page.get_by_text("未照合")).to_have_count(1)
    page.get_by_label("ワタナベ ケン（自宅PC） を照合する受講者").select_option(str(learners[1].staff_member.id))
    page.get_by_role("button", name="出欠を記録する").click()
    expect(page.locator(".flash")).to_contain_text("出席者レポートから 2 名の出欠を記録しました")

    db.session.rollback()  # a fresh transaction: see what the server committed
    rows = {a.staff_member_id: a for a in db.session.scalars(select(Attendance).where(Attendance.session_id == session.id))}
    assert rows[learners[0].staff_member.id].attended and rows[learners[0].staff_member.id].attended_pct == 100
    assert rows[learners[1].staff_member.id].attended and rows[learners[1].staff_member.id].attended_seconds == 86 * 60
