"""Page markup: every id in a page is unique (HTML; labels and ARIA references point at one element:
pages with several small forms rendered each form's CSRF field as ``id="csrf_token"``), and
Japanese content on an English page is marked as Japanese."""

from __future__ import annotations

import re
from collections import Counter

_ID = re.compile(r'\sid="([^"]+)"')


def _duplicate_ids(html: str) -> list[str]:
    return sorted(name for name, n in Counter(_ID.findall(html)).items() if n > 1)


def test_the_trainers_pages_with_several_forms_have_unique_ids(app, client, login_as, make_course, make_session):
    trainer = login_as("trainer", "130001")
    course = make_course(owner_id=trainer.id)
    make_session(course)
    app.config["WTF_CSRF_ENABLED"] = True  # (the tests' default leaves the token fields out)
    try:
        for path in (f"/manage/courses/{course.id}", "/manage/courses", f"/courses/{course.id}"):
            response = client.get(path)
            assert response.status_code == 200, path
            html = response.get_data(as_text=True)
            assert html.count('name="csrf_token"') >= (2 if path == f"/manage/courses/{course.id}" else 0), path
            assert _duplicate_ids(html) == [], path
    finally:
        app.config["WTF_CSRF_ENABLED"] = False


def test_japanese_content_on_an_english_page_is_marked_as_japanese(client, login_as, make_course, make_session):
    """WCAG 3.1.2 (language of parts): course titles and summaries written in Japanese, on a page
    in English, carry lang="ja"; an English title does not, and a Japanese page needs none."""
    course = make_course(title="文書管理研修", summary="公文書の基本", description_md="## 対象\n\n全職員")
    english = make_course(title="Excel basics", summary="For everyone")
    for c in (course, english):
        make_session(c)
    login_as("learner", locale="en")
    catalogue = client.get("/courses").get_data(as_text=True)
    assert '<span lang="ja">文書管理研修</span>' in catalogue and '<span lang="ja">公文書の基本</span>' in catalogue
    assert ">Excel basics</a>" in catalogue
    detail = client.get(f"/courses/{course.id}").get_data(as_text=True)
    assert '<h1><span lang="ja">文書管理研修</span></h1>' in detail and '<div class="prose" lang="ja">' in detail
    client.post("/lang", data={"lang": "ja"})
    assert 'lang="ja">文書管理研修' not in client.get("/courses").get_data(as_text=True)


def test_every_scrolling_table_is_a_labelled_region_the_keyboard_reaches():
    """axe's scrollable-region-focusable: a table wider than a phone scrolls sideways inside its
    .table-wrap, which a keyboard user can scroll only if it takes focus; as a region it says
    which table it is (its caption, or the heading it is under)."""
    from tests.conftest import ROOT

    wraps = []
    for path in sorted((ROOT / "templates").rglob("*.html")):
        for tag in re.findall(r'<div class="table-wrap"[^>]*>', path.read_text()):
            wraps.append((path.relative_to(ROOT), tag))
    assert len(wraps) > 50
    bad = [(str(p), tag) for p, tag in wraps
           if 'tabindex="0"' not in tag or 'role="region"' not in tag
           or not re.search(r"aria-label(ledby)?=", tag)]
    assert bad == []


def test_a_scrolling_table_region_is_named_on_the_page(client, login_as):
    login_as("municipal_admin", "131016")
    page = client.get("/completion/dashboard").get_data(as_text=True)
    assert re.search(r'<div class="table-wrap" tabindex="0" role="region" aria-label=\'所属別\'>', page)
