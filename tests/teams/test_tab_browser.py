"""The Teams personal tab in real Chromium, framed by a page that plays Teams' part: it answers
the Teams JavaScript library's host messages (initialize, context, auth token — a token minted
by the real OpenID Connect provider for the Teams app's audience; authenticate — a pop-up
window). The learner lands signed in on マイページ and enrolls, in the frame; from another
origin the tab is refused; where Teams gives no token, the pop-up sign-in works."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from lms.auth.models import User
from lms.enrollment.models import Enrollment
from lms.roster.models import StaffMember
from tests import factories
from tests.auth import conftest as auth_conftest
from tests.auth.conftest import TEAMS_RESOURCE, entra_settings, new_guid, serve_on_browser_port
from tests.conftest import ROOT

pytestmark = pytest.mark.browser
oidc_provider = auth_conftest.oidc_provider

AXE = Path(ROOT) / "tests/node/node_modules/axe-core/axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
TEAMS = "https://teams.microsoft.com"

# Teams' part, as the Teams JavaScript library (2.x) expects it: every request is
# {id, uuidAsString, func, args}; the answer is {id, uuidAsString, args}. The tab's frame
# gets frameContext "content", the pop-up window "authentication". ``authenticate`` opens the
# pop-up and answers with what the pop-up reports through authentication.notifySuccess.
HOST_PAGE = """<!doctype html><html lang="ja"><head><meta charset="utf-8"><title>Teams (test host)</title></head>
<body><main><h1>Teams</h1><iframe id="tab" title="Manabi" src="%(src)s" width="1000" height="800"></iframe></main>
<script>
const TOKEN_ANSWER = %(answer)s;
const RUNTIME = JSON.stringify({apiVersion: 4, isLegacyTeams: false, hostVersionsInfo: {adaptiveCardSchemaVersion: {majorVersion: 1, minorVersion: 5}},
  supports: {app: {}, appInstallDialog: {}, authentication: {}, dialog: {url: {}}, pages: {appButton: {}, tabs: {}, config: {}, backStack: {}, fullTrapping: {}}, teamsCore: {}}});
