"""In real Chromium with signed media links: an expired link, or one signed the way earlier
releases did, is replaced by a fresh one from the app and playback goes on; once the archive is
withdrawn, the app refuses a fresh link and the player says so."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import expect

from lms.archives import links
from lms.archives.models import Archive
from tests import factories
from tests.archives.conftest import add_file, make_archive
from tests.archives.test_browser import DEMO_VIDEO, _sign_in, _wait_for
from tests.archives.test_media_links import legacy_signature

pytestmark = pytest.mark.browser
SECRET = "browser-test-media-link-secret-0123456789"


@pytest.fixture
def app_config(app_config):
    return {**app_config, "WTF_CSRF_ENABLED": True, "LMS_MEDIA_LINKS": True, "LMS_MEDIA_LINK_SECRET": SECRET}


def _video_whose_first_link_expired(make_user, monkeypatch):
    """A learner and a course's archive with a video; the first link issued (the page's)
    dates from ten minutes ago, so the first range request gets 410. Returns the archive,
    the learner and the list of files links were issued for."""
    trainer = make_user("trainer", "130001", name="講師 一郎", is_demo=True)
    course = factories.make_course(title="Teams 活用研修", eligible=["131016"], owner_id=trainer.id)
    archive = make_archive(course)
    add_file(archive, DEMO_VIDEO.read_bytes(), "archive-demo.webm")
    learner = make_user("learner", "131016", name="千代田 花子", is_demo=True)
    issued = []
    real_issue = links.issue

    def first_one_expired(user, archive_file, now=None):
        issued.append(archive_file.id)
        return real_issue(user, archive_file, now=time.time() - 600 if len(issued) == 1 else now)

    monkeypatch.setattr(links, "issue", first_one_expired)
    return archive, learner, issued


def test_an_expired_link_is_renewed_and_a_withdrawn_archive_stops(live_server, page, make_user, monkeypatch):
    base = live_server.url
    archive, learner, issued = _video_whose_first_link_expired(make_user, monkeypatch)
    _sign_in(page, base, learner)
    page.goto(f"{base}/archives/{archive.id}")
    _wait_for(page, "document.getElementById('player').readyState >= 1")
    assert len(issued) == 2  # the page's (expired) link, then the player's fresh one
    assert "/archives/media/" in page.evaluate("() => document.getElementById('player').currentSrc")
    page.evaluate("() => { const v = document.getElementById('player'); v.muted = true; return v.play(); }")
    _wait_for(page, "document.getElementById('player').currentTime >= 1.5")

    # Withdrawn: the next refusal of a link (here a broken one) makes the player ask the app,
    # which refuses; playback stops with the message.
    page.evaluate("() => document.getElementById('player').pause()")  # its progress report is written now
    expect(page.locator("#viewing-progress")).to_contain_text("視聴済み", timeout=10_000)
    time.sleep(5.1)  # the player retries a link at most every 5 s (and the report's write is over)
    factories.db.session.rollback()
    withdrawn = factories.db.session.get(Archive, archive.id)
    withdrawn.status = "withdrawn"
    factories.db.session.commit()
    page.evaluate("() => { const v = document.getElementById('player'); v.src = v.currentSrc.replace(/s=[^&]*/, 's=x'); }")
    expect(page.locator("#viewing-live")).to_contain_text("このアーカイブは視聴できなくなりました", timeout=10_000)
    assert len(issued) == 2  # the app refused: no link was issued to the withdrawn archive


def test_a_link_refused_before_the_player_script_runs_is_renewed(live_server, page, make_user, monkeypatch):
    """The <source> loads while the page is parsed: its refusal can come before player.js
    has attached its error listener (here the script is held back until it has). The player
    still asks for a fresh link and the video loads."""
    base = live_server.url
    archive, learner, issued = _video_whose_first_link_expired(make_user, monkeypatch)
    _sign_in(page, base, learner)
    refused = []
    page.on("response", lambda r: refused.append(r.url) if "/archives/media/" in r.url and r.status == 410 else None)

    def hold_back(route):
        deadline = time.monotonic() + 10
        while not refused and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)  # and the element has reported it
        route.continue_()

    page.route("**/static/js/player.js", hold_back)
    page.goto(f"{base}/archives/{archive.id}")
    _wait_for(page, "document.getElementById('player').readyState >= 1")
    assert refused, "the page's link was refused before the script ran"
    assert len(issued) == 2  # the page's (expired) link, then the player's fresh one


def test_a_link_signed_before_the_upgrade_is_renewed(live_server, page, make_user, monkeypatch):
    """A page opened before the upgrade holds a link signed without separators: the app
    refuses it (403) and the player asks for a fresh link, which plays."""
    base = live_server.url
    trainer = make_user("trainer", "130001", name="講師 一郎", is_demo=True)
    course = factories.make_course(title="Teams 活用研修", eligible=["131016"], owner_id=trainer.id)
    archive = make_archive(course)
    add_file(archive, DEMO_VIDEO.read_bytes(), "archive-demo.webm")
    learner = make_user("learner", "131016", name="千代田 花子", is_demo=True)
    issued = []
    real_issue = links.issue

    def first_one_old(user, archive_file, now=None):
        link = real_issue(user, archive_file, now=now)
        issued.append(link.url)
        if len(issued) == 1:
            parts = urlsplit(link.url)
            query = {k: v[0] for k, v in parse_qs(parts.query).items()}
            old = legacy_signature(int(query["e"]), parts.path, query["u"], link.cookie, SECRET)
            link = links.MediaLink(link.url.replace(f"s={query['s']}", f"s={old}"), link.expires_at, link.cookie)
        return link

    monkeypatch.setattr(links, "issue", first_one_old)
    refused = []
    page.on("response", lambda r: refused.append(r.status) if "/archives/media/" in r.url and r.status >= 400 else None)
    _sign_in(page, base, learner)
    # Wait for the refusal itself: the response event can reach this side after the player
    # has already loaded the fresh link.
    with page.expect_response(lambda r: "/archives/media/" in r.url and r.status >= 400) as first:
        page.goto(f"{base}/archives/{archive.id}")
    assert first.value.status == 403
    _wait_for(page, "document.getElementById('player').readyState >= 1")
    assert set(refused) == {403}
    assert len(issued) == 2  # the page's old-format link, then the player's fresh one
    page.evaluate("() => { const v = document.getElementById('player'); v.muted = true; return v.play(); }")
    _wait_for(page, "document.getElementById('player').currentTime >= 1")
