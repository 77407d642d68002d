"""In real Chromium: a municipal admin downloads the dashboard's Excel file; a learner
downloads a certificate whose text names them and the course."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import expect

from tests import factories
from tests.conftest import require

pytestmark = pytest.mark.browser


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}  # the browser posts real forms


def _sign_in(page, base_url: str, user) -> None:
    page.goto(f"{base_url}/auth/demo")
    page.locator(f"#demo-user-{user.id}").check()
    page.get_by_role("button", name="サインイン", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("サインインしました")


def test_municipal_admin_downloads_dashboard_excel(live_server, page, known_data, tmp_path):
    d = known_data
    admin = factories.make_user("municipal_admin", "131016", name="研修 担当", is_demo=True)
    _sign_in(page, live_server.url, admin)
    page.get_by_role("link", name="修了状況").first.click()
    expect(page.get_by_role("heading", name="研修別の状況")).to_be_visible()
    expect(page.locator("svg[role=img]").first).to_be_visible()
    with page.expect_download() as info:
        page.locator("a[href*='/completion/export/courses.xlsx']").click()
    download = info.value
    assert download.suggested_filename.endswith(".xlsx")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    ws = load_workbook(path).active
    rows = list(ws.iter_rows(values_only=True))
    assert ws.freeze_panes == "A7"
    assert rows[0][0] == "修了状況：研修別" and rows[1][0] == "区市町村：千代田区"
    assert rows[5][0] == "研修" and rows[5][1] == "申込者数"
    by_title = {r[0]: r for r in rows[6:]}
    assert by_title["Teams 会議の基本"][1:4] == (3, 1, 1)
    assert d["b"].title in by_title  # the formula-looking title arrives as text: a string cell
    assert all(cell.data_type != "f" for row in ws.iter_rows() for cell in row)


def test_learner_downloads_certificate_pdf(live_server, page, known_data, tmp_path, db):
    require(shutil.which("pdftotext") is not None, "pdftotext (apt-get install poppler-utils)")
    learner = known_data["learner"]
    learner.is_demo = True
    db.session.commit()
    _sign_in(page, live_server.url, learner)
    page.get_by_role("link", name="受講履歴").first.click()
    with page.expect_download() as info:
        page.get_by_role("link", name=re.compile(r"修了証（PDF）.*Teams 会議の基本")).click()
    path = tmp_path / "certificate.pdf"
    info.value.save_as(path)
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "佐藤 花子" in text and "Teams 会議の基本" in text


AXE = Path(__file__).resolve().parents[1] / "node" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.mark.browser_context_args(bypass_csp=True)
def test_completion_pages_pass_axe(live_server, page, known_data, db):
    require(AXE.exists(), "axe-core (npm install in tests/node)")
    from sqlalchemy import select

    from lms.completion.models import Completion

    d = known_data
    admin = factories.make_user("municipal_admin", "131016", name="研修 担当", is_demo=True)
    serial = db.session.scalar(select(Completion.certificate_serial).where(
        Completion.staff_member_id == d["staff"][0].id))
    _sign_in(page, live_server.url, admin)
    for path in ("/completion/dashboard", f"/completion/assignments/{d['mandatory'][0].id}/missing",
                 "/completion/records", "/completion/assignments/new", f"/certificates/verify/{serial}"):
        page.goto(live_server.url + path)
        page.add_script_tag(path=str(AXE))
        result = page.evaluate(
            "o => axe.run(document, o)",
            {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}},
        )
        assert result["violations"] == [], (path, [(v["id"], v["nodes"][0]["html"]) for v in result["violations"]])
