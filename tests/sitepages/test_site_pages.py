"""アクセシビリティ方針 and 個人情報の取扱い: public, linked from every page's footer, edited
(and audited) by platform admins only, Markdown made safe; the accessibility page shows the
project's own axe results, which must be well-formed, recent and about pages that exist."""

from __future__ import annotations

import importlib.util
import json
from datetime import date, datetime, timedelta
from html import unescape
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from lms.audit.models import AuditLog
from lms.sitepages import a11y_results
from lms.sitepages.models import SitePage
from tests.conftest import ROOT

FORM = {"title": "個人情報の取扱い（改）", "body_md": "## 連絡先\n\n研修担当 内線 1234",
        "title_en": "Privacy", "body_md_en": "## Contact\n\nTraining office, extension 1234"}


def _text(response) -> str:
    return unescape(response.get_data(as_text=True))


def test_both_pages_are_public_with_their_default_text(client):
    response = client.get("/accessibility")
    assert response.status_code == 200
    html = _text(response)
    assert "<h1>アクセシビリティ方針</h1>" in html
    assert "JIS X 8341-3:2016" in html and "適合レベル AA に準拠することを目標とします" in html
    html = _text(client.get("/privacy"))
    assert "<h1>個人情報の取扱い</h1>" in html and "取り扱う情報" in html and "最終更新" not in html


def test_english_pages_show_the_english_text_or_say_it_is_japanese_only(client, login_as, db):
    client.post("/lang", data={"lang": "en"})
    html = _text(client.get("/privacy"))
    assert '<html lang="en">' in html and "<h1>Privacy policy</h1>" in html and "What is kept" in html
    login_as("platform_admin", "130001")
    client.post("/admin/pages/privacy", data={**FORM, "title_en": "", "body_md_en": ""})
    client.post("/lang", data={"lang": "en"})
    html = _text(client.get("/privacy"))
    assert "This page is available in Japanese only." in html
    assert '<article class="site-page" lang="ja">' in html and "研修担当 内線 1234" in html


def test_every_page_links_both_pages_from_its_footer(client, login_as):
    for path in ("/", "/auth/login", "/no-such-page"):
        html = client.get(path).get_data(as_text=True)
        footer = html[html.index('<footer class="site-footer">'):]
        assert 'href="/accessibility"' in footer and 'href="/privacy"' in footer, path
    login_as("learner")
    footer = client.get("/courses").get_data(as_text=True).split('<footer class="site-footer">')[1]
    assert "アクセシビリティ方針" in footer and "個人情報の取扱い" in footer


def test_platform_admin_edits_a_page_and_the_edit_is_audited(client, login_as, db):
    admin = login_as("platform_admin", "130001")
    form = client.get("/admin/pages/privacy")
    assert form.status_code == 200 and "取り扱う情報" in _text(form)  # the default text, ready to edit
    response = client.post("/admin/pages/privacy", data=FORM)
    assert response.status_code == 302 and response.location.endswith("/privacy")
    page = db.session.get(SitePage, "privacy")
    assert page.title == "個人情報の取扱い（改）" and page.updated_by_id == admin.id and page.updated_at
    html = _text(client.get("/privacy"))
    assert "<h1>個人情報の取扱い（改）</h1>" in html and "<h2>連絡先</h2>" in html and "最終更新" in html
    entries = db.session.scalars(select(AuditLog).where(AuditLog.action == "site_page.update")).all()
    assert len(entries) == 1 and entries[0].actor_id == admin.id and entries[0].target_id == "privacy"
    assert set(entries[0].details["changed"]) == {"title", "body_md", "title_en", "body_md_en"}
    # Saving the same text again writes nothing and records nothing.
    response = client.post("/admin/pages/privacy", data=FORM, follow_redirects=True)
    assert "変更はありませんでした。" in _text(response)
    assert len(db.session.scalars(select(AuditLog).where(AuditLog.action == "site_page.update")).all()) == 1


def test_a_page_without_title_or_text_is_refused_with_a_message(client, login_as, db):
    login_as("platform_admin", "130001")
    response = client.post("/admin/pages/accessibility", data={"title": " ", "body_md": ""})
    assert response.status_code == 400
    html = _text(response)
    assert "見出しを入力してください。" in html and "本文を入力してください。" in html
    response = client.post("/admin/pages/accessibility", data={"title": "x", "body_md": "あ" * 50_001})
    assert response.status_code == 400 and "本文は 50000 文字以内にしてください。" in _text(response)
    assert db.session.get(SitePage, "accessibility") is None


def test_markdown_of_a_page_is_made_safe(client, login_as):
    login_as("platform_admin", "130001")
    client.post("/admin/pages/privacy", data={
        "title": "<script>alert(1)</script>",
        "body_md": "<script>alert(2)</script>\n\n[link](javascript:alert(3)) <img src=x onerror=alert(4)>",
    })
    html = client.get("/privacy").get_data(as_text=True)
    assert "<script>alert" not in html and 'href="javascript' not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("role", ["learner", "trainer", "municipal_admin"])
def test_only_platform_admins_edit(client, login_as, db, role):
    login_as(role, "131016")
    assert client.get("/admin/pages/privacy").status_code == 403
    assert client.post("/admin/pages/privacy", data=FORM).status_code == 403
    assert db.session.get(SitePage, "privacy") is None
    assert "このページを編集" not in client.get("/privacy").get_data(as_text=True)


