"""The training year in real Chromium: a plan published, two offices answer (one through the
Excel round trip), the allocation is adjusted and published as quotas, the nomination
deadline releases the unused seats to the other municipality's waitlisted staff, and each
municipality's fee statement matches its participants and late cancellations."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect
from sqlalchemy import select, update

from lms.common.timeutil import fiscal_year_of, to_tokyo, utcnow
from lms.courses.models import SessionQuota, TrainingSession
from lms.enrollment import services as enrollment
from lms.enrollment.models import CONFIRMED, WAITLISTED, Enrollment
from lms.extensions import db
from lms.planning.models import FeeStatement, TrainingPlan
from lms.planning.tasks import release_due_quotas

pytestmark = pytest.mark.browser

A, B = "131016", "131024"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}  # the browser posts real forms


def _sign_in(page, base_url: str, user) -> None:
    page.context.clear_cookies()
    page.goto(f"{base_url}/auth/demo")
    page.locator(f"#demo-user-{user.id}").check()
    page.get_by_role("button", name="サインイン", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("サインインしました")


def test_a_training_year_from_plan_to_statements(live_server, page, make_course, make_session, make_user):
    course = make_course(title="新任職員研修（計画）")
    session = make_session(course, starts_in=timedelta(days=30), capacity=4)
    platform = make_user("platform_admin", "130001", name="計画 担当", is_demo=True)
    office_a = make_user("municipal_admin", A, name="千代田 研修担当", is_demo=True)
    office_b = make_user("municipal_admin", B, name="中央 研修担当", is_demo=True)
    base = live_server.url

    # The platform admin drafts the year and publishes it with a deadline.
    _sign_in(page, base, platform)
    page.goto(f"{base}/plans/")
    page.get_by_label("年度（西暦）").fill(str(fiscal_year_of(session.starts_at)))
    page.get_by_label("研修回ごと", exact=False).check()
    page.get_by_role("button", name="作成する").click()
    expect(page.locator(".flash")).to_contain_text("計画を作成しました")
    deadline = to_tokyo(utcnow() + timedelta(days=5)).strftime("%Y-%m-%dT%H:%M")
    page.locator("#survey_deadline").fill(deadline)
    page.get_by_role("button", name="公開する").click()
    expect(page.locator(".flash")).to_contain_text("計画を公開しました")
    db.session.rollback()  # a fresh snapshot: the server committed on its own connection
    plan = db.session.scalar(select(TrainingPlan))

    # 千代田区 answers in the form.
    _sign_in(page, base, office_a)
    page.goto(f"{base}/plans/{plan.id}/survey")
    page.locator(f"#requested-{session.id}").fill("3")
    page.locator(f"#priority-{session.id}").select_option("1")
    page.get_by_role("button", name="回答を保存する").click()
    expect(page.locator(".flash")).to_contain_text("予定調査の回答を保存しました")

    # 中央区 downloads its sheet, fills it in Excel's place, and uploads it.
    _sign_in(page, base, office_b)
    page.goto(f"{base}/plans/{plan.id}/survey")
    with page.expect_download() as download:
        page.get_by_role("link", name="予定調査のファイル（Excel）をダウンロード").click()
    assert download.value.suggested_filename.endswith(".xlsx")
    workbook = load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))
    sheet = workbook.worksheets[0]
    header = next(row for row in sheet.iter_rows() if row[0].value == "研修回ID")
    columns = {cell.value: cell.column - 1 for cell in header}
    for row in sheet.iter_rows(min_row=header[0].row + 1):
        if row[0].value == session.id:
            row[columns["希望人数"]].value = 3
    buffer = io.BytesIO()
    workbook.save(buffer)
    page.locator("#sheet").set_input_files(files=[{"name": "survey.xlsx", "buffer": buffer.getvalue(),
                                                   "mimeType": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}])
    page.get_by_role("button", name="アップロードして保存する").click()
    expect(page.locator(".flash")).to_contain_text("Excel から")

    # The platform admin allocates (4 seats, 3 + 3 asked: 2 each), moves one seat by hand, publishes.
    _sign_in(page, base, platform)
    page.goto(f"{base}/plans/{plan.id}")
    page.get_by_role("button", name="割当を計算する").click()
    page.goto(f"{base}/plans/{plan.id}/sessions/{session.id}")
    expect(page.locator("table")).to_contain_text("保障 1 ・ 按分 1 → 1 ・ 端数 +0")
    row_b = page.locator("tr").filter(has_text="中央区")
    row_b.locator("input[name$='-seats']").fill("1")
    row_b.locator("input[name$='-reason']").fill("会場の都合")
    row_b.get_by_role("button", name="調整する").click()
    expect(page.locator(".flash")).to_contain_text("1 人にしました")
    page.get_by_role("button", name="割当人数として公開する").click()
    expect(page.locator(".flash")).to_contain_text("割当人数として公開しました")
    db.session.rollback()
    quotas = {q.municipality.code: q.seats for q in db.session.scalars(
        select(SessionQuota).where(SessionQuota.session_id == session.id))}
    assert quotas == {A: 2, B: 1}

    # Staff enroll: 中央区 fills its one seat and two wait (千代田区 holds two seats);
    # 千代田区's one person is withdrawn by the office after the cancel deadline.
    b_people = [make_user("learner", B) for _ in range(3)]
    b_enrollments = [enrollment.enroll(session.id, u.staff_member.id, u) for u in b_people]
    assert [e.status for e in b_enrollments] == [CONFIRMED, WAITLISTED, WAITLISTED]
    a_person = make_user("learner", A)
    late = enrollment.enroll(session.id, a_person.staff_member.id, a_person)
    db.session.execute(update(TrainingSession).where(TrainingSession.id == session.id)
                       .values(cancel_deadline=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    enrollment.cancel_enrollment(late.id, office_a, "急な公務")

    # The nomination deadline passes: 千代田区's unused seats go to 中央区's waiting staff.
    db.session.execute(update(TrainingSession).where(TrainingSession.id == session.id)
                       .values(enroll_closes_at=utcnow() - timedelta(minutes=1)))
    db.session.commit()
    assert release_due_quotas() == 1
    db.session.expire_all()
    assert [db.session.get(Enrollment, e.id).status for e in b_enrollments] == [CONFIRMED, CONFIRMED, CONFIRMED]

    # Fees: 5,000 yen a participant, late cancellations charged; a statement for each.
    page.goto(f"{base}/plans/{plan.id}/fees")
    page.get_by_label(course.title).fill("5000")
    page.get_by_role("button", name="保存する").click()
    expect(page.locator(".flash")).to_contain_text("負担金の設定を保存しました")
    for code, name in ((A, "千代田区"), (B, "中央区")):
        page.goto(f"{base}/plans/{plan.id}/fees")
        page.locator("tr").filter(has_text=name).get_by_role("button", name="請求書を発行").click()
        expect(page.locator(".flash")).to_contain_text("請求書（第1版）を発行しました")
    db.session.rollback()
    totals = {s.municipality.code: s.total_yen for s in db.session.scalars(select(FeeStatement))}
    assert totals == {A: 5000, B: 15000}  # 千代田区: one late cancellation; 中央区: three participants
    expect(page.locator("h1")).to_contain_text("請求明細")
    expect(page.locator("table")).to_contain_text("5,000円")
