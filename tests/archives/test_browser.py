"""In real Chromium: a trainer uploads a video and captions through the page and publishes; a learner
of an eligible municipality plays, seeks and has the progress stored; another municipality is refused."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect
from sqlalchemy import delete, select

from lms.archives.models import Archive, ArchiveFile, ViewingProgress
from lms.auth.models import UserSession
from lms.common.database import begin_write
from tests import factories
from tests.archives.conftest import VTT_TEXT
from tests.conftest import ROOT

pytestmark = pytest.mark.browser

DEMO_VIDEO = ROOT / "data" / "demo" / "archive-demo.webm"  # 30 s, VP9 + Opus


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True}  # the browser sends real tokens


def _sign_in(page, base_url: str, user) -> None:
    page.goto(f"{base_url}/auth/demo")
    page.locator(f"#demo-user-{user.id}").check()
    page.get_by_role("button", name="サインイン", exact=True).click()
    expect(page.locator(".flash")).to_contain_text("サインインしました")


def _wait_for(page, expression: str, timeout: float = 15) -> None:
    """Poll with page.evaluate (wait_for_function compiles strings, which the CSP forbids)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(f"() => Boolean({expression})"):
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {expression}")


def _upload(page, path) -> None:
    page.set_input_files("#upload-file", str(path))
    page.get_by_role("button", name="アップロード", exact=True).click()
    expect(page.locator("#upload-status")).to_contain_text("検証しました", timeout=30_000)
    page.wait_for_load_state("load")


def test_upload_publish_play_seek_and_refuse(live_server, browser, page, tmp_path, make_user):
    base = live_server.url
    trainer = make_user("trainer", "130001", name="講師 一郎", is_demo=True)
    course = factories.make_course(title="Teams 活用研修", eligible=["131016"], owner_id=trainer.id)
    learner = make_user("learner", "131016", name="千代田 花子", is_demo=True)
    outsider = make_user("learner", "131032", name="港 次郎", is_demo=True)
    page.on("dialog", lambda dialog: dialog.accept())

    # --- the trainer creates the archive, uploads video and captions, publishes
    _sign_in(page, base, trainer)
    page.goto(f"{base}/archives/manage")
    page.get_by_role("link", name="アーカイブを作成").click()
    page.locator("#course_id").select_option(str(course.id))
    page.locator("#title").fill("第1回 録画")
    page.get_by_role("button", name="保存").click()
    expect(page.locator(".flash")).to_contain_text("アーカイブを作成しました")
    expect(page.locator("progress#upload-progress")).to_have_count(1)
    expect(page.get_by_text("進捗")).to_have_count(1)  # the progress bar has a visible label

    _upload(page, DEMO_VIDEO)
    expect(page.locator("table")).to_contain_text("archive-demo.webm")
    captions = tmp_path / "字幕.vtt"
    captions.write_text(VTT_TEXT.replace("00:00:04.000 --> 00:00:06.000", "00:00:14.000 --> 00:00:16.000"),
                        encoding="utf-8")
    _upload(page, captions)
    expect(page.locator("table")).to_contain_text("字幕.vtt")
    page.get_by_role("button", name="公開する").click()
    expect(page.locator(".flash")).to_contain_text("アーカイブを公開しました")

    factories.db.session.rollback()
    archive = factories.db.session.scalar(select(Archive))
    assert archive.status == "published"
    video = factories.db.session.scalar(select(ArchiveFile).where(ArchiveFile.kind == "video"))
    assert video.status == "ready" and video.duration_seconds == 30

    # --- a learner of an eligible municipality plays, seeks through a chapter link, pauses
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
    viewer = context.new_page()
    try:
        _sign_in(viewer, base, learner)
        viewer.goto(f"{base}/archives/")
        viewer.get_by_role("link", name="第1回 録画").click()
        player = viewer.locator("video#player")
        expect(player).to_have_count(1)
        expect(viewer.locator("track[kind=captions][srclang=ja]")).to_have_count(1)
        _wait_for(viewer, "document.getElementById('player').readyState >= 1")
        viewer.evaluate("() => { const v = document.getElementById('player'); v.muted = true; return v.play(); }")
        _wait_for(viewer, "document.getElementById('player').currentTime >= 3.5")
        viewer.locator(".chapters a[data-seek='14']").click()
        _wait_for(viewer, "document.getElementById('player').currentTime >= 17")
        viewer.evaluate("() => document.getElementById('player').pause()")
        expect(viewer.locator("#viewing-progress")).to_contain_text("視聴済み", timeout=10_000)
        deadline = time.monotonic() + 10
        row = None
        while time.monotonic() < deadline:
            factories.db.session.rollback()
            row = factories.db.session.scalar(select(ViewingProgress))
            if row is not None and row.watched_seconds >= 5:
                break
            time.sleep(0.3)
        assert row is not None and row.staff_member_id == learner.staff_member.id
        # Two watched stretches (0–4 s and 14–17 s); the skipped part does not count.
        assert 5 <= row.watched_seconds <= 12, row.intervals
        assert any(start >= 13 for start, _end in row.intervals), row.intervals
        assert not any(start < 10 < end for start, end in row.intervals), row.intervals
        assert row.last_position >= 16

        # --- the session ends elsewhere (「すべての端末からサインアウト」 on another device): the
        # next report is answered 401, and the player stops and says so rather than play on uncounted
        # (a fresh transaction begun as a writer: the server's progress writes hold SQLite's lock
        # now and then, and a reader turning writer would fail at once instead of waiting its turn)
        factories.db.session.rollback()
        begin_write()
        factories.db.session.execute(delete(UserSession).where(UserSession.user_id == learner.id))
        factories.db.session.commit()
        viewer.evaluate("() => document.getElementById('player').play()")
        expect(viewer.locator("#viewing-live")).to_contain_text("サインインの有効期限が切れたため、再生を止めました",
                                                                 timeout=10_000)
        _wait_for(viewer, "document.getElementById('player').paused")
    finally:
        context.close()

    # --- a learner of another municipality is refused, page and file alike, as if there were none
    other = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo")
    refused = other.new_page()
    try:
        _sign_in(refused, base, outsider)
        response = refused.goto(f"{base}/archives/{archive.id}")
        assert response.status == 404
        expect(refused.locator("main")).to_contain_text("アーカイブが見つかりません")
        file_response = refused.request.get(f"{base}/archives/{archive.id}/files/{video.id}/{video.filename}",
                                            headers={"Range": "bytes=0-99"})
        assert file_response.status == 404
    finally:
        other.close()


