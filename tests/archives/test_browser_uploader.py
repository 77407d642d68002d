"""In real Chromium, the uploader's edges: a refused file is an alert that takes the focus; a
different file chosen after 一時停止 is uploaded itself (not the paused one resumed); focus
follows the button that acts next, and a pause is said."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lms.archives.models import Archive, ArchiveFile, UploadSession
from tests import factories
from tests.archives.test_browser import _sign_in, _wait_for
from tests.conftest import ROOT

pytestmark = pytest.mark.browser

TINY = ROOT / "tests" / "archives" / "data"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}  # the browser sends real tokens


@pytest.fixture
def archive_page(live_server, page, make_user):
    trainer = make_user("trainer", "130001", name="講師 三郎", is_demo=True)
    course = factories.make_course(title="情報セキュリティ研修", eligible=["131016"], owner_id=trainer.id)
    archive = Archive(course_id=course.id, title="第3回 録画", description="", created_by_id=trainer.id)
    factories.db.session.add(archive)
    factories.db.session.commit()
    _sign_in(page, live_server.url, trainer)
    page.goto(f"{live_server.url}/archives/manage/{archive.id}")
    return page, archive


def test_a_refused_upload_is_an_alert_that_takes_the_focus(archive_page, tmp_path):
    page, _archive = archive_page
    text = tmp_path / "メモ.txt"
    text.write_text("ただのテキスト", encoding="utf-8")
    page.set_input_files("#upload-file", str(text))
    page.get_by_role("button", name="アップロード", exact=True).click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("アップロードできませんでした", timeout=15_000)
    expect(alert).to_contain_text("形式には対応していません")
    expect(alert).to_be_focused()
    expect(page.locator("#upload-status")).to_have_text("")


def test_a_different_file_chosen_after_pausing_is_uploaded_itself(archive_page):
    page, archive = archive_page
    refused_patches = []

    def refuse_patches(route):
        if route.request.method == "PATCH":
            refused_patches.append(route.request.url)
            route.abort("connectionreset")  # retried by tus-js-client after a delay
        else:
            route.continue_()

    page.route("**/archives/uploads/**", refuse_patches)
    page.set_input_files("#upload-file", str(TINY / "tiny.mp4"))
    page.get_by_role("button", name="アップロード", exact=True).click()
    _wait_for(page, "!document.getElementById('upload-pause').hidden")
    expect(page.get_by_role("button", name="一時停止")).to_be_focused()  # the pressed button is disabled
    _wait_for(page, "document.getElementById('upload-status').textContent.includes('通信が途切れました')")
    page.get_by_role("button", name="一時停止").click()
    expect(page.locator("#upload-status")).to_contain_text("一時停止しました")
    expect(page.get_by_role("button", name="アップロード", exact=True)).to_be_focused()
    page.unroute("**/archives/uploads/**")
    assert refused_patches

    page.set_input_files("#upload-file", str(TINY / "tiny.webm"))
    page.get_by_role("button", name="アップロード", exact=True).click()
    expect(page.locator("#upload-status")).to_contain_text("検証しました", timeout=30_000)
    page.wait_for_load_state("load")
    factories.db.session.rollback()
    files = factories.db.session.scalars(select(ArchiveFile).where(ArchiveFile.archive_id == archive.id)).all()
    assert [f.filename for f in files] == ["tiny.webm"]
    paused = factories.db.session.scalars(select(UploadSession).where(UploadSession.archive_id == archive.id,
                                                                      UploadSession.filename == "tiny.mp4")).all()
    assert [u.status for u in paused] == ["uploading"]  # kept as 中断中: choosing it again resumes it
