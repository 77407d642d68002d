"""The trainer's and admin's pages in a real browser: they render and pass axe (WCAG 2.1 AA)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from lms.attendance import services as attendance_services
from lms.attendance.models import AttendanceRecord
from lms.common.signals import enrollment_status_changed, session_created
from lms.enrollment.models import CONFIRMED, Enrollment
from lms.teams.models import GraphOperation
from tests.browser import AXE
from tests.browser import axe_violations as _axe
from tests.browser import sign_in_browser as _sign_in

pytestmark = pytest.mark.browser  # (run with the other real-browser tests, not beside the database runs)


@pytest.mark.browser_context_args(bypass_csp=True)
def test_teams_and_attendance_pages_pass_axe(graph_app, graph_server, live_server, page, db, make_course, make_session,
                                             make_user):
    if not AXE.exists():
        pytest.skip("axe-core is not installed in tests/node (npm install)")
    trainer = make_user("trainer")
    admin = make_user("platform_admin")
    session = make_session(make_course(owner_id=trainer.id), starts_in=-timedelta(minutes=20), minutes=90,
                           delivery="hybrid", location="都庁第一本庁舎 32階", join_url="")
    learners = [make_user("learner", code) for code in ("131016", "131024")]
    for learner in learners:
        enrollment = Enrollment(session_id=session.id, staff_member_id=learner.staff_member.id,
                                municipality_id=learner.municipality_id, status=CONFIRMED)
        db.session.add(enrollment)
        session.confirmed_count += 1
        db.session.flush()
        enrollment_status_changed.send(enrollment, old_status=None, new_status=CONFIRMED, actor=None,
                                       notice="confirmed", position=None)
    session_created.send(session, actor=trainer, changes={})
    db.session.commit()
    db.session.add(AttendanceRecord(session_id=session.id, report_id="r", record_id="x", display_name="ゲスト",
                                    email="guest@example.com", total_seconds=600, raw={}))
    attendance_services.record_roll_call(session, {learners[0].staff_member.id}, trainer)
    db.session.commit()
    assert db.session.scalar(select(GraphOperation)).status == "done"

    context = page.context
    _sign_in(live_server.app, context, live_server.url, trainer)
    for path in (f"/teams/sessions/{session.id}", f"/attendance/sessions/{session.id}/roll-call",
                 f"/attendance/sessions/{session.id}/qr"):
        response = page.goto(live_server.url + path)
        assert response.status == 200, path
        assert _axe(page) == [], path
    toggle = page.locator("#qr-auto-refresh")  # on the QR page: auto-refresh can be paused (WCAG 2.2.1)
    assert toggle.get_attribute("aria-pressed") == "true"
    toggle.click()
    assert toggle.get_attribute("aria-pressed") == "false"
    page.goto(live_server.url + f"/teams/sessions/{session.id}")
    assert page.get_by_role("link", name="Teams 会議に参加").count() == 1
    assert page.get_by_role("table").count() >= 3, page.inner_text("main")

    context.clear_cookies()
    _sign_in(live_server.app, context, live_server.url, admin)
    response = page.goto(live_server.url + "/teams/status")
    assert response.status == 200
    assert _axe(page) == []
    assert page.get_by_text("会議の作成").count() >= 1


@pytest.mark.browser_context_args(bypass_csp=True)
def test_viva_learning_pages_pass_axe(graph_app, graph_server, live_server, page, db, make_course, make_user):
    if not AXE.exists():
        pytest.skip("axe-core is not installed in tests/node (npm install)")
    from lms.municipalities.models import TenantMapping
    from lms.teams.viva.models import VivaTenant
    from tests.factories import tenant_for

    admin = make_user("platform_admin")
    make_course(title="Viva Learning に送る研修")
    tenant_id = tenant_for("131016")
    db.session.add(VivaTenant(tenant_id=tenant_id, enabled=True, registration_id=graph_server.register_learning_provider(),
                              status="failed", last_error="HTTP 403: Forbidden"))
    db.session.commit()
    mapping_id = db.session.scalar(select(TenantMapping.id).where(TenantMapping.tenant_id == tenant_id))
    _sign_in(live_server.app, page.context, live_server.url, admin)
    for path in ("/teams/viva/", f"/teams/viva/tenants/{mapping_id}", f"/teams/viva/tenants/{mapping_id}/disable"):
        response = page.goto(live_server.url + path)
        assert response.status == 200, path
        assert _axe(page) == [], path
    page.goto(live_server.url + f"/teams/viva/tenants/{mapping_id}")
    page.get_by_label("学習プロバイダーの登録 ID（registrationId）").fill("")
    with page.expect_navigation():  # (the form posts; count on the page that answers, not before it)
        page.get_by_role("button", name="保存する").click()
    assert page.locator(".error-summary").count() == 1
    assert _axe(page) == []
