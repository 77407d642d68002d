"""アクセシビリティ方針 and 個人情報の取扱い: public, linked from every page's footer, edited
(and audited) by platform admins only, Markdown made safe."""

from __future__ import annotations

from html import unescape

import pytest
from sqlalchemy import select

from lms.audit.models import AuditLog
from lms.sitepages.models import SitePage

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