window.hostLog = [];
let popup = null, pending = null;
window.addEventListener('message', (event) => {
  const m = event.data;
  if (!m || typeof m.func !== 'string') return;
  window.hostLog.push(m.func);
  const reply = (args) => event.source.postMessage({id: m.id, uuidAsString: m.uuidAsString, args: args}, event.origin);
  const fromPopup = popup !== null && event.source === popup;
  switch (m.func) {
    case 'initialize': reply([fromPopup ? 'authentication' : 'content', 'desktop', RUNTIME, '2.58.0']); break;
    case 'getContext': reply([{locale: 'ja-jp', theme: 'default', entityId: 'mypage', subEntityId: %(sub)s, frameContext: 'content', hostClientType: 'desktop', tid: %(tid)s, userObjectId: %(oid)s, loginHint: 'learner@city.example.lg.jp'}]); break;
    case 'authentication.getAuthToken': reply(TOKEN_ANSWER); break;
    case 'authentication.authenticate':
      pending = reply;
      popup = window.open(m.args[0], 'manabi-sign-in', 'width=600,height=640');
      break;
    case 'authentication.authenticate.success':
      if (pending) { pending([true, m.args[0]]); pending = null; }
      if (popup) { popup.close(); }
      break;
    case 'authentication.authenticate.failure':
      if (pending) { pending([false, m.args[0]]); pending = null; }
      break;
    default: break;
  }
});
</script></body></html>"""


@pytest.fixture
def app_config(app_config, oidc_provider):
    return {**app_config, **entra_settings(oidc_provider), "LMS_TEAMS_SSO_RESOURCE": TEAMS_RESOURCE,
            "WTF_CSRF_ENABLED": True}


@pytest.fixture
def manabi_url(app, oidc_provider):
    """Manabi over TLS (Teams opens only https pages) on the port whose /auth/callback the
    provider knows (the pop-up signs in by the web)."""
    with serve_on_browser_port(app, oidc_provider, tls=True) as url:
        yield url


def _person(db, oidc_provider, code="131016", roles=("Manabi.Learner",)):
    tid = factories.tenant_for(code)
    db.session.commit()
    login, oid = f"teams-{new_guid()[:8]}", new_guid()
    oidc_provider.set_account(login, oid=oid, tid=tid, roles=list(roles), name="千代田 花子",
                              preferred_username=f"{login}@city.example.lg.jp")
    return login, oid, tid


def _host(context, origin: str, src: str, answer: list, tid: str, oid: str, sub_entity: str = ""):
    """A page at ``origin`` (served by the browser itself) framing ``src`` as Teams does
    (``sub_entity``: the subEntityId of the deep link that opened the tab)."""
    html = HOST_PAGE % {"src": src, "answer": json.dumps(answer), "tid": json.dumps(tid), "oid": json.dumps(oid),
                        "sub": json.dumps(sub_entity)}
    # Manabi is on this machine, the host page on a public origin: Chromium asks before a public
    # page reaches the local network (Local Network Access), as a person would be asked.
    context.grant_permissions(["local-network-access"], origin=origin)
    # The library asks Microsoft's CDN for the list of Teams' origins; offline it uses its own copy.
    context.route("https://res.cdn.office.net/**", lambda route: route.abort())
    context.route(f"{origin}/host", lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    page = context.new_page()
    page.goto(f"{origin}/host")
    return page


def _frame(page):
    return page.frame_locator("#tab")


def _axe(frame) -> list:
    frame.evaluate(AXE.read_text())  # (evaluated, not a script tag: the page's CSP allows no inline script)
    result = frame.evaluate("o => axe.run(document, o)", {"runOnly": {"type": "tag", "values": TAGS}})
    return [(v["id"], [n["target"] for n in v["nodes"]][:3]) for v in result["violations"]]


def test_the_learner_lands_signed_in_on_my_page_and_enrolls(browser, manabi_url, db, oidc_provider):
    course = factories.make_course(title="Teams 活用研修", eligible=["131016"])
    factories.make_session(course, capacity=10)
    login, oid, tid = _person(db, oidc_provider)
    token = oidc_provider.user_token(login)
    context = browser.new_context(locale="ja-JP", ignore_https_errors=True)
    page = _host(context, TEAMS, f"{manabi_url}/teams/tab?tab=mypage", [True, token], tid, oid)
    tab = _frame(page)
    expect(tab.get_by_role("heading", level=1)).to_have_text("マイページ", timeout=15_000)
    assert "authentication.getAuthToken" in page.evaluate("window.hostLog")
    frame = page.frames[1]
    assert frame.url == f"{manabi_url}/me"
    assert _axe(frame) == []

    frame.goto(f"{manabi_url}/courses/{course.id}")  # as the tab's own links do
    tab.get_by_role("button", name="申し込む").first.click()
    expect(tab.locator(".flash")).to_contain_text("受講が確定しました", timeout=10_000)
    db.session.rollback()
    user = db.session.scalar(select(User).where(User.object_id == oid))
    assert user is not None and user.municipality.code == "131016"
    assert db.session.scalar(select(Enrollment).join(StaffMember).where(StaffMember.user_id == user.id)) is not None
    context.close()


def test_the_tab_framed_from_another_origin_is_refused(browser, manabi_url, db, oidc_provider):
    login, oid, tid = _person(db, oidc_provider)
    context = browser.new_context(locale="ja-JP", ignore_https_errors=True)
    context.grant_permissions(["local-network-access"], origin="https://intruder.example.com")
    answered = []
    page = context.new_page()
    page.on("response", lambda r: answered.append(r.status) if "/teams/tab" in r.url else None)
    html = HOST_PAGE % {"src": f"{manabi_url}/teams/tab", "answer": "[false, 'x']", "tid": json.dumps(tid),
                        "oid": json.dumps(oid), "sub": '""'}
    context.route("https://intruder.example.com/host",
                  lambda route: route.fulfill(status=200, content_type="text/html", body=html))
    page.goto("https://intruder.example.com/host")
    page.wait_for_function("() => document.getElementById('tab') !== null")
    page.wait_for_timeout(1500)
    assert answered == [200]  # Manabi answered, and the browser refused to show it (frame-ancestors)
    assert [f.url for f in page.frames[1:]] == ["chrome-error://chromewebdata/"]
    context.close()


def test_without_a_token_the_pop_up_signs_in(browser, manabi_url, db, oidc_provider):
    login, oid, tid = _person(db, oidc_provider)
    context = browser.new_context(locale="ja-JP", ignore_https_errors=True)
    page = _host(context, TEAMS, f"{manabi_url}/teams/tab?tab=catalogue", [False, "resourceRequiresConsent"],
                 tid, oid)
    tab = _frame(page)
    button = tab.get_by_role("button", name="別ウィンドウでサインイン")
    expect(button).to_be_visible(timeout=15_000)
    expect(tab.get_by_role("status")).to_contain_text("同意")
    assert _axe(page.frames[1]) == []
    with page.expect_popup() as opened:
        button.click()
    popup = opened.value
    popup.locator("input[name=login]").fill(login)
    popup.locator("input[name=password]").fill("any-password")
    popup.get_by_role("button", name="Sign-in").click()
    popup.get_by_role("button", name="Continue").click()
    expect(tab.get_by_role("heading", level=1)).to_have_text("研修を探す", timeout=15_000)
    assert page.frames[1].url.startswith(f"{manabi_url}/courses")
    context.close()


def test_an_approval_requests_deep_link_opens_the_approvals_in_the_tab(browser, manabi_url, db, oidc_provider):
    """The training office selects an approval request in its activity feed: Teams opens the tab
    with the notice's subEntityId, and the office approves in the frame."""
    from lms.enrollment import services as enrollment_services

    course = factories.make_course(title="情報セキュリティ研修", eligible=["131016"], requires_approval=True)
    session = factories.make_session(course, capacity=10)
    learner = factories.make_user("learner", name="青木 一郎")
    enrollment_services.enroll(session.id, learner.staff_member.id, learner)
    db.session.commit()
    login, oid, tid = _person(db, oidc_provider, roles=("Manabi.MunicipalAdmin",))
    context = browser.new_context(locale="ja-JP", ignore_https_errors=True)
    page = _host(context, TEAMS, f"{manabi_url}/teams/tab?tab=mypage", [True, oidc_provider.user_token(login)],
                 tid, oid, sub_entity="approvals")
    tab = _frame(page)
    expect(tab.get_by_role("heading", level=1)).to_contain_text("研修担当", timeout=15_000)
    assert page.frames[1].url == f"{manabi_url}/municipal"
    expect(tab.get_by_text("青木 一郎").first).to_be_visible()
    tab.get_by_role("button", name="承認する", exact=True).first.click()
    expect(tab.locator(".flash")).to_contain_text("承認しました", timeout=10_000)
    context.close()
