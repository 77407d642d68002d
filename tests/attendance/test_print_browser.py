"""On paper, as Chromium prints: the QR poster fills one A4 page, the 出席簿 lists every
participant under a 署名 header on every page, and no page prints the site's controls."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta

import pytest
from playwright.sync_api import expect

from lms.common.signals import enrollment_status_changed
from lms.enrollment.models import CONFIRMED, Enrollment
from tests import factories
from tests.conftest import require

pytestmark = pytest.mark.browser

KANA = "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワ"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}


@pytest.fixture
def onsite(db):
    require(shutil.which("pdfinfo") is not None and shutil.which("pdftotext") is not None,
            "pdfinfo and pdftotext (apt-get install poppler-utils)")
    trainer = factories.make_user("trainer", "130001", name="講師 印刷", is_demo=True)
    course = factories.make_course(title="防災の基礎（印刷の確認）", owner_id=trainer.id)
    session = factories.make_session(course, starts_in=-timedelta(minutes=10), minutes=120, capacity=50, delivery="onsite",
                                     location="都庁第一本庁舎 32階 特別会議室", join_url="")
    names = []
    # 40 participants: more than one sheet of paper; their kana order is the order of KANA.
    for n, kana in enumerate(KANA[:40]):
        name = f"受講 {n + 1:02d}号"
        member = factories.make_staff("131016" if n % 2 else "132012", full_name=name, full_name_kana=f"{kana} タロウ",
                                      department="総務部 総務課", commit=False)
        row = Enrollment(session_id=session.id, staff_member_id=member.id,
                         municipality_id=member.municipality_id, status=CONFIRMED, arrival_seq=n + 1)
        db.session.add(row)
        db.session.flush()
        # The event the enrollment area publishes: the summaries follow it.
        enrollment_status_changed.send(row, old_status=None, new_status=CONFIRMED, actor=None, notice=None,
                                       position=None)
        names.append(name)
    session.confirmed_count = len(names)
    db.session.commit()
    return {"trainer": trainer, "session": session, "names": names}


def _sign_in(page, base_url: str, user) -> None:
    page.goto(f"{base_url}/auth/demo")
    page.locator(f"#demo-user-{user.id}").check()
    page.get_by_role("button", name="サインイン", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("サインインしました")


def _print(page, tmp_path, name: str) -> tuple[dict[str, str], list[str]]:
    """The page printed by Chromium (its print stylesheet, its @page size): pdfinfo's
    fields and the text of each printed page."""
    path = tmp_path / f"{name}.pdf"
    page.pdf(path=str(path), prefer_css_page_size=True, print_background=False)
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    pages = []
    for number in range(1, int(fields["Pages"]) + 1):
        pages.append(subprocess.run(["pdftotext", "-f", str(number), "-l", str(number), "-layout", str(path), "-"],
                                    capture_output=True, text=True, check=True).stdout)
    return fields, pages


def _is_a4(fields: dict[str, str]) -> bool:
    width, height = (float(x) for x in re.findall(r"[\d.]+", fields["Page size"])[:2])
    return abs(width - 595.28) < 1 and abs(height - 841.89) < 1


def test_qr_poster_and_qr_page_each_print_on_one_a4_page(live_server, page, onsite, tmp_path):
    session = onsite["session"]
    _sign_in(page, live_server.url, onsite["trainer"])
    page.goto(f"{live_server.url}/attendance/sessions/{session.id}/qr/poster")
    expect(page.get_by_role("button", name="印刷する（A4 縦 1 枚）")).to_be_visible()
    fields, pages = _print(page, tmp_path, "poster")
    assert fields["Pages"] == "1" and _is_a4(fields), fields
    text = pages[0]
    assert "防災の基礎（印刷の確認）" in text and "特別会議室" in text
    assert "スマートフォンのカメラ" in text and "受付できる時間" in text
    assert "印刷する" not in text and "写真で共有" not in text  # the screen-only controls and notes
    assert "アクセシビリティ方針" not in text and "サインアウト" not in text
    # The QR code itself is printed large: at least 100 mm wide.
    page.emulate_media(media="print")
    box = page.locator(".poster-qr svg").bounding_box()
    assert box and box["width"] >= 100 / 25.4 * 96, box  # CSS px at 96 dpi

    page.emulate_media(media="null")  # back to no emulation: page.pdf() prints with print media
    page.goto(f"{live_server.url}/attendance/sessions/{session.id}/qr")
    fields, pages = _print(page, tmp_path, "qr")
    assert fields["Pages"] == "1" and _is_a4(fields), fields
    assert "約 5 分で使えなくなります" in pages[0]  # the printed screen code says it will not last
    # On a phone held by the trainer (320 CSS px): the code shrinks, the page does not scroll sideways.
    page.set_viewport_size({"width": 320, "height": 800})
    page.goto(f"{live_server.url}/attendance/sessions/{session.id}/qr")
    assert page.evaluate("document.documentElement.scrollWidth") <= 320


def test_sign_in_sheet_prints_every_participant_under_a_signature_header(live_server, page, onsite, tmp_path):
    session = onsite["session"]
    _sign_in(page, live_server.url, onsite["trainer"])
    page.goto(f"{live_server.url}/teams/sessions/{session.id}")
    page.get_by_role("link", name="出席簿を印刷").click()
    expect(page.get_by_role("heading", name="出席簿")).to_be_visible()
    fields, pages = _print(page, tmp_path, "sign-in-sheet")
    assert int(fields["Pages"]) >= 2 and _is_a4(fields), fields
    for number, text in enumerate(pages, start=1):
        # The table's header repeats on each sheet of paper.
        assert re.search(r"所属\s+氏名\s+署名", text), (number, text[:500])
        assert "研修回のページへ戻る" not in text and "アクセシビリティ方針" not in text
    whole = "\n".join(pages)
    assert "都庁第一本庁舎 32階 特別会議室" in whole
    # Every participant exactly once (no row split across two sheets), in 五十音順.
    positions = [whole.find(name) for name in onsite["names"]]
    assert all(whole.count(name) == 1 for name in onsite["names"])
    assert positions == sorted(positions)


def test_participant_list_and_an_ordinary_page_print_without_controls(live_server, page, onsite, tmp_path):
    session = onsite["session"]
    _sign_in(page, live_server.url, onsite["trainer"])
    page.goto(f"{live_server.url}/attendance/sessions/{session.id}/participants")
    fields, pages = _print(page, tmp_path, "participants")
    whole = "\n".join(pages)
    assert _is_a4(fields) and re.search(r"氏名\s+区市町村\s+所属\s+職名\s+申込状況", pages[0])
    assert all(name in whole for name in onsite["names"]) and "受講確定" in whole
    # Any page: the header's menu, the language switch and the footer's links stay on screen.
    page.goto(f"{live_server.url}/teams/sessions/{session.id}")
    _fields, pages = _print(page, tmp_path, "session")
    whole = "\n".join(pages)
    assert "防災の基礎（印刷の確認）" in whole and "受講 01号" in whole
    for screen_only in ("研修の管理", "English", "サインアウト", "アクセシビリティ方針", "修正する"):
        assert screen_only not in whole, screen_only