def test_unknown_page_is_not_found(client, login_as):
    login_as("platform_admin", "130001")
    assert client.get("/admin/pages/terms").status_code == 404
    assert client.post("/admin/pages/terms", data=FORM).status_code == 404


# ---------------------------------------------------------------- the published axe results


def test_accessibility_page_shows_the_published_results(client):
    results = a11y_results.load_results()
    assert results is not None, "data/accessibility_results.json is missing or malformed"
    html = _text(client.get("/accessibility"))
    assert "試験結果" in html and f"axe-core {results.tools['axe-core']}" in html
    assert f"{len(results.pages)} 種類（日本語と英語の両方）" in html
    assert f"{results.tested_on.year}年{results.tested_on.month}月{results.tested_on.day}日" in html
    assert "<code>/attendance/sessions/N/sign-in-sheet</code>" in html
    assert ("違反は見つかりませんでした" in html) == results.passed
    assert "適合の表明ではありません" in html  # an automated test is not a conformance claim


def test_accessibility_page_says_so_when_the_results_cannot_be_read(client, monkeypatch, tmp_path):
    broken = tmp_path / "results.json"
    broken.write_text('{"standard": "JIS X 8341-3:2016"}', encoding="utf-8")
    monkeypatch.setattr(a11y_results, "RESULTS_FILE", broken)
    response = client.get("/accessibility")
    assert response.status_code == 200 and "試験結果を読み込めませんでした。" in _text(response)


def test_published_results_are_recent_complete_and_about_pages_that_exist(app):
    """Re-run scripts/a11y_report.py (and commit its file) when this fails."""
    results = a11y_results.parse_results(json.loads(a11y_results.RESULTS_FILE.read_text(encoding="utf-8")))
    today = datetime.now(ZoneInfo("Asia/Tokyo")).date()
    assert today - timedelta(days=365) <= results.tested_on <= today, results.tested_on
    assert results.standard == "JIS X 8341-3:2016" and results.target_level == "AA"
    assert {"wcag2a", "wcag2aa", "wcag21a", "wcag21aa"} <= set(results.tags)
    assert {"axe-core", "chromium", "playwright"} <= set(results.tools)
    assert results.passed, [p.path for p in results.pages if p.violations]
    by_path = {p.path: p for p in results.pages if not p.with_errors}
    for path in ("/", "/accessibility", "/privacy"):
        assert set(by_path[path].roles) == set(a11y_results.ROLES), path
    for path in ("/attendance/sessions/N/sign-in-sheet", "/attendance/sessions/N/participants",
                 "/attendance/sessions/N/qr/poster", "/admin/pages/accessibility"):
        assert path in by_path, path
    assert all(set(p.languages) == {"ja", "en"} for p in results.pages)
    routes = app.url_map.bind("localhost")
    stale = [p.path for p in results.pages if not routes.test(p.path.split("?")[0].replace("N", "1"))]
    assert not stale, f"tested pages that no longer exist: {stale}"


@pytest.mark.parametrize("data, problem", [
    ([], "not a JSON object"),
    ({"standard": "x"}, "KeyError"),
    ({"standard": "x", "target_level": "AA", "tested_on": "2026-13-01", "tags": [], "tools": {}, "pages": [],
      "violations": 0}, "ValueError"),
])
def test_malformed_results_are_named(data, problem):
    with pytest.raises(a11y_results.MalformedResults, match=problem):
        a11y_results.parse_results(data)


def _report_script():
    spec = importlib.util.spec_from_file_location("a11y_report", ROOT / "scripts" / "a11y_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_report_script_merges_the_runs_into_one_entry_per_kind_of_page(tmp_path):
    script = _report_script()
    tools = {"axe-core": "4.14.1", "chromium": "156", "playwright": "1.65.2"}
    tags = ["wcag2a", "wcag2aa"]
    runs = {}
    for name in script.EXPECTED_RUNS:
        lang = name.rsplit("-", 1)[1]
        role = name.split("-")[1] if name.startswith("pages-") else "platform_admin"
        pages = [{"role": role, "path": "/", "with_errors": False, "violations": 0}]
        if name == "pages-trainer-en":
            pages.append({"role": "trainer", "path": "/manage/courses/N", "with_errors": False, "violations": 2})
        if name.startswith("forms-"):
            pages = [{"role": "platform_admin", "path": "/admin/pages/privacy", "with_errors": True, "violations": 0}]
        runs[name] = {"lang": lang, "tags": tags, "tools": tools, "pages": pages}
    results = script.merge_runs(runs, date(2026, 12, 3))
    home = next(p for p in results["pages"] if p["path"] == "/")
    assert home["roles"] == list(a11y_results.ROLES) and home["languages"] == ["ja", "en"]
    manage = next(p for p in results["pages"] if p["path"] == "/manage/courses/N")
    assert manage == {"path": "/manage/courses/N", "with_errors": False, "roles": ["trainer"], "languages": ["en"],
                      "violations": 2}
    assert results["violations"] == 2 and results["tested_on"] == "2026-12-03"
    path = tmp_path / "results.json"
    script.write_results(path, results)
    parsed = a11y_results.load_results(path)
    assert parsed is not None and not parsed.passed and len(parsed.pages) == 3
    del runs["forms-en"]
    with pytest.raises(SystemExit, match="forms-en"):
        script.merge_runs(runs, date(2026, 12, 3))