AXE = ROOT / "tests" / "node" / "node_modules" / "axe-core" / "axe.min.js"
WCAG = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]}}


def _axe(page) -> list:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("o => axe.run(document, o)", WCAG)
    return [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]


def test_upload_resumes_after_a_dropped_connection_and_pages_pass_axe(live_server, browser, make_user):
    from tests.conftest import require

    require(AXE.exists(), "axe-core (cd tests/node && npm install)")
    base = live_server.url
    trainer = make_user("trainer", "130001", name="講師 二郎", is_demo=True)
    course = factories.make_course(title="Microsoft 365 基礎", eligible=["131016"], owner_id=trainer.id)
    archive = Archive(course_id=course.id, title="第2回 録画", description="説明", created_by_id=trainer.id)
    factories.db.session.add(archive)
    factories.db.session.commit()
    # axe is injected as a script: this context bypasses the CSP (the other test keeps it).
    context = browser.new_context(locale="ja-JP", timezone_id="Asia/Tokyo", bypass_csp=True)
    page = context.new_page()
    try:
        _sign_in(page, base, trainer)
        page.goto(f"{base}/archives/manage/{archive.id}")
        assert _axe(page) == []
        dropped = []

        def drop_first_patch(route):
            if route.request.method == "PATCH" and not dropped:
                dropped.append(route.request.url)
                route.abort("connectionreset")
            else:
                route.continue_()

        page.route("**/archives/uploads/**", drop_first_patch)
        _upload(page, ROOT / "tests" / "archives" / "data" / "tiny.mp4")
        assert dropped, "the first PATCH was not intercepted"
        factories.db.session.rollback()
        files = factories.db.session.scalars(select(ArchiveFile).where(ArchiveFile.archive_id == archive.id)).all()
        assert [(f.kind, f.status, f.content_type) for f in files] == [("video", "ready", "video/mp4")]
        page.unroute("**/archives/uploads/**")
        page.get_by_role("button", name="公開する").click()
        expect(page.locator(".flash")).to_contain_text("アーカイブを公開しました")
        page.goto(f"{base}/archives/{archive.id}")
        expect(page.locator("video#player")).to_have_count(1)
        assert _axe(page) == []
        page.goto(f"{base}/archives/manage/new")
        assert _axe(page) == []
        page.goto(f"{base}/archives/search?q=録画")
        assert _axe(page) == []
    finally:
        context.close()


@pytest.mark.parametrize("width", [1280, 390])
def test_archive_form_lists_only_the_chosen_course_s_sessions(live_server, browser, make_user, width):
    trainer = make_user("trainer", "130001", name="研修 講師", is_demo=True)
    teams = factories.make_course(title="Teams 活用研修", owner_id=trainer.id)
    excel = factories.make_course(title="Excel 入門", owner_id=trainer.id)
    first = factories.make_session(teams, title="第1回")
    second = factories.make_session(excel, title="第2回")
    context = browser.new_context(viewport={"width": width, "height": 900}, locale="ja-JP")
    page = context.new_page()
    try:
        _sign_in(page, live_server.url, trainer)
        page.goto(f"{live_server.url}/archives/manage/new")
        visible = ("() => Array.from(document.querySelectorAll('#session_id optgroup'))"
                   ".filter(g => !g.hidden).map(g => g.label)")
        page.select_option("#course_id", label="Teams 活用研修")
        assert page.evaluate(visible) == ["Teams 活用研修"]
        page.select_option("#session_id", value=str(first.id))
        page.select_option("#course_id", label="Excel 入門")
        assert page.evaluate(visible) == ["Excel 入門"]
        assert page.input_value("#session_id") == "0"  # the other course's session is let go
        page.select_option("#session_id", value=str(second.id))
        assert page.evaluate("() => document.documentElement.scrollWidth <= window.innerWidth")
    finally:
        context.close()
