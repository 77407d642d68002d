"""The 研修担当 (municipal admin) in real Chromium: approve, reject, nominate, swap, roster
CSV import; every page passes axe (WCAG 2.1 AA)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lms.enrollment.models import CANCELLED, CONFIRMED, REJECTED, Enrollment
from lms.enrollment.services import enroll
from lms.notifications.models import OutboxMail
from lms.roster.models import StaffMember
from tests.browser import AXE
from tests.browser import axe_violations as _axe
from tests.browser import sign_in_browser as _sign_in

pytestmark = pytest.mark.browser



@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}  # the browser posts real forms


@pytest.mark.browser_context_args(bypass_csp=True)
def test_municipal_admin_works_through_the_pages(live_server, page, db, tmp_path, make_user, make_course,
                                                 make_session, make_staff):
    from tests.conftest import require

    require(AXE.exists(), "axe-core in tests/node (npm install)")
    course = make_course(title="Teams 活用研修", requires_approval=True)
    session = make_session(course, capacity=5, quotas={"131016": 2})
    asking, refused = make_user(name="申込 一郎"), make_user(name="申込 二郎")
    first = enroll(session.id, asking.staff_member.id, asking)
    second = enroll(session.id, refused.staff_member.id, refused)
    spare = make_staff("131016", full_name="交代 三郎", full_name_kana="コウタイ サブロウ", employee_number="S003")
    admin = make_user("municipal_admin", "131016", name="研修 担当", with_staff=False)
    _sign_in(live_server.app, page.context, live_server.url, admin)

    page.goto(f"{live_server.url}/municipal")
    expect(page.get_by_role("heading", level=1)).to_contain_text("研修担当")
    assert _axe(page) == []
    row = page.locator("tr").filter(has_text="申込 一郎")
    row.get_by_role("button", name="承認する").click()
    expect(page.locator(".flash")).to_contain_text("申込 一郎 さんの申込を承認しました。")
    row = page.locator("tr").filter(has_text="申込 二郎")
    row.get_by_label("承認しない・差し戻す理由").fill("今年度は受講済みのため")
    row.get_by_role("button", name="承認しない").click()
    expect(page.locator(".flash")).to_contain_text("申込 二郎 さんの申込を承認しませんでした。本人に理由を通知します")

    # Swap the approved nominee for another staff member, keeping the seat.
    page.goto(f"{live_server.url}/municipal/sessions/{session.id}")
    assert _axe(page) == []
    row = page.locator("tr").filter(has_text="申込 一郎")
    row.get_by_label("差し替え先を氏名・カナ・職員番号で検索").fill("S003")
    row.get_by_role("button", name="検索").click()
    row = page.locator("tr").filter(has_text="申込 一郎")
    row.get_by_label("交代 三郎", exact=False).check()
    row.get_by_label("差し替えの理由").fill("担当業務の変更")
    assert _axe(page) == []
    row.get_by_role("button", name="差し替える").click()
    expect(page.locator(".flash")).to_contain_text("申込 一郎 さんを 交代 三郎 さんに差し替えました。")

    # Nominate from a search.
    page.get_by_label("氏名・カナ・職員番号で検索", exact=True).fill("申込 二郎")
    page.get_by_role("button", name="検索", exact=True).click()
    page.locator(".result-list li").filter(has_text="申込 二郎").get_by_role("button", name="推薦する").click()
    expect(page.locator(".flash")).to_contain_text("申込 二郎 さんの受講が確定しました。")

    # Roster CSV import (Shift_JIS, as Excel writes it).
    csv_path = tmp_path / "meibo.csv"
    csv_path.write_bytes("職員番号,氏名,氏名カナ,所属,職名,サインイン名\r\nB100,名簿 太郎,メイボ タロウ,総務課,主事,meibo@city.example.lg.jp\r\n".encode("cp932"))
    page.goto(f"{live_server.url}/roster/import")
    assert _axe(page) == []
    page.get_by_label("名簿のファイル（CSV または Excel）").set_input_files(str(csv_path))
    page.get_by_role("button", name="取り込む").click()
    expect(page.get_by_role("status").filter(has_text="名簿に反映しました")).to_be_visible()
    expect(page.locator("table")).to_contain_text("名簿 太郎")
    assert _axe(page) == []
    page.goto(f"{live_server.url}/roster")
    expect(page.locator("table")).to_contain_text("名簿 太郎")
    assert _axe(page) == []
    page.get_by_role("link", name="名簿 太郎").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("名簿 太郎")
    assert _axe(page) == []
    page.get_by_label("異動後の所属").fill("財政課")
    page.get_by_role("button", name="異動を記録する").click()
    expect(page.locator(".flash")).to_contain_text("人事異動を記録しました。")
    expect(page.locator("table").first).to_contain_text("財政課")
    page.get_by_role("link", name="名簿を修正する").click()
    assert _axe(page) == []
    page.goto(f"{live_server.url}/roster/new")
    page.get_by_role("button", name="保存する").click()
    expect(page.locator(".error-summary")).to_be_visible()
    assert _axe(page) == []
    page.goto(f"{live_server.url}/municipal/nominations/upload")
    assert _axe(page) == []
    page.goto(f"{live_server.url}/admin/mail")
    expect(page.locator("table")).to_contain_text("交代 三郎")
    assert _axe(page) == []
    page.locator("table a").first.click()
    expect(page.locator("pre").first).to_contain_text("様")
    assert _axe(page) == []

    db.session.rollback()
    statuses = {(e.staff_member.full_name, e.status) for e in db.session.scalars(select(Enrollment))}
    assert statuses == {("申込 一郎", CANCELLED), ("申込 二郎", REJECTED), ("申込 二郎", CONFIRMED), ("交代 三郎", CONFIRMED)}
    assert db.session.get(Enrollment, second.id).status == REJECTED
    assert db.session.get(Enrollment, first.id).status == CANCELLED
    assert db.session.scalar(select(StaffMember).where(StaffMember.employee_number == "B100")) is not None
    assert db.session.scalar(select(OutboxMail).where(OutboxMail.kind == "rejected")) is not None
    assert spare.id in {e.staff_member_id for e in db.session.scalars(select(Enrollment).where(Enrollment.status == CONFIRMED))}
